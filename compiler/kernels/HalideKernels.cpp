#include "compiler/kernels/HalideKernels.h"

#include "dsl/Diagnostics.h"

#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/TypeSwitch.h"

#include <map>
#include <sstream>

namespace unroll::compiler {

using dsl::InternalError;
using Halide::Expr;

namespace {

std::vector<int64_t> shapeOf(mlir::Type t) {
  auto r = mlir::cast<mlir::RankedTensorType>(t);
  return {r.getShape().begin(), r.getShape().end()};
}

Expr unary(llvm::StringRef fn, const Expr &x) {
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
  throw InternalError("kernel generation: unknown elementwise function '" +
                      fn.str() + "'");
}

std::string shapeText(const std::vector<int64_t> &s) {
  std::string o = "[";
  for (size_t i = 0; i < s.size(); ++i)
    o += (i ? ", " : "") + std::to_string(s[i]);
  return o + "]";
}

} // namespace

FusedKernel buildFusedKernel(ir::FusedOp op, const std::string &name) {
  FusedKernel k;
  k.name = name;
  k.resultShape = shapeOf(op.getResult().getType());
  k.rank = static_cast<int>(k.resultShape.size()) + 1;
  std::vector<Halide::Var> vars;
  for (int i = 0; i < k.rank; ++i)
    vars.emplace_back(i + 1 == k.rank ? "b" : "x" + std::to_string(i));
  std::vector<Expr> at(vars.begin(), vars.end());

  mlir::Block &body = op.getBody().front();
  llvm::DenseMap<mlir::Value, Expr> value;
  // Operands enter through identity Funcs, so that the adjoint of each is a
  // Func of its own.
  std::vector<Halide::Func> operandFuncs;
  for (unsigned i = 0; i < op.getInputs().size(); ++i) {
    k.inputShapes.push_back(shapeOf(op.getInputs()[i].getType()));
    Halide::ImageParam in(Halide::Float(32), k.rank,
                          name + "_in" + std::to_string(i));
    // Broadcast operands arrive with stride 0, the innermost axis included
    // (a scalar against a vector), so Halide may not assume it dense.
    in.dim(0).set_stride(Expr());
    Halide::Func f(name + "_arg" + std::to_string(i));
    f(vars) = in(at);
    k.inputs.push_back(in);
    operandFuncs.push_back(f);
    value[body.getArgument(i)] = f(at);
  }
  auto get = [&](mlir::Value v) {
    auto it = value.find(v);
    if (it == value.end())
      throw InternalError("kernel generation: a fused region uses a value "
                          "from outside");
    return it->second;
  };
  mlir::Value result;
  for (mlir::Operation &o : body) {
    Expr e;
    if (auto y = mlir::dyn_cast<ir::YieldOp>(o)) {
      result = y.getValues()[0];
      continue;
    }
    auto bin = [&](auto fn) {
      return fn(get(o.getOperand(0)), get(o.getOperand(1)));
    };
    if (mlir::isa<ir::AddOp>(o))
      e = bin([](Expr a, Expr b) { return a + b; });
    else if (mlir::isa<ir::SubOp>(o))
      e = bin([](Expr a, Expr b) { return a - b; });
    else if (mlir::isa<ir::MulOp>(o))
      e = bin([](Expr a, Expr b) { return a * b; });
    else if (mlir::isa<ir::DivOp>(o))
      e = bin([](Expr a, Expr b) { return a / b; });
    else if (mlir::isa<ir::PowOp>(o))
      e = bin([](Expr a, Expr b) { return Halide::pow(a, b); });
    else if (mlir::isa<ir::MaxOp>(o))
      e = bin([](Expr a, Expr b) { return Halide::max(a, b); });
    else if (mlir::isa<ir::MinOp>(o))
      e = bin([](Expr a, Expr b) { return Halide::min(a, b); });
    else if (auto u = mlir::dyn_cast<ir::UnaryOp>(o))
      e = unary(u.getFn(), get(u.getOperand()));
    else
      throw InternalError("kernel generation: '" +
                          o.getName().getStringRef().str() +
                          "' in a fused region");
    value[o.getResult(0)] = e;
  }
  k.forward = Halide::Func(name);
  k.forward(vars) = get(result);

  // Backward: the adjoint of the result over its own bounds.
  k.gradOutput =
      Halide::ImageParam(Halide::Float(32), k.rank, name + "_dresult");
  Halide::Func dout(name + "_dout");
  dout(vars) = k.gradOutput(at);
  Halide::Region bounds;
  for (int i = 0; i < k.rank; ++i)
    bounds.push_back({k.gradOutput.dim(i).min(), k.gradOutput.dim(i).extent()});
  Halide::Derivative d = Halide::propagate_adjoints(k.forward, dout, bounds);
  for (unsigned i = 0; i < operandFuncs.size(); ++i) {
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

/// A description of what a fused region computes, independent of SSA
/// names: two regions with the same key are the same kernel.
std::string regionKey(ir::FusedOp op) {
  std::string key;
  llvm::raw_string_ostream os(key);
  for (mlir::Type t : op.getInputs().getTypes())
    os << t << ";";
  llvm::DenseMap<mlir::Value, unsigned> number;
  mlir::Block &body = op.getBody().front();
  for (mlir::BlockArgument a : body.getArguments())
    number[a] = number.size();
  for (mlir::Operation &o : body) {
    os << o.getName() << o.getAttrDictionary() << "(";
    for (mlir::Value v : o.getOperands())
      os << number.lookup(v) << ",";
    os << ")";
    for (mlir::Value r : o.getResults()) {
      os << r.getType();
      number[r] = number.size();
    }
    os << ";";
  }
  return os.str();
}

void printKernels(mlir::ModuleOp module, llvm::raw_ostream &os) {
  struct Entry {
    FusedKernel kernel;
    std::string forward;
    std::vector<std::string> where;
  };
  std::vector<Entry> kernels;
  std::map<std::string, size_t> byKey;
  module.walk([&](ir::FusedOp op) {
    std::string where = "body";
    if (auto layer = op->getParentOfType<ir::LayerOp>())
      where = "layer " + std::to_string(layer.getIndex());
    std::string key = regionKey(op);
    auto it = byKey.find(key);
    if (it != byKey.end()) {
      kernels[it->second].where.push_back(where);
      return;
    }
    FusedKernel k = buildFusedKernel(op, "k" + std::to_string(kernels.size()));
    std::ostringstream fwd;
    fwd << k.forward.value();
    byKey[key] = kernels.size();
    kernels.push_back({k, fwd.str(), {where}});
  });
  os << "// " << kernels.size() << " kernel(s) from the fused regions\n";
  for (Entry &e : kernels) {
    FusedKernel &k = e.kernel;
    os << "kernel " << k.name << "(";
    for (size_t i = 0; i < k.inputShapes.size(); ++i)
      os << (i ? ", " : "") << k.inputs[i].name() << ": "
         << shapeText(k.inputShapes[i]);
    os << ") -> " << shapeText(k.resultShape) << "\n  used by:";
    for (const std::string &w : e.where)
      os << " " << w << (&w == &e.where.back() ? "" : ",");
    os << "\n  forward: " << k.name << "(";
    for (int i = 0; i < k.rank; ++i)
      os << (i ? ", " : "") << k.forward.args()[i].name();
    os << ") = " << e.forward << "\n";
    for (size_t i = 0; i < k.gradInputs.size(); ++i) {
      std::ostringstream g;
      g << k.gradInputs[i].value();
      os << "  adjoint " << k.inputs[i].name() << ": " << g.str() << "\n";
    }
  }
}

} // namespace unroll::compiler
