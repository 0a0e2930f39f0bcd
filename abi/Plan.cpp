#include "abi/Plan.h"

#include <algorithm>
#include <iterator>
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

/// What each op takes and has; a switch, so that an op of PlanOps.def
/// without an entry here is a compiler warning.
OpSpec opSpec(OpCode code) {
  switch (code) {
  case OpCode::Constant:
    return {0, {{"value", Kind::Number}}};
  case OpCode::LayerIndex:
  case OpCode::Eye:
    return {0, {}};
  case OpCode::Fill:
  case OpCode::Transpose:
  case OpCode::SumTo:
  case OpCode::Squeeze2d:
  case OpCode::Unsqueeze2d:
  case OpCode::Reshape:
  case OpCode::Inverse:
  case OpCode::StopGradient:
  case OpCode::Lipschitz:
  case OpCode::LipschitzGrad:
    return {1, {}};
  case OpCode::Random:
    return {2, {{"distribution", Kind::String}}};
  case OpCode::Add:
  case OpCode::Sub:
  case OpCode::Mul:
  case OpCode::Div:
  case OpCode::Pow:
  case OpCode::Max:
  case OpCode::Min:
  case OpCode::Matmul:
  case OpCode::Outer:
  case OpCode::Conv2d:
  case OpCode::Conv2dTranspose:
  case OpCode::Conv2dKernelAdjoint:
  case OpCode::Conv1x1:
    return {2, {}};
  case OpCode::Unary:
    return {1, {{"fn", Kind::String}}};
  case OpCode::Reduce:
    return {1, {{"kind", Kind::String}}};
  case OpCode::Expand:
  case OpCode::Logsumexp:
  case OpCode::Softmax:
    return {1, {{"axis", Kind::Int}}};
  case OpCode::Concat:
    return {2, {{"axis", Kind::Int}}};
  case OpCode::Slice:
    return {1, {{"axis", Kind::Int}, {"start", Kind::Int}}};
  case OpCode::GraphFilter:
    return {3, {}};
  case OpCode::Minibatch:
    return {-1, {{"size", Kind::Int}}, -1};
  case OpCode::Probe:
    return {1, {{"name", Kind::String}}, 0};
  case OpCode::Fused:
    return {-1,
            {{"kernel", Kind::Int},
             {"body", Kind::Object},
             {"arg_shapes", Kind::Array}}};
  }
  return {0, {}};
}

/// The spellings of enum E, in enumerator order.
template <typename E> struct Spellings;
template <> struct Spellings<UnaryFn> {
  static constexpr const char *names[] = {"neg",  "abs",     "sign",  "relu",
                                          "step", "exp",     "log",   "sqrt",
                                          "tanh", "sigmoid", "square"};
};
template <> struct Spellings<ReduceKind> {
  static constexpr const char *names[] = {"sum", "mean", "norm", "norm1",
                                          "sqnorm"};
};
template <> struct Spellings<Distribution> {
  static constexpr const char *names[] = {"normal", "uniform"};
};
template <> struct Spellings<Role> {
  static constexpr const char *names[] = {"data", "given"};
};
template <> struct Spellings<Binding> {
  static constexpr const char *names[] = {"shared", "per_layer"};
};
template <> struct Spellings<ConstraintForm> {
  static constexpr const char *names[] = {"distance", "grad_norm", "objective"};
};
template <> struct Spellings<ConstraintMode> {
  static constexpr const char *names[] = {"difference", "ratio"};
};
template <> struct Spellings<Prox> {
  static constexpr const char *names[] = {"l1", "none"};
};

template <typename E> const char *spellingOf(E v) {
  return Spellings<E>::names[static_cast<size_t>(v)];
}

/// "'a', 'b' or 'c'".
template <typename E> std::string choices() {
  std::string out;
  const size_t n = std::size(Spellings<E>::names);
  for (size_t i = 0; i < n; ++i)
    out += std::string(i == 0       ? ""
                       : i + 1 == n ? " or "
                                    : ", ") +
           "'" + Spellings<E>::names[i] + "'";
  return out;
}

constexpr const char *kOpNames[] = {
#define PLAN_OP(Enumerator, Name) Name,
#include "abi/PlanOps.def"
#undef PLAN_OP
};

} // namespace

const char *opName(OpCode code) { return kOpNames[static_cast<size_t>(code)]; }

