#include "compiler/kernels/HalideKernels.h"

#include "dsl/Diagnostics.h"
#include "runtime/Plan.h"

#include <functional>
#include <map>
#include <optional>
#include <sstream>

namespace unroll::compiler {

using dsl::InternalError;
using Halide::Expr;
using nlohmann::json;

namespace {

Expr unary(const std::string &fn, const Expr &x) {
  if (fn == "neg")
    return -x;
  if (fn == "abs")
    return Halide::abs(x);
  if (fn == "sign")
    return Halide::select(x > 0.f, 1.f, Halide::select(x < 0.f, -1.f, 0.f));
  if (fn == "relu")
    return Halide::max(x, 0.f);
  if (fn == "exp")
    return Halide::exp(x);
  if (fn == "log")
    return Halide::log(x);
  if (fn == "sqrt")
    return Halide::sqrt(x);
  if (fn == "tanh")
    return Halide::tanh(x);
  if (fn == "sigmoid")
    return 1.f / (1.f + Halide::exp(-x));
  if (fn == "square")
    return x * x;
  if (fn == "step")
    return Halide::select(x > 0.f, 1.f, 0.f);
  throw InternalError("kernel generation: unknown elementwise function '" + fn +
                      "'");
}

std::string shapeText(const std::vector<int64_t> &s) {
  std::string o = "[";
  for (size_t i = 0; i < s.size(); ++i)
    o += (i ? ", " : "") + std::to_string(s[i]);
  return o + "]";
}

} // namespace

Expr elementwise(const json &o, const std::vector<Expr> &a) {
  const std::string op = o["op"];
  if (op == "unary" && a.size() == 1)
    return unary(o["fn"].get<std::string>(), a[0]);
  if (a.size() != 2)
    throw InternalError("kernel generation: '" + op + "' is not elementwise");
  if (op == "add")
    return a[0] + a[1];
  if (op == "sub")
    return a[0] - a[1];
  if (op == "mul")
    return a[0] * a[1];
  if (op == "div")
    return a[0] / a[1];
  if (op == "pow")
    return Halide::pow(a[0], a[1]);
  if (op == "max")
    return Halide::max(a[0], a[1]);
  if (op == "min")
    return Halide::min(a[0], a[1]);
  throw InternalError("kernel generation: '" + op + "' is not elementwise");
}

Expr fusedExpr(const json &body, const std::vector<Expr> &operands) {
  std::map<int64_t, Expr> value;
  for (size_t i = 0; i < operands.size(); ++i)
    value[body["args"][i].get<int64_t>()] = operands[i];
  auto get = [&](const json &id) {
    auto it = value.find(id.get<int64_t>());
    if (it == value.end())
      throw InternalError("kernel generation: a fused region uses a value "
                          "from outside");
    return it->second;
  };
  for (const json &o : body["ops"]) {
    std::vector<Expr> args;
    for (const json &id : o["args"])
      args.push_back(get(id));
    value[o["id"].get<int64_t>()] = elementwise(o, args);
  }
  return get(body["yield"][0]);
}

namespace {

/// What a reduction of `kind` sums for each element `e`.
Expr summand(const std::string &kind, const Expr &e) {
  if (kind == "sum" || kind == "mean")
    return e;
  if (kind == "sqnorm" || kind == "norm")
    return e * e;
  if (kind == "norm1")
    return Halide::abs(e);
  throw InternalError("kernel generation: unknown reduction '" + kind + "'");
}

/// The reduction of `kind` from the sum `total` of its summands over
/// `count` elements.
Expr reductionOf(const std::string &kind, const Expr &total, int64_t count) {
  if (kind == "mean")
    return total / static_cast<float>(count);
  if (kind == "norm")
    // Zero at zero with a zero gradient there (as LibTorch's vector_norm),
    // not the square root's infinite slope times zero.
    return Halide::select(total > 0.f, Halide::sqrt(total), 0.f);
  return total;
}

/// The derivative of a reduction of `kind` with respect to the element
/// `e`, given the sum `total` of the summands over `count` elements.
Expr slope(const std::string &kind, const Expr &e, const Expr &total,
           int64_t count) {
  if (kind == "sum")
    return Expr(1.f);
  if (kind == "mean")
    return Expr(1.f / static_cast<float>(count));
  if (kind == "sqnorm")
    return 2.f * e;
  if (kind == "norm") // e / ||e||, and 0 where the norm is 0
    return Halide::select(total > 0.f, e / Halide::sqrt(total), 0.f);
  if (kind == "norm1")
    return Halide::select(e > 0.f, 1.f, Halide::select(e < 0.f, -1.f, 0.f));
  throw InternalError("kernel generation: unknown reduction '" + kind + "'");
}

/// Every operand's adjoint from `d`; zero for an operand the result does
/// not depend on.
void addGradInputs(FusedKernel &k, const Halide::Derivative &d,
                   const std::vector<Halide::Func> &operandFuncs,
                   const std::vector<Halide::Var> &vars) {
  for (size_t i = 0; i < operandFuncs.size(); ++i) {
    Halide::Func g = d(operandFuncs[i]);
    if (!g.defined()) {
      g = Halide::Func(k.name + "_zero" + std::to_string(i));
      g(vars) = 0.f;
    }
    k.gradInputs.push_back(g);
  }
}

} // namespace

FusedKernel buildFusedKernel(const json &fusedOp, const std::string &name) {
  FusedKernel k;
  k.id = fusedOp.value("kernel", int64_t(0));
  k.name = name;
  k.resultShape = fusedOp["shape"].get<std::vector<int64_t>>();
  k.rank = static_cast<int>(k.resultShape.size()) + 1;
  // A chain that ends in a reduction runs over the reduced value's shape.
  const bool reduced = runtime::fusedReduces(fusedOp);
  k.domainShape = runtime::fusedDomain(fusedOp);
  k.operandRank = static_cast<int>(k.domainShape.size()) + 1;
  std::vector<Halide::Var> vars;
  for (int i = 0; i < k.operandRank; ++i)
    vars.emplace_back(i + 1 == k.operandRank ? "b" : "x" + std::to_string(i));
  std::vector<Expr> at(vars.begin(), vars.end());
  k.domainVars = vars;

  const json &body = fusedOp["body"];
  std::vector<Expr> operands;
  // Operands enter through identity Funcs, so that the adjoint of each is a
  // Func of its own.
  std::vector<Halide::Func> operandFuncs;
  for (size_t i = 0; i < body["args"].size(); ++i) {
    k.inputShapes.push_back(
        fusedOp.contains("arg_shapes")
            ? fusedOp["arg_shapes"][i].get<std::vector<int64_t>>()
            : std::vector<int64_t>{});
    Halide::ImageParam in(Halide::Float(32), k.operandRank,
                          name + "_in" + std::to_string(i));
    // Broadcast operands arrive with stride 0, the innermost axis included
    // (a scalar against a vector), so Halide may not assume it dense.
    in.dim(0).set_stride(Expr());
    Halide::Func f(name + "_arg" + std::to_string(i));
    f(vars) = in(at);
    k.inputs.push_back(in);
    operandFuncs.push_back(f);
    operands.push_back(f(at));
  }
  k.forward = Halide::Func(name);
  Halide::Var b = vars.back();
  if (reduced) {
    // The elementwise part at the reduction's coordinates, summed over
    // them for each instance.
    Halide::Region dom;
    int64_t count = 1;
    for (size_t d = 0; d + 1 < vars.size(); ++d) {
      const int64_t extent = k.domainShape[k.domainShape.size() - 1 - d];
      dom.push_back({0, static_cast<int>(extent)});
      count *= extent;
    }
    Halide::RDom r(dom.empty() ? Halide::Region{{0, 1}} : dom, name + "_r");
    std::vector<Expr> point;
    for (size_t d = 0; d + 1 < vars.size(); ++d)
      point.push_back(r[static_cast<int>(d)]);
    point.push_back(b);
    json chain = body;
    const json last = chain["ops"].back();
    chain["ops"].erase(chain["ops"].size() - 1);
    chain["yield"] = json::array({last["args"][0]});
    const std::string kind = last["kind"];
    Halide::Func e(name + "_chain");
    e(vars) = fusedExpr(chain, operands);
    k.reduces = true;
    k.chain = e;
    // A Func of its own, so that it is computed once per instance forward
    // and backward (the adjoint reads it).
    Halide::Func total(name + "_total");
    total(b) = 0.f;
    total(b) += summand(kind, e(point));
    k.total = total;
    k.sumDomain = r;
    k.forward(b) = reductionOf(kind, total(b), count);

    // Backward: the reduction's slope at each element times the result's
    // adjoint, propagated through the elementwise chain alone (whose
    // adjoints are then elementwise too, not scatters over the domain).
    k.gradOutput =
        Halide::ImageParam(Halide::Float(32), k.rank, name + "_dresult");
    Halide::Func seed(name + "_seed");
    seed(vars) = k.gradOutput(b) * slope(kind, e(at), total(b), count);
    Halide::Region bounds = dom;
    bounds.push_back({k.gradOutput.dim(0).min(), k.gradOutput.dim(0).extent()});
    Halide::Derivative d = Halide::propagate_adjoints(e, seed, bounds);
    addGradInputs(k, d, operandFuncs, vars);
    return k;
  }
  k.forward(vars) = fusedExpr(body, operands);

  // Backward: the adjoint of the result over its own bounds.
  k.gradOutput =
      Halide::ImageParam(Halide::Float(32), k.rank, name + "_dresult");
  Halide::Func dout(name + "_dout");
  dout(vars) = k.gradOutput(at);
  Halide::Region bounds;
  for (int i = 0; i < k.rank; ++i)
    bounds.push_back({k.gradOutput.dim(i).min(), k.gradOutput.dim(i).extent()});
  Halide::Derivative d = Halide::propagate_adjoints(k.forward, dout, bounds);
  addGradInputs(k, d, operandFuncs, vars);
  return k;
}

namespace {

/// Calls `fn(op, user)` for every fused op of `plan`, where `user` says
/// which part of the program holds it ("layer 3").
void forEachFused(
    const json &plan,
    const std::function<void(const json &, const std::string &)> &fn) {
  auto walk = [&](const json &body, const std::string &user) {
    for (const json &op : body["ops"])
      if (op["op"] == "fused")
        fn(op, user);
  };
  for (const json &alg : plan["algorithms"]) {
    for (const json &layer : alg["layers"])
      walk(layer["body"],
           "layer " + std::to_string(layer["index"].get<int64_t>()));
    if (alg.contains("loss"))
      walk(alg["loss"], "the loss");
    size_t c = 0;
    for (const json &con : alg.value("constraints", json::array()))
      walk(con["body"], "constraint " + std::to_string(++c));
  }
}

int64_t kernelNumber(const json &op) {
  int64_t id = op.value("kernel", int64_t(-1));
  if (id < 0)
    throw InternalError("kernel generation: a fused op without a kernel "
                        "number");
  return id;
}

} // namespace

std::vector<FusedKernel> buildKernels(const json &plan) {
  std::map<int64_t, FusedKernel> byId;
  forEachFused(plan, [&](const json &op, const std::string &user) {
    int64_t id = kernelNumber(op);
    auto it = byId.find(id);
    if (it == byId.end())
      it = byId.emplace(id, buildFusedKernel(op, "k" + std::to_string(id)))
               .first;
    it->second.usedBy.push_back(user);
  });
  std::vector<FusedKernel> out;
  for (auto &[id, k] : byId)
    out.push_back(std::move(k));
  return out;
}

FusedKernel buildKernelOf(const json &plan, int64_t id) {
  // A copy: the walk may visit temporaries.
  std::optional<json> first;
  forEachFused(plan, [&](const json &op, const std::string &) {
    if (!first && kernelNumber(op) == id)
      first = op;
  });
  if (!first)
    throw InternalError("kernel generation: no kernel " + std::to_string(id));
  return buildFusedKernel(*first, "k" + std::to_string(id));
}

void printKernels(const json &plan, std::ostream &os) {
  std::vector<FusedKernel> kernels = buildKernels(plan);
  os << "// " << kernels.size() << " kernel(s) from the fused regions\n";
  for (FusedKernel &k : kernels) {
    os << "kernel " << k.name << "(";
    for (size_t i = 0; i < k.inputShapes.size(); ++i)
      os << (i ? ", " : "") << k.inputs[i].name() << ": "
         << shapeText(k.inputShapes[i]);
    os << ") -> " << shapeText(k.resultShape) << "\n  used by:";
    // "layer 2 (x8)" where a layer uses the kernel several times.
    for (size_t i = 0; i < k.usedBy.size();) {
      size_t j = i;
      while (j < k.usedBy.size() && k.usedBy[j] == k.usedBy[i])
        ++j;
      os << (i ? ", " : " ") << k.usedBy[i];
      if (j - i > 1)
        os << " (x" << j - i << ")";
      i = j;
    }
    os << "\n  forward: " << k.name << "(";
    for (int i = 0; i < k.rank; ++i)
      os << (i ? ", " : "") << k.forward.args()[i].name();
    os << ") = " << k.forward.value() << "\n";
    // A reduction's sum per instance, which the forward value reads, and
    // the elementwise chain it sums.
    if (k.reduces) {
      os << "  sum: " << k.total.name() << "(b) = " << k.total.update_value()
         << " for";
      for (int d = 0; d < k.sumDomain.dimensions(); ++d)
        os << (d ? ", " : " ") << k.sumDomain[d].name() << " < "
           << k.sumDomain[d].extent();
      os << "\n  chain: " << k.chain.name() << "(";
      for (size_t i = 0; i < k.domainVars.size(); ++i)
        os << (i ? ", " : "") << k.domainVars[i].name();
      os << ") = " << k.chain.value() << "\n";
    }
    for (size_t i = 0; i < k.gradInputs.size(); ++i)
      os << "  adjoint " << k.inputs[i].name() << ": "
         << k.gradInputs[i].value() << "\n";
  }
}

} // namespace unroll::compiler
