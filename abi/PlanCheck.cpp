#include "abi/PlanFormat.h"

#include <map>
#include <set>
#include <vector>

namespace unroll::abi {

using nlohmann::json;

namespace {

/// The largest dimension a plan may hold: the exported code and Halide
/// index with 32-bit extents (the checker bounds specs the same way).
constexpr int64_t kMaxDimension = 2147483647;

enum class Kind { String, Int, Number, Bool, Array, Object };

const char *kindName(Kind k) {
  switch (k) {
  case Kind::String:
    return "a string";
  case Kind::Int:
    return "an integer";
  case Kind::Number:
    return "a number";
  case Kind::Bool:
    return "a boolean";
  case Kind::Array:
    return "an array";
  case Kind::Object:
    return "an object";
  }
  return "?";
}

bool isKind(const json &v, Kind k) {
  switch (k) {
  case Kind::String:
    return v.is_string();
  case Kind::Int:
    return v.is_number_integer();
  case Kind::Number:
    return v.is_number();
  case Kind::Bool:
    return v.is_boolean();
  case Kind::Array:
    return v.is_array();
  case Kind::Object:
    return v.is_object();
  }
  return false;
}

/// An op of the plan: operand count (-1: any) and attributes.
struct OpSpec {
  int arity;
  std::vector<std::pair<const char *, Kind>> attrs;
  /// Results: 1 ("id", "shape"), 0 (probe), or -1 ("ids", "shapes").
  int results = 1;
};

/// Every op a plan may hold (the dialect's ops that survive lowering).
const std::map<std::string, OpSpec> &opTable() {
  static const std::map<std::string, OpSpec> table = {
      {"constant", {0, {{"value", Kind::Number}}}},
      {"layer_index", {0, {}}},
      {"eye", {0, {}}},
      {"fill", {1, {}}},
      {"random", {2, {{"distribution", Kind::String}}}},
      {"add", {2, {}}},
      {"sub", {2, {}}},
      {"mul", {2, {}}},
      {"div", {2, {}}},
      {"pow", {2, {}}},
      {"max", {2, {}}},
      {"min", {2, {}}},
      {"unary", {1, {{"fn", Kind::String}}}},
      {"matmul", {2, {}}},
      {"transpose", {1, {}}},
      {"reduce", {1, {{"kind", Kind::String}}}},
      {"outer", {2, {}}},
      {"expand", {1, {{"axis", Kind::Int}}}},
      {"sum_to", {1, {}}},
      {"concat", {2, {{"axis", Kind::Int}}}},
      {"slice", {1, {{"axis", Kind::Int}, {"start", Kind::Int}}}},
      {"half", {1, {{"which", Kind::String}}}},
      {"append_ones", {1, {}}},
      {"squeeze2d", {1, {}}},
      {"unsqueeze2d", {1, {}}},
      {"conv2d", {2, {}}},
      {"conv2d_transpose", {2, {}}},
      {"conv2d_kernel_adjoint", {2, {}}},
      {"reshape", {1, {}}},
      {"conv1x1", {2, {}}},
      {"inverse", {1, {}}},
      {"logsumexp", {1, {{"axis", Kind::Int}}}},
      {"softmax", {1, {{"axis", Kind::Int}}}},
      {"graph_filter", {3, {}}},
      {"minibatch", {-1, {{"size", Kind::Int}}, -1}},
      {"lipschitz", {1, {}}},
      {"lipschitz_grad", {1, {}}},
      {"probe", {1, {{"name", Kind::String}}, 0}},
      {"fused",
       {-1,
        {{"kernel", Kind::Int},
         {"body", Kind::Object},
         {"arg_shapes", Kind::Array}}}},
  };
  return table;
}

/// Walks one algorithm, tracking the ids defined so far.
class Checker {
public:
  [[noreturn]] void fail(const std::string &at, const std::string &why) const {
    throw PlanFormatError(at + ": " + why);
  }

  const json &field(const json &obj, const std::string &at, const char *key,
                    Kind kind) const {
    if (!obj.contains(key))
      fail(at, std::string("lacks \"") + key + "\"");
    const json &v = obj[key];
    if (!isKind(v, kind))
      fail(at + "." + key, std::string("is not ") + kindName(kind));
    return v;
  }