std::optional<OpCode> opCodeOf(std::string_view name) {
  for (size_t i = 0; i < std::size(kOpNames); ++i)
    if (name == kOpNames[i])
      return static_cast<OpCode>(i);
  return std::nullopt;
}

bool isElementwise(OpCode code) {
  switch (code) {
  case OpCode::Add:
  case OpCode::Sub:
  case OpCode::Mul:
  case OpCode::Div:
  case OpCode::Pow:
  case OpCode::Max:
  case OpCode::Min:
  case OpCode::Unary:
    return true;
  default:
    return false;
  }
}

const char *spelling(UnaryFn v) { return spellingOf(v); }
const char *spelling(ReduceKind v) { return spellingOf(v); }
const char *spelling(Distribution v) { return spellingOf(v); }
const char *spelling(Role v) { return spellingOf(v); }
const char *spelling(Binding v) { return spellingOf(v); }
const char *spelling(ConstraintForm v) { return spellingOf(v); }
const char *spelling(ConstraintMode v) { return spellingOf(v); }
const char *spelling(Prox v) { return spellingOf(v); }

bool Op::reduces() const {
  return code == OpCode::Fused && body && !body->ops.empty() &&
         body->ops.back().code == OpCode::Reduce;
}

const Shape &Op::domain() const {
  if (!reduces())
    return shape;
  // readPlan has checked that the reduced value is the body's.
  const int64_t arg = body->ops.back().args[0];
  for (const Op &o : body->ops)
    if (o.id == arg)
      return o.shape;
  for (size_t i = 0; i < body->args.size(); ++i)
    if (body->args[i] == arg)
      return argShapes[i];
  return shape;
}

namespace {

/// Walks one algorithm, tracking the ids defined so far, and builds it.
class Reader {
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

  std::string string(const json &obj, const std::string &at,
                     const char *key) const {
    return field(obj, at, key, Kind::String).get<std::string>();
  }

  /// A string key naming one of E's values.
  template <typename E>
  E choice(const json &obj, const std::string &at, const char *key) const {
    const std::string v = string(obj, at, key);
    const auto &names = Spellings<E>::names;
    for (size_t i = 0; i < std::size(names); ++i)
      if (v == names[i])
        return static_cast<E>(i);
    fail(at + "." + key, "is '" + v + "', not " + choices<E>());
  }

  void object(const json &v, const std::string &at) const {
    if (!v.is_object())
      fail(at, "is not an object");
  }

  /// A shape: per-instance dimensions, each from 1 to kMaxDimension.
  Shape shape(const json &v, const std::string &at) const {
    if (!v.is_array())
      fail(at, "is not a shape (an array of dimensions)");
    Shape out;
    for (size_t k = 0; k < v.size(); ++k) {
      if (!v[k].is_number_integer() || v[k].get<int64_t>() < 1 ||
          v[k].get<int64_t>() > kMaxDimension)
        fail(at + "[" + std::to_string(k) + "]",
             "is not a dimension from 1 to " + std::to_string(kMaxDimension));
      out.push_back(v[k].get<int64_t>());
    }
    return out;
  }

  /// A new id: an integer not defined before.
  int64_t define(const json &v, const std::string &at,
                 std::set<int64_t> &scope) {
    if (!v.is_number_integer())
      fail(at, "is not an id (an integer)");
    const int64_t id = v.get<int64_t>();
    if (!all_.insert(id).second)
      fail(at, "defines id " + std::to_string(id) + " a second time");
    scope.insert(id);
    return id;
  }

  /// Ids used: each defined before, in `scope`.
  std::vector<int64_t> uses(const json &v, const std::string &at,
                            const std::set<int64_t> &scope) const {
    if (!v.is_array())
      fail(at, "is not an array of ids");
    std::vector<int64_t> out;
    for (size_t k = 0; k < v.size(); ++k) {
      const std::string here = at + "[" + std::to_string(k) + "]";
      if (!v[k].is_number_integer())
        fail(here, "is not an id (an integer)");
      if (!scope.count(v[k].get<int64_t>()))
        fail(here, "uses id " + std::to_string(v[k].get<int64_t>()) +
                       ", which is not defined before it");
      out.push_back(v[k].get<int64_t>());
    }
    return out;
  }

