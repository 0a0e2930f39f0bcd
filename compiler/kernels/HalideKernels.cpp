#include "compiler/kernels/HalideKernels.h"

#include "dsl/Diagnostics.h"

#include <functional>
#include <map>
#include <optional>
#include <sstream>

namespace unroll::compiler {

using dsl::InternalError;
using Halide::Expr;

namespace {

Expr unary(abi::UnaryFn fn, const Expr &x) {
  using abi::UnaryFn;
  switch (fn) {
  case UnaryFn::Neg:
    return -x;
  case UnaryFn::Abs:
    return Halide::abs(x);
  case UnaryFn::Sign:
    return Halide::select(x > 0.f, 1.f, Halide::select(x < 0.f, -1.f, 0.f));
  case UnaryFn::Relu:
    return Halide::max(x, 0.f);
  case UnaryFn::Exp:
    return Halide::exp(x);
  case UnaryFn::Log:
    return Halide::log(x);
  case UnaryFn::Sqrt:
    return Halide::sqrt(x);
  case UnaryFn::Tanh:
    return Halide::tanh(x);
  case UnaryFn::Sigmoid:
    return 1.f / (1.f + Halide::exp(-x));
  case UnaryFn::Square:
    return x * x;
  case UnaryFn::Step:
    return Halide::select(x > 0.f, 1.f, 0.f);
  }
  throw InternalError(std::string("kernel generation: unknown elementwise "
                                  "function '") +
                      abi::spelling(fn) + "'");
}

std::string shapeText(const std::vector<int64_t> &s) {
  std::string o = "[";
  for (size_t i = 0; i < s.size(); ++i)
    o += (i ? ", " : "") + std::to_string(s[i]);
  return o + "]";
}

} // namespace

Expr elementwise(const abi::Op &o, const std::vector<Expr> &a) {
  if (o.code == abi::OpCode::Unary && a.size() == 1)
    return unary(o.fn, a[0]);
  if (a.size() == 2)
    switch (o.code) {
    case abi::OpCode::Add:
      return a[0] + a[1];
    case abi::OpCode::Sub:
      return a[0] - a[1];
    case abi::OpCode::Mul:
      return a[0] * a[1];
    case abi::OpCode::Div:
      return a[0] / a[1];
    case abi::OpCode::Pow:
      return Halide::pow(a[0], a[1]);
    case abi::OpCode::Max:
      return Halide::max(a[0], a[1]);
    case abi::OpCode::Min:
      return Halide::min(a[0], a[1]);
    default:
      break;
    }
  throw InternalError(std::string("kernel generation: '") +
                      abi::opName(o.code) + "' is not elementwise");
}

Expr fusedExpr(const abi::Body &body, const std::vector<Expr> &operands,
               size_t opCount) {
  std::map<int64_t, Expr> value;
  for (size_t i = 0; i < operands.size(); ++i)
    value[body.args[i]] = operands[i];
  auto get = [&](int64_t id) {
    auto it = value.find(id);
    if (it == value.end())
      throw InternalError("kernel generation: a fused region uses a value "
                          "from outside");
    return it->second;
  };
  const size_t n = std::min(opCount, body.ops.size());
  for (size_t i = 0; i < n; ++i) {
    const abi::Op &o = body.ops[i];
    std::vector<Expr> args;
    for (int64_t id : o.args)
      args.push_back(get(id));
    value[o.id] = elementwise(o, args);
  }
  // Stopped before the last op (a reduction): its operand.
  return get(n < body.ops.size() ? body.ops[n].args[0] : body.yield[0]);
}

namespace {

/// What a reduction of `kind` sums for each element `e`.
Expr summand(abi::ReduceKind kind, const Expr &e) {
  using abi::ReduceKind;
  switch (kind) {
  case ReduceKind::Sum:
  case ReduceKind::Mean:
    return e;
  case ReduceKind::Sqnorm:
  case ReduceKind::Norm:
    return e * e;
  case ReduceKind::Norm1:
    return Halide::abs(e);
  }
  throw InternalError("kernel generation: unknown reduction");
}

/// The reduction of `kind` from the sum `total` of its summands over
/// `count` elements.
Expr reductionOf(abi::ReduceKind kind, const Expr &total, int64_t count) {
  if (kind == abi::ReduceKind::Mean)
    return total / static_cast<float>(count);
  if (kind == abi::ReduceKind::Norm)
    // Zero at zero with a zero gradient there (as LibTorch's vector_norm),
    // not the square root's infinite slope times zero.
    return Halide::select(total > 0.f, Halide::sqrt(total), 0.f);
  return total;
}

/// The derivative of a reduction of `kind` with respect to the element
/// `e`, given the sum `total` of the summands over `count` elements.
Expr slope(abi::ReduceKind kind, const Expr &e, const Expr &total,
           int64_t count) {
  using abi::ReduceKind;
  switch (kind) {
  case ReduceKind::Sum:
    return Expr(1.f);
  case ReduceKind::Mean:
    return Expr(1.f / static_cast<float>(count));
  case ReduceKind::Sqnorm:
    return 2.f * e;
  case ReduceKind::Norm: // e / ||e||, and 0 where the norm is 0
    return Halide::select(total > 0.f, e / Halide::sqrt(total), 0.f);
  case ReduceKind::Norm1:
    return Halide::select(e > 0.f, 1.f, Halide::select(e < 0.f, -1.f, 0.f));
  }
  throw InternalError("kernel generation: unknown reduction");
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

FusedKernel buildFusedKernel(const abi::Op &fusedOp, const std::string &name) {
  if (fusedOp.code != abi::OpCode::Fused || !fusedOp.body)
    throw InternalError("kernel generation: not a fused op");
  FusedKernel k;
  k.id = fusedOp.kernel;
  k.name = name;
  k.resultShape = fusedOp.shape;
  k.rank = static_cast<int>(k.resultShape.size()) + 1;
  // A chain that ends in a reduction runs over the reduced value's shape.
  const bool reduced = fusedOp.reduces();
  k.domainShape = fusedOp.domain();
  k.operandRank = static_cast<int>(k.domainShape.size()) + 1;
  std::vector<Halide::Var> vars;
  for (int i = 0; i < k.operandRank; ++i)
    vars.emplace_back(i + 1 == k.operandRank ? "b" : "x" + std::to_string(i));
  std::vector<Expr> at(vars.begin(), vars.end());
  k.domainVars = vars;

  const abi::Body &body = *fusedOp.body;
  std::vector<Expr> operands;
  // Operands enter through identity Funcs, so that the adjoint of each is a
  // Func of its own.
  std::vector<Halide::Func> operandFuncs;
  for (size_t i = 0; i < body.args.size(); ++i) {
    k.inputShapes.push_back(fusedOp.argShapes[i]);
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
    const abi::ReduceKind kind = body.ops.back().reduce;
    Halide::Func e(name + "_chain");
    // The chain: every op but the reduction.
    e(vars) = fusedExpr(body, operands, body.ops.size() - 1);
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
    const abi::Plan &plan,
    const std::function<void(const abi::Op &, const std::string &)> &fn) {
  auto walk = [&](const abi::Body &body, const std::string &user) {
    for (const abi::Op &op : body.ops)
      if (op.code == abi::OpCode::Fused)
        fn(op, user);
  };
  for (const abi::Algorithm &alg : plan.algorithms) {
    for (const abi::Layer &layer : alg.layers)
      walk(layer.body, "layer " + std::to_string(layer.index));
    if (alg.loss)
      walk(*alg.loss, "the loss");
    size_t c = 0;
    for (const abi::Constraint &con : alg.constraints)
      walk(con.body, "constraint " + std::to_string(++c));
  }
}

} // namespace

std::vector<FusedKernel> buildKernels(const abi::Plan &plan) {
  std::map<int64_t, FusedKernel> byId;
  forEachFused(plan, [&](const abi::Op &op, const std::string &user) {
    auto it = byId.find(op.kernel);
    if (it == byId.end())
      it = byId.emplace(op.kernel,
                        buildFusedKernel(op, "k" + std::to_string(op.kernel)))
               .first;
    it->second.usedBy.push_back(user);
  });
  std::vector<FusedKernel> out;
  for (auto &[id, k] : byId)
    out.push_back(std::move(k));
  return out;
}

FusedKernel buildKernelOf(const abi::Plan &plan, int64_t id) {
  const abi::Op *first = nullptr;
  forEachFused(plan, [&](const abi::Op &op, const std::string &) {
    if (!first && op.kernel == id)
      first = &op;
  });
  if (!first)
    throw InternalError("kernel generation: no kernel " + std::to_string(id));
  return buildFusedKernel(*first, "k" + std::to_string(id));
}

void printKernels(const abi::Plan &plan, std::ostream &os) {
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