  /// An optional key: checked when present.
  void optional(const json &obj, const std::string &at, const char *key,
                Kind kind) const {
    if (obj.contains(key))
      field(obj, at, key, kind);
  }

  void object(const json &v, const std::string &at) const {
    if (!v.is_object())
      fail(at, "is not an object");
  }

  /// A shape: per-instance dimensions, each from 1 to kMaxDimension.
  void shape(const json &v, const std::string &at) const {
    if (!v.is_array())
      fail(at, "is not a shape (an array of dimensions)");
    for (size_t k = 0; k < v.size(); ++k)
      if (!v[k].is_number_integer() || v[k].get<int64_t>() < 1 ||
          v[k].get<int64_t>() > kMaxDimension)
        fail(at + "[" + std::to_string(k) + "]",
             "is not a dimension from 1 to " + std::to_string(kMaxDimension));
  }

  /// A new id: an integer not defined before.
  void define(const json &v, const std::string &at, std::set<int64_t> &scope) {
    if (!v.is_number_integer())
      fail(at, "is not an id (an integer)");
    const int64_t id = v.get<int64_t>();
    if (!all_.insert(id).second)
      fail(at, "defines id " + std::to_string(id) + " a second time");
    scope.insert(id);
  }

  /// Ids used: each defined before, in `scope`.
  void uses(const json &v, const std::string &at,
            const std::set<int64_t> &scope) const {
    if (!v.is_array())
      fail(at, "is not an array of ids");
    for (size_t k = 0; k < v.size(); ++k) {
      const std::string here = at + "[" + std::to_string(k) + "]";
      if (!v[k].is_number_integer())
        fail(here, "is not an id (an integer)");
      if (!scope.count(v[k].get<int64_t>()))
        fail(here, "uses id " + std::to_string(v[k].get<int64_t>()) +
                       ", which is not defined before it");
    }
  }

  void op(const json &o, const std::string &at, std::set<int64_t> &scope) {
    object(o, at);
    const std::string name = field(o, at, "op", Kind::String);
    auto it = opTable().find(name);
    if (it == opTable().end())
      fail(at + ".op", "unknown op '" + name + "'");
    const OpSpec &spec = it->second;
    const json &args = field(o, at, "args", Kind::Array);
    uses(args, at + ".args", scope);
    if (spec.arity >= 0 && args.size() != static_cast<size_t>(spec.arity))
      fail(at + ".args", "op '" + name + "' takes " +
                             std::to_string(spec.arity) + " operand(s), not " +
                             std::to_string(args.size()));
    for (const auto &[key, kind] : spec.attrs)
      field(o, at, key, kind);
    if (name == "reduce")
      optional(o, at, "axis", Kind::Int);
    if (name == "fused") {
      const json &shapes = o["arg_shapes"];
      if (shapes.size() != args.size())
        fail(at + ".arg_shapes", "has " + std::to_string(shapes.size()) +
                                     " shapes for " +
                                     std::to_string(args.size()) + " operands");
      for (size_t k = 0; k < shapes.size(); ++k)
        shape(shapes[k], at + ".arg_shapes[" + std::to_string(k) + "]");
      // A fused body sees its own arguments only.
      std::set<int64_t> inner;
      const json &b = o["body"];
      body(b, at + ".body", inner);
      if (b["args"].size() != args.size())
        fail(at + ".body.args", "binds " + std::to_string(b["args"].size()) +
                                    " arguments to " +
                                    std::to_string(args.size()) + " operands");
    }
    if (spec.results == 1) {
      shape(field(o, at, "shape", Kind::Array), at + ".shape");
      define(field(o, at, "id", Kind::Int), at + ".id", scope);
    } else if (spec.results < 0) {
      const json &ids = field(o, at, "ids", Kind::Array);
      const json &shapes = field(o, at, "shapes", Kind::Array);
      if (ids.size() != shapes.size() || ids.empty())
        fail(at, "has " + std::to_string(ids.size()) + " ids and " +
                     std::to_string(shapes.size()) + " shapes");
      for (size_t k = 0; k < ids.size(); ++k) {
        shape(shapes[k], at + ".shapes[" + std::to_string(k) + "]");
        define(ids[k], at + ".ids[" + std::to_string(k) + "]", scope);
      }
    }
  }