  Op op(const json &o, const std::string &at, std::set<int64_t> &scope) {
    object(o, at);
    const std::string name = string(o, at, "op");
    const std::optional<OpCode> code = opCodeOf(name);
    if (!code)
      fail(at + ".op", "unknown op '" + name + "'");
    Op out;
    out.code = *code;
    const OpSpec spec = opSpec(*code);
    out.args = uses(field(o, at, "args", Kind::Array), at + ".args", scope);
    if (spec.arity >= 0 && out.args.size() != static_cast<size_t>(spec.arity))
      fail(at + ".args", "op '" + name + "' takes " +
                             std::to_string(spec.arity) + " operand(s), not " +
                             std::to_string(out.args.size()));
    for (const auto &[key, kind] : spec.attrs)
      field(o, at, key, kind);
    switch (out.code) {
    case OpCode::Constant:
      out.value = o["value"].get<double>();
      break;
    case OpCode::Random:
      out.distribution = choice<Distribution>(o, at, "distribution");
      break;
    case OpCode::Unary:
      out.fn = choice<UnaryFn>(o, at, "fn");
      break;
    case OpCode::Reduce:
      out.reduce = choice<ReduceKind>(o, at, "kind");
      if (o.contains("axis")) {
        out.axis = field(o, at, "axis", Kind::Int).get<int64_t>();
        if (out.reduce != ReduceKind::Sum && out.reduce != ReduceKind::Mean)
          fail(at + ".axis", std::string("is given, but '") +
                                 spelling(out.reduce) +
                                 "' reduces over all axes");
      }
      break;
    case OpCode::Expand:
    case OpCode::Logsumexp:
    case OpCode::Softmax:
    case OpCode::Concat:
      out.axis = o["axis"].get<int64_t>();
      break;
    case OpCode::Slice:
      out.axis = o["axis"].get<int64_t>();
      out.start = o["start"].get<int64_t>();
      break;
    case OpCode::Minibatch:
      out.size = o["size"].get<int64_t>();
      if (out.size < 1)
        fail(at + ".size", "is not a sample count of at least 1");
      break;
    case OpCode::Probe:
      out.name = o["name"].get<std::string>();
      break;
    case OpCode::Fused: {
      out.kernel = o["kernel"].get<int64_t>();
      if (out.kernel < 0)
        fail(at + ".kernel", "is not a kernel number (0 or more)");
      const json &shapes = o["arg_shapes"];
      if (shapes.size() != out.args.size())
        fail(at + ".arg_shapes",
             "has " + std::to_string(shapes.size()) + " shapes for " +
                 std::to_string(out.args.size()) + " operands");
      for (size_t k = 0; k < shapes.size(); ++k)
        out.argShapes.push_back(
            shape(shapes[k], at + ".arg_shapes[" + std::to_string(k) + "]"));
      // A fused body sees its own arguments only.
      std::set<int64_t> inner;
      auto b = std::make_shared<Body>(body(o["body"], at + ".body", inner));
      if (b->args.size() != out.args.size())
        fail(at + ".body.args",
             "binds " + std::to_string(b->args.size()) + " arguments to " +
                 std::to_string(out.args.size()) + " operands");
      if (b->yield.size() != 1)
        fail(at + ".body.yield", "yields " + std::to_string(b->yield.size()) +
                                     " values, not the fused op's one");
      if (!b->ops.empty() && b->ops.back().code == OpCode::Reduce) {
        const int64_t reduced = b->ops.back().args[0];
        if (!inner.count(reduced))
          fail(at + ".body", "reduces a value the body does not hold");
      }
      out.body = std::move(b);
      break;
    }
    default:
      break;
    }
    if (spec.results == 1) {
      out.shape = shape(field(o, at, "shape", Kind::Array), at + ".shape");
      out.id = define(field(o, at, "id", Kind::Int), at + ".id", scope);
    } else if (spec.results < 0) {
      const json &ids = field(o, at, "ids", Kind::Array);
      const json &shapes = field(o, at, "shapes", Kind::Array);
      if (ids.size() != shapes.size() || ids.empty())
        fail(at, "has " + std::to_string(ids.size()) + " ids and " +
                     std::to_string(shapes.size()) + " shapes");
      if (out.code == OpCode::Minibatch && ids.size() != out.args.size())
        fail(at + ".ids", "has " + std::to_string(ids.size()) + " ids for " +
                              std::to_string(out.args.size()) + " operands");
      for (size_t k = 0; k < ids.size(); ++k) {
        out.shapes.push_back(
            shape(shapes[k], at + ".shapes[" + std::to_string(k) + "]"));
        out.ids.push_back(
            define(ids[k], at + ".ids[" + std::to_string(k) + "]", scope));
      }
    }
    return out;
  }

