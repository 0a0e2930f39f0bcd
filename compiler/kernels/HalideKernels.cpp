#include "compiler/kernels/HalideKernels.h"

#include "dsl/Diagnostics.h"

#include <map>
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

FusedKernel buildFusedKernel(const json &fusedOp, const std::string &name) {
  FusedKernel k;
  k.id = fusedOp.value("kernel", int64_t(0));
  k.name = name;
  k.resultShape = fusedOp["shape"].get<std::vector<int64_t>>();
  k.rank = static_cast<int>(k.resultShape.size()) + 1;
  std::vector<Halide::Var> vars;
  for (int i = 0; i < k.rank; ++i)
    vars.emplace_back(i + 1 == k.rank ? "b" : "x" + std::to_string(i));
  std::vector<Expr> at(vars.begin(), vars.end());

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
    Halide::ImageParam in(Halide::Float(32), k.rank,
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
  for (size_t i = 0; i < operandFuncs.size(); ++i) {
    Halide::Func g = d(operandFuncs[i]);
    if (!g.defined()) {
      // The result does not depend on this operand: a zero adjoint.
      g = Halide::Func(name + "_zero" + std::to_string(i));
      g(vars) = 0.f;
    }
    k.gradInputs.push_back(g);
  }
  return k;
}

std::vector<FusedKernel> buildKernels(const json &plan) {
  std::map<int64_t, FusedKernel> byId;
  for (const json &alg : plan["algorithms"])
    for (const json &layer : alg["layers"])
      for (const json &op : layer["body"]["ops"]) {
        if (op["op"] != "fused")
          continue;
        int64_t id = op.value("kernel", int64_t(-1));
        if (id < 0)
          throw InternalError("kernel generation: a fused op without a "
                              "kernel number");
        auto it = byId.find(id);
        if (it == byId.end())
          it = byId.emplace(id, buildFusedKernel(op, "k" + std::to_string(id)))
                   .first;
        it->second.usedBy.push_back(
            "layer " + std::to_string(layer["index"].get<int64_t>()));
      }
  std::vector<FusedKernel> out;
  for (auto &[id, k] : byId)
    out.push_back(std::move(k));
  return out;
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
    for (size_t i = 0; i < k.gradInputs.size(); ++i)
      os << "  adjoint " << k.inputs[i].name() << ": "
         << k.gradInputs[i].value() << "\n";
  }
}

} // namespace unroll::compiler