  void ops(const json &list, const std::string &at, std::set<int64_t> &scope) {
    if (!list.is_array())
      fail(at, "is not an array of ops");
    for (size_t k = 0; k < list.size(); ++k)
      op(list[k], at + "[" + std::to_string(k) + "]", scope);
  }

  /// A BODY: its args are defined in `scope` (with what is visible there).
  void body(const json &b, const std::string &at, std::set<int64_t> &scope) {
    object(b, at);
    const json &args = field(b, at, "args", Kind::Array);
    for (size_t k = 0; k < args.size(); ++k)
      define(args[k], at + ".args[" + std::to_string(k) + "]", scope);
    ops(field(b, at, "ops", Kind::Array), at + ".ops", scope);
    uses(field(b, at, "yield", Kind::Array), at + ".yield", scope);
  }

  /// A BODY that may read `outer` but defines nothing there.
  void nested(const json &b, const std::string &at,
              const std::set<int64_t> &outer) {
    std::set<int64_t> scope = outer;
    body(b, at, scope);
  }

  void algorithm(const json &a, const std::string &at) {
    object(a, at);
    field(a, at, "name", Kind::String);
    optional(a, at, "problem", Kind::String);
    const json &count = field(a, at, "layer_count", Kind::Int);
    if (count.get<int64_t>() < 1 || count.get<int64_t>() > 100000)
      fail(at + ".layer_count", "is not from 1 to 100000");
    const int64_t L = count.get<int64_t>();
    std::set<int64_t> scope;

    const json &inputs = field(a, at, "inputs", Kind::Array);
    for (size_t k = 0; k < inputs.size(); ++k) {
      const std::string here = at + ".inputs[" + std::to_string(k) + "]";
      object(inputs[k], here);
      field(inputs[k], here, "name", Kind::String);
      const std::string role = field(inputs[k], here, "role", Kind::String);
      if (role != "data" && role != "given")
        fail(here + ".role", "is '" + role + "', not data or given");
      shape(field(inputs[k], here, "shape", Kind::Array), here + ".shape");
      define(field(inputs[k], here, "id", Kind::Int), here + ".id", scope);
    }
    ops(field(a, at, "prelude", Kind::Array), at + ".prelude", scope);

    const json &params = field(a, at, "params", Kind::Array);
    for (size_t k = 0; k < params.size(); ++k) {
      const std::string here = at + ".params[" + std::to_string(k) + "]";
      object(params[k], here);
      field(params[k], here, "name", Kind::String);
      field(params[k], here, "binding", Kind::String);
      shape(field(params[k], here, "shape", Kind::Array), here + ".shape");
      if (params[k].contains("layer")) {
        const json &l = field(params[k], here, "layer", Kind::Int);
        if (l.get<int64_t>() < 1 || l.get<int64_t>() > L)
          fail(here + ".layer",
               "is not a layer from 1 to " + std::to_string(L));
      }
      nested(field(params[k], here, "init", Kind::Object), here + ".init",
             scope);
      define(field(params[k], here, "id", Kind::Int), here + ".id", scope);
    }

    const json &states = field(a, at, "states", Kind::Array);
    if (states.empty())
      fail(at + ".states", "is empty: an algorithm has at least one state");
    for (size_t k = 0; k < states.size(); ++k) {
      const std::string here = at + ".states[" + std::to_string(k) + "]";
      object(states[k], here);
      field(states[k], here, "name", Kind::String);
      optional(states[k], here, "random", Kind::Bool);
      shape(field(states[k], here, "shape", Kind::Array), here + ".shape");
      nested(field(states[k], here, "init", Kind::Object), here + ".init",
             scope);
      define(field(states[k], here, "id", Kind::Int), here + ".id", scope);
    }

    const json &targets = field(a, at, "targets", Kind::Array);
    for (size_t k = 0; k < targets.size(); ++k) {
      const std::string here = at + ".targets[" + std::to_string(k) + "]";
      object(targets[k], here);
      field(targets[k], here, "name", Kind::String);
      field(targets[k], here, "solver", Kind::String);
      optional(targets[k], here, "tol", Kind::Number);
      optional(targets[k], here, "iters", Kind::Int);
      shape(field(targets[k], here, "shape", Kind::Array), here + ".shape");
      define(field(targets[k], here, "id", Kind::Int), here + ".id", scope);
    }

    const json &layers = field(a, at, "layers", Kind::Array);
    if (static_cast<int64_t>(layers.size()) != L)
      fail(at + ".layers", "lists " + std::to_string(layers.size()) +
                               " layers but layer_count is " +
                               std::to_string(L));
    for (size_t k = 0; k < layers.size(); ++k) {
      const std::string here = at + ".layers[" + std::to_string(k) + "]";
      object(layers[k], here);
      field(layers[k], here, "index", Kind::Int);
      const json &in = field(layers[k], here, "state", Kind::Array);
      uses(in, here + ".state", scope);
      if (in.size() != states.size())
        fail(here + ".state", "holds " + std::to_string(in.size()) +
                                  " values for " +
                                  std::to_string(states.size()) + " states");
      const json &b = field(layers[k], here, "body", Kind::Object);
      nested(b, here + ".body", scope);
      if (b["args"].size() != states.size() ||
          b["yield"].size() != states.size())
        fail(here + ".body", "does not map the " +
                                 std::to_string(states.size()) +
                                 " states to as many");
      const json &results = field(layers[k], here, "results", Kind::Array);
      if (results.size() != states.size())
        fail(here + ".results", "holds " + std::to_string(results.size()) +
                                    " ids for " +
                                    std::to_string(states.size()) + " states");
      for (size_t r = 0; r < results.size(); ++r)
        define(results[r], here + ".results[" + std::to_string(r) + "]", scope);
    }

    // Bodies over the values defined above.
    for (const char *key : {"objective", "loss"})
      if (a.contains(key))
        nested(field(a, at, key, Kind::Object), at + "." + key, scope);
    if (a.contains("solver")) {
      const json &s = field(a, at, "solver", Kind::Object);
      field(s, at + ".solver", "prox", Kind::String);
      nested(field(s, at + ".solver", "body", Kind::Object),
             at + ".solver.body", scope);
    }
    const json &constraints = field(a, at, "constraints", Kind::Array);
    for (size_t k = 0; k < constraints.size(); ++k) {
      const std::string here = at + ".constraints[" + std::to_string(k) + "]";
      object(constraints[k], here);
      field(constraints[k], here, "form", Kind::String);
      field(constraints[k], here, "on", Kind::String);
      field(constraints[k], here, "eps", Kind::Number);
      field(constraints[k], here, "mode", Kind::String);
      nested(field(constraints[k], here, "body", Kind::Object), here + ".body",
             scope);
    }
    const json &noise = field(a, at, "noise", Kind::Array);
    for (size_t k = 0; k < noise.size(); ++k) {
      const std::string here = at + ".noise[" + std::to_string(k) + "]";
      object(noise[k], here);
      field(noise[k], here, "on", Kind::String);
      field(noise[k], here, "distribution", Kind::String);
      nested(field(noise[k], here, "body", Kind::Object), here + ".body",
             scope);
    }
    if (a.contains("train")) {
      const json &t = field(a, at, "train", Kind::Object);
      optional(t, at + ".train", "data", Kind::Array);
      for (const char *key : {"primal", "dual", "evaluate"})
        optional(t, at + ".train", key, Kind::Object);
      for (const char *key : {"epochs", "batch", "seed"})
        optional(t, at + ".train", key, Kind::Int);
    }
  }

private:
  std::set<int64_t> all_; // every id of the algorithm, once each
};

} // namespace

void checkPlan(const json &plan) {
  if (!plan.is_object() || !plan.contains("format") ||
      plan["format"] != "unroll-plan")
    throw PlanFormatError(
        "not an Unroll plan (missing \"format\": \"unroll-plan\")");
  if (!plan.contains("version") || !plan["version"].is_number_integer() ||
      plan["version"].get<int64_t>() != kPlanVersion)
    throw PlanFormatError(
        "plan version " +
        (plan.contains("version") ? plan["version"].dump() : "missing") +
        " is not supported; this program reads version " +
        std::to_string(kPlanVersion));
  // A spec without an unrolled algorithm has a plan with none; readers
  // that need one say so.
  if (!plan.contains("algorithms") || !plan["algorithms"].is_array())
    throw PlanFormatError("the plan has no \"algorithms\" array");
  const json &algs = plan["algorithms"];
  for (size_t k = 0; k < algs.size(); ++k)
    Checker().algorithm(algs[k], "algorithms[" + std::to_string(k) + "]");
}

} // namespace unroll::abi