  std::vector<Op> ops(const json &list, const std::string &at,
                      std::set<int64_t> &scope) {
    if (!list.is_array())
      fail(at, "is not an array of ops");
    std::vector<Op> out;
    for (size_t k = 0; k < list.size(); ++k)
      out.push_back(op(list[k], at + "[" + std::to_string(k) + "]", scope));
    return out;
  }

  /// A BODY: its args are defined in `scope` (with what is visible there).
  Body body(const json &b, const std::string &at, std::set<int64_t> &scope) {
    object(b, at);
    Body out;
    const json &args = field(b, at, "args", Kind::Array);
    for (size_t k = 0; k < args.size(); ++k)
      out.args.push_back(
          define(args[k], at + ".args[" + std::to_string(k) + "]", scope));
    out.ops = ops(field(b, at, "ops", Kind::Array), at + ".ops", scope);
    out.yield = uses(field(b, at, "yield", Kind::Array), at + ".yield", scope);
    return out;
  }

  /// A BODY that may read `outer` but defines nothing there.
  Body nested(const json &b, const std::string &at,
              const std::set<int64_t> &outer) {
    std::set<int64_t> scope = outer;
    return body(b, at, scope);
  }

  /// A BODY of `args` arguments that yields `yields` values.
  Body nested(const json &b, const std::string &at,
              const std::set<int64_t> &outer, size_t args, size_t yields) {
    Body out = nested(b, at, outer);
    if (out.args.size() != args || out.yield.size() != yields)
      fail(at, "takes " + std::to_string(out.args.size()) +
                   " argument(s) and yields " +
                   std::to_string(out.yield.size()) + ", not " +
                   std::to_string(args) + " and " + std::to_string(yields));
    return out;
  }

  Algorithm algorithm(const json &a, const std::string &at) {
    object(a, at);
    Algorithm out;
    out.name = string(a, at, "name");
    if (a.contains("problem"))
      out.problem = string(a, at, "problem");
    const json &count = field(a, at, "layer_count", Kind::Int);
    if (count.get<int64_t>() < 1 || count.get<int64_t>() > 100000)
      fail(at + ".layer_count", "is not from 1 to 100000");
    const int64_t L = count.get<int64_t>();
    out.layerCount = L;
    std::set<int64_t> scope;

    const json &inputs = field(a, at, "inputs", Kind::Array);
    for (size_t k = 0; k < inputs.size(); ++k) {
      const std::string here = at + ".inputs[" + std::to_string(k) + "]";
      object(inputs[k], here);
      Input in;
      in.name = string(inputs[k], here, "name");
      in.role = choice<Role>(inputs[k], here, "role");
      in.shape =
          shape(field(inputs[k], here, "shape", Kind::Array), here + ".shape");
      in.id =
          define(field(inputs[k], here, "id", Kind::Int), here + ".id", scope);
      out.inputs.push_back(std::move(in));
    }
    out.prelude =
        ops(field(a, at, "prelude", Kind::Array), at + ".prelude", scope);

    const json &params = field(a, at, "params", Kind::Array);
    for (size_t k = 0; k < params.size(); ++k) {
      const std::string here = at + ".params[" + std::to_string(k) + "]";
      object(params[k], here);
      Param p;
      p.name = string(params[k], here, "name");
      p.binding = choice<Binding>(params[k], here, "binding");
      p.shape =
          shape(field(params[k], here, "shape", Kind::Array), here + ".shape");
      if (params[k].contains("layer")) {
        const json &l = field(params[k], here, "layer", Kind::Int);
        if (l.get<int64_t>() < 1 || l.get<int64_t>() > L)
          fail(here + ".layer",
               "is not a layer from 1 to " + std::to_string(L));
        p.layer = l.get<int64_t>();
      }
      p.init = nested(field(params[k], here, "init", Kind::Object),
                      here + ".init", scope, 0, 1);
      p.id =
          define(field(params[k], here, "id", Kind::Int), here + ".id", scope);
      out.params.push_back(std::move(p));
    }

    const json &states = field(a, at, "states", Kind::Array);
    if (states.empty())
      fail(at + ".states", "is empty: an algorithm has at least one state");
    for (size_t k = 0; k < states.size(); ++k) {
      const std::string here = at + ".states[" + std::to_string(k) + "]";
      object(states[k], here);
      State s;
      s.name = string(states[k], here, "name");
      if (states[k].contains("random"))
        s.random = field(states[k], here, "random", Kind::Bool).get<bool>();
      if (states[k].contains("algorithm"))
        s.algorithm =
            field(states[k], here, "algorithm", Kind::Bool).get<bool>();
      if (!s.algorithm && !out.states.empty() && out.states.back().algorithm)
        fail(here, "is a variable of the problem after a state of the "
                   "algorithm; the problem's variables come first");
      s.shape =
          shape(field(states[k], here, "shape", Kind::Array), here + ".shape");
      s.init = nested(field(states[k], here, "init", Kind::Object),
                      here + ".init", scope, 0, 1);
      s.id =
          define(field(states[k], here, "id", Kind::Int), here + ".id", scope);
      out.states.push_back(std::move(s));
    }

    const json &targets = field(a, at, "targets", Kind::Array);
    for (size_t k = 0; k < targets.size(); ++k) {
      const std::string here = at + ".targets[" + std::to_string(k) + "]";
      object(targets[k], here);
      Target t;
      t.name = string(targets[k], here, "name");
      t.solver = string(targets[k], here, "solver");
      if (targets[k].contains("tol"))
        t.tol = field(targets[k], here, "tol", Kind::Number).get<double>();
      if (targets[k].contains("iters"))
        t.iters = field(targets[k], here, "iters", Kind::Int).get<int64_t>();
      t.shape =
          shape(field(targets[k], here, "shape", Kind::Array), here + ".shape");
      t.id =
          define(field(targets[k], here, "id", Kind::Int), here + ".id", scope);
      t.text = targets[k].dump();
      out.targets.push_back(std::move(t));
    }

    const json &layers = field(a, at, "layers", Kind::Array);
    if (static_cast<int64_t>(layers.size()) != L)
      fail(at + ".layers", "lists " + std::to_string(layers.size()) +
                               " layers but layer_count is " +
                               std::to_string(L));
    const size_t S = out.states.size();
    for (size_t k = 0; k < layers.size(); ++k) {
      const std::string here = at + ".layers[" + std::to_string(k) + "]";
      object(layers[k], here);
      Layer layer;
      layer.index = field(layers[k], here, "index", Kind::Int).get<int64_t>();
      layer.state = uses(field(layers[k], here, "state", Kind::Array),
                         here + ".state", scope);
      if (layer.state.size() != S)
        fail(here + ".state", "holds " + std::to_string(layer.state.size()) +
                                  " values for " + std::to_string(S) +
                                  " states");
      layer.body = nested(field(layers[k], here, "body", Kind::Object),
                          here + ".body", scope);
      if (layer.body.args.size() != S || layer.body.yield.size() != S)
        fail(here + ".body",
             "does not map the " + std::to_string(S) + " states to as many");
      const json &results = field(layers[k], here, "results", Kind::Array);
      if (results.size() != S)
        fail(here + ".results", "holds " + std::to_string(results.size()) +
                                    " ids for " + std::to_string(S) +
                                    " states");
      for (size_t r = 0; r < results.size(); ++r)
        layer.results.push_back(define(
            results[r], here + ".results[" + std::to_string(r) + "]", scope));
      out.layers.push_back(std::move(layer));
    }

    // Bodies over the values defined above.
    if (out.variableCount() == 0)
      fail(at + ".states", "holds no variable of the problem");
    if (a.contains("objective"))
      out.objective = nested(field(a, at, "objective", Kind::Object),
                             at + ".objective", scope, out.variableCount(), 1);
    if (a.contains("loss")) {
      out.loss =
          nested(field(a, at, "loss", Kind::Object), at + ".loss", scope);
      if (out.loss->yield.size() != 1)
        fail(at + ".loss.yield", "yields " +
                                     std::to_string(out.loss->yield.size()) +
                                     " values, not the loss");
    }
    if (a.contains("solver")) {
      const json &s = field(a, at, "solver", Kind::Object);
      Solver solver;
      solver.prox = choice<Prox>(s, at + ".solver", "prox");
      solver.body = nested(field(s, at + ".solver", "body", Kind::Object),
                           at + ".solver.body", scope, 1, 3);
      if (s.contains("proximal")) {
        const json &p = field(s, at + ".solver", "proximal", Kind::Object);
        const std::string here = at + ".solver.proximal";
        Solver::Proximal proximal;
        proximal.of = string(p, here, "of");
        proximal.body = nested(field(p, here, "body", Kind::Object),
                               here + ".body", scope, 2, 1);
        solver.proximal = std::move(proximal);
      } else if (solver.prox == Prox::L1) {
        fail(at + ".solver", "has an l1 term but no \"proximal\" to step "
                             "with; recompile the spec");
      }
      if (s.contains("composed")) {
        const json &cs = field(s, at + ".solver", "composed", Kind::Array);
        for (size_t k = 0; k < cs.size(); ++k) {
          const std::string here =
              at + ".solver.composed[" + std::to_string(k) + "]";
          object(cs[k], here);
          Solver::Composed c;
          c.of = string(cs[k], here, "of");
          c.map = nested(field(cs[k], here, "map", Kind::Object), here + ".map",
                         scope, 1, 1);
          c.adjoint = nested(field(cs[k], here, "adjoint", Kind::Object),
                             here + ".adjoint", scope, 2, 1);
          c.prox = nested(field(cs[k], here, "prox", Kind::Object),
                          here + ".prox", scope, 2, 1);
          solver.composed.push_back(std::move(c));
        }
      }
      solver.text = s.dump();
      out.solver = std::move(solver);
    }
    if (a.contains("projections")) {
      const json &projections = field(a, at, "projections", Kind::Array);
      for (size_t k = 0; k < projections.size(); ++k) {
        const std::string here = at + ".projections[" + std::to_string(k) + "]";
        object(projections[k], here);
        Projection p;
        p.set = string(projections[k], here, "set");
        p.on = string(projections[k], here, "on");
        auto var = std::find_if(out.states.begin(),
                                out.states.begin() + out.variableCount(),
                                [&](const State &s) { return s.name == p.on; });
        if (var == out.states.begin() + out.variableCount())
          fail(here + ".on", "'" + p.on + "' is not a variable of the problem");
        p.body = nested(field(projections[k], here, "body", Kind::Object),
                        here + ".body", scope, 1, 1);
        p.text = projections[k].dump();
        out.projections.push_back(std::move(p));
      }
    }
    const json &constraints = field(a, at, "constraints", Kind::Array);
    for (size_t k = 0; k < constraints.size(); ++k) {
      const std::string here = at + ".constraints[" + std::to_string(k) + "]";
      object(constraints[k], here);
      Constraint c;
      c.form = choice<ConstraintForm>(constraints[k], here, "form");
      c.on = string(constraints[k], here, "on");
      c.eps = field(constraints[k], here, "eps", Kind::Number).get<double>();
      c.mode = choice<ConstraintMode>(constraints[k], here, "mode");
      c.body = nested(field(constraints[k], here, "body", Kind::Object),
                      here + ".body", scope, 1, 1);
      out.constraints.push_back(std::move(c));
    }
    const json &noise = field(a, at, "noise", Kind::Array);
    for (size_t k = 0; k < noise.size(); ++k) {
      const std::string here = at + ".noise[" + std::to_string(k) + "]";
      object(noise[k], here);
      Noise n;
      n.on = string(noise[k], here, "on");
      n.distribution = choice<Distribution>(noise[k], here, "distribution");
      n.body = nested(field(noise[k], here, "body", Kind::Object),
                      here + ".body", scope, 1, 2);
      out.noise.push_back(std::move(n));
    }
    if (a.contains("train")) {
      const json &t = field(a, at, "train", Kind::Object);
      optional(t, at + ".train", "data", Kind::Array);
      for (const char *key : {"primal", "dual", "evaluate"})
        optional(t, at + ".train", key, Kind::Object);
      for (const char *key : {"epochs", "batch", "seed"})
        optional(t, at + ".train", key, Kind::Int);
      out.train = t;
    }
    return out;
  }

private:
  /// An optional key: checked when present.
  void optional(const json &obj, const std::string &at, const char *key,
                Kind kind) const {
    if (obj.contains(key))
      field(obj, at, key, kind);
  }

  std::set<int64_t> all_; // every id of the algorithm, once each
};

} // namespace

Plan readPlan(const json &plan) {
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
  Plan out;
  for (size_t k = 0; k < algs.size(); ++k)
    out.algorithms.push_back(
        Reader().algorithm(algs[k], "algorithms[" + std::to_string(k) + "]"));
  return out;
}

} // namespace unroll::abi
