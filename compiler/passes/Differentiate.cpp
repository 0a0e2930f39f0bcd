#include "compiler/passes/Differentiate.h"

#include "compiler/dialect/UnrollDialect.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/Pass/PassRegistry.h"
#include "llvm/ADT/DenseSet.h"

#include <functional>

namespace unroll::compiler {

namespace {

using namespace mlir;
using ir::tensorType;

RankedTensorType typeOf(Value v) { return cast<RankedTensorType>(v.getType()); }

/// Builds the adjoint IR of one gradient.
class Adjoint {
public:
  Adjoint(OpBuilder &b, Location loc) : b_(b), loc_(loc) {}

  Value scalar(double v) {
    return b_.create<ir::ConstantOp>(loc_, tensorType(b_.getContext(), {}),
                                     b_.getF32FloatAttr(static_cast<float>(v)));
  }
  Value unary(StringRef fn, Value x) {
    return b_.create<ir::UnaryOp>(loc_, fn, x);
  }
  Value add(Value x, Value y) { return b_.create<ir::AddOp>(loc_, x, y); }
  Value sub(Value x, Value y) { return b_.create<ir::SubOp>(loc_, x, y); }
  Value mul(Value x, Value y) { return b_.create<ir::MulOp>(loc_, x, y); }
  Value div(Value x, Value y) { return b_.create<ir::DivOp>(loc_, x, y); }
  Value matmul(Value x, Value y) { return b_.create<ir::MatmulOp>(loc_, x, y); }
  Value transpose(Value x) { return b_.create<ir::TransposeOp>(loc_, x); }
  Value outer(Value x, Value y) { return b_.create<ir::OuterOp>(loc_, x, y); }
  /// The entries of `x` along `axis` from `start`, with the shape of `t`.
  Value slice(Value x, RankedTensorType t, int64_t axis, int64_t start) {
    return b_.create<ir::SliceOp>(loc_, t, x, axis, start);
  }
  Value fill(Value s, RankedTensorType t) {
    return b_.create<ir::FillOp>(loc_, t, s);
  }
  Value reshape(Value x, RankedTensorType t) {
    if (x.getType() == t)
      return x;
    return b_.create<ir::ReshapeOp>(loc_, t, x);
  }
  /// Sums `x` over `axis`.
  Value sumAxis(Value x, int64_t axis) {
    llvm::SmallVector<int64_t> s(typeOf(x).getShape());
    s.erase(s.begin() + axis);
    return b_.create<ir::ReduceOp>(loc_, tensorType(b_.getContext(), s), "sum",
                                   x, b_.getI64IntegerAttr(axis));
  }
  Value sumAll(Value x) {
    return b_.create<ir::ReduceOp>(loc_, tensorType(b_.getContext(), {}), "sum",
                                   x, IntegerAttr());
  }
  /// `c` summed down to `t` where it was broadcast.
  Value sumTo(Value c, RankedTensorType t) {
    if (c.getType() == t)
      return c;
    return b_.create<ir::SumToOp>(loc_, t, c);
  }

  /// Adds contribution `c` to the adjoint of `v`.
  void accumulate(Value v, Value c) {
    c = sumTo(c, typeOf(v));
    auto it = adj_.find(v);
    if (it == adj_.end())
      adj_[v] = c;
    else
      it->second = add(it->second, c);
  }
  Value get(Value v) const { return adj_.lookup(v); }

  /// Propagates the adjoint `g` of `op`'s result to its active operands.
  LogicalResult propagate(Operation &op, Value g,
                          const llvm::DenseSet<Value> &active) {
    loc_ = op.getLoc();
    auto act = [&](unsigned i) { return active.contains(op.getOperand(i)); };
    Value r = op.getResult(0);
    if (auto u = dyn_cast<ir::UnaryOp>(op)) {
      Value x = u.getOperand();
      StringRef fn = u.getFn();
      Value d;
      if (fn == "neg")
        d = unary("neg", g);
      else if (fn == "abs")
        d = mul(g, unary("sign", x));
      else if (fn == "relu")
        d = mul(g, unary("step", x));
      else if (fn == "exp")
        d = mul(g, r);
      else if (fn == "log")
        d = div(g, x);
      else if (fn == "sqrt")
        d = div(mul(g, scalar(0.5)), r);
      else if (fn == "tanh")
        d = mul(g, sub(scalar(1), mul(r, r)));
      else if (fn == "sigmoid")
        d = mul(g, mul(r, sub(scalar(1), r)));
      else if (fn == "square")
        d = mul(g, mul(x, scalar(2)));
      else // sign, step: zero almost everywhere
        return success();
      accumulate(x, d);
      return success();
    }
    if (isa<ir::AddOp>(op)) {
      if (act(0))
        accumulate(op.getOperand(0), g);
      if (act(1))
        accumulate(op.getOperand(1), g);
      return success();
    }
    if (isa<ir::SubOp>(op)) {
      if (act(0))
        accumulate(op.getOperand(0), g);
      if (act(1))
        accumulate(op.getOperand(1), unary("neg", g));
      return success();
    }
    if (isa<ir::MulOp>(op)) {
      Value a = op.getOperand(0), c = op.getOperand(1);
      if (act(0))
        accumulate(a, mul(g, c));
      if (act(1))
        accumulate(c, mul(g, a));
      return success();
    }
    if (isa<ir::DivOp>(op)) {
      Value a = op.getOperand(0), c = op.getOperand(1);
      if (act(0))
        accumulate(a, div(g, c));
      if (act(1))
        accumulate(c, unary("neg", mul(g, div(r, c))));
      return success();
    }
    if (isa<ir::PowOp>(op)) {
      Value a = op.getOperand(0), e = op.getOperand(1);
      if (act(1))
        return op.emitError("cannot differentiate with respect to an exponent");
      accumulate(
          a, mul(g, mul(e, b_.create<ir::PowOp>(loc_, a, sub(e, scalar(1))))));
      return success();
    }
    if (isa<ir::MaxOp, ir::MinOp>(op)) {
      // Subgradient: the larger (max) or smaller (min) operand gets it all.
      Value a = op.getOperand(0), c = op.getOperand(1);
      Value pick = isa<ir::MaxOp>(op) ? unary("step", sub(a, c))
                                      : unary("step", sub(c, a));
      if (act(0))
        accumulate(a, mul(g, pick));
      if (act(1))
        accumulate(c, mul(g, sub(scalar(1), pick)));
      return success();
    }
    if (auto m = dyn_cast<ir::MatmulOp>(op)) {
      Value a = m.getLhs(), c = m.getRhs();
      int64_t ra = typeOf(a).getRank(), rc = typeOf(c).getRank();
      // Adjoints are built only for active operands.
      std::function<Value()> da, dc;
      if (ra == 1 && rc == 1) {
        da = [&] { return mul(g, c); };
        dc = [&] { return mul(g, a); };
      } else if (ra == 2 && rc == 1) {
        da = [&] { return outer(g, c); };
        dc = [&] { return matmul(transpose(a), g); };
      } else if (ra == 1 && rc == 2) {
        da = [&] { return matmul(c, g); };
        dc = [&] { return outer(a, g); };
      } else if ((ra == 2 && rc == 2) || (ra == 3 && rc == 3)) {
        da = [&] { return matmul(g, transpose(c)); };
        dc = [&] { return matmul(transpose(a), g); };
      } else if (ra == 3 && rc == 2) {
        // A stack of matrices by one matrix: the matrix's adjoint sums the
        // stack's contributions.
        da = [&] { return matmul(g, transpose(c)); };
        dc = [&] { return sumAxis(matmul(transpose(a), g), 0); };
      } else if (ra == 3 && rc == 1) {
        auto ta = typeOf(a);
        auto ge = [&] {
          return b_.create<ir::ExpandOp>(loc_, ta, g, b_.getI64IntegerAttr(2));
        };
        da = [&] { return mul(ge(), c); };
        dc = [&] { return sumAxis(sumAxis(mul(a, ge()), 0), 0); };
      } else {
        return op.emitError("cannot differentiate this matrix product yet (")
               << a.getType() << " @ " << c.getType() << ")";
      }
      if (act(0))
        accumulate(a, da());
      if (act(1))
        accumulate(c, dc());
      return success();
    }
    if (auto t = dyn_cast<ir::TransposeOp>(op)) {
      accumulate(t.getOperand(), transpose(g));
      return success();
    }
    if (auto o = dyn_cast<ir::OuterOp>(op)) {
      if (act(0))
        accumulate(o.getLhs(), matmul(g, o.getRhs()));
      if (act(1))
        accumulate(o.getRhs(), matmul(transpose(g), o.getLhs()));
      return success();
    }
    if (auto f = dyn_cast<ir::FillOp>(op)) {
      accumulate(f.getValue(), sumAll(g));
      return success();
    }
    if (auto e = dyn_cast<ir::ExpandOp>(op)) {
      accumulate(e.getOperand(), sumAxis(g, e.getAxis()));
      return success();
    }
    if (auto s = dyn_cast<ir::SumToOp>(op)) {
      auto t = typeOf(s.getOperand());
      accumulate(s.getOperand(), add(fill(scalar(0), t), g));
      return success();
    }
    if (auto red = dyn_cast<ir::ReduceOp>(op)) {
      Value x = red.getOperand();
      auto t = typeOf(x);
      StringRef k = red.getKind();
      if (auto ax = red.getAxisAttr()) {
        Value d = b_.create<ir::ExpandOp>(loc_, t, g, ax);
        if (k == "mean")
          d = div(d, scalar(static_cast<double>(t.getShape()[ax.getInt()])));
        accumulate(x, d);
        return success();
      }
      Value d;
      if (k == "sum")
        d = fill(g, t);
      else if (k == "mean")
        d = fill(div(g, scalar(static_cast<double>(t.getNumElements()))), t);
      else if (k == "norm")
        d = mul(div(x, r), g);
      else if (k == "norm1")
        d = mul(unary("sign", x), g);
      else // sqnorm
        d = mul(x, mul(g, scalar(2)));
      accumulate(x, d);
      return success();
    }
    if (auto c = dyn_cast<ir::ConcatOp>(op)) {
      int64_t ax = c.getAxis();
      auto ta = typeOf(c.getLhs()), tb = typeOf(c.getRhs());
      if (act(0))
        accumulate(c.getLhs(), slice(g, ta, ax, 0));
      if (act(1))
        accumulate(c.getRhs(), slice(g, tb, ax, ta.getShape()[ax]));
      return success();
    }
    if (auto sl = dyn_cast<ir::SliceOp>(op)) {
      // Zeros around the slice's adjoint, back to the operand's shape.
      auto in = typeOf(sl.getOperand());
      int64_t ax = sl.getAxis(), st = sl.getStart();
      int64_t n = typeOf(r).getShape()[ax], total = in.getShape()[ax];
      Value d = g;
      auto zerosAlong = [&](int64_t size) {
        llvm::SmallVector<int64_t> s(in.getShape());
        s[ax] = size;
        return fill(scalar(0), tensorType(b_.getContext(), s));
      };
      if (st > 0)
        d = b_.create<ir::ConcatOp>(loc_, zerosAlong(st), d, ax);
      if (st + n < total)
        d = b_.create<ir::ConcatOp>(loc_, d, zerosAlong(total - st - n), ax);
      accumulate(sl.getOperand(), d);
      return success();
    }
    if (isa<ir::Squeeze2dOp>(op)) {
      accumulate(op.getOperand(0), b_.create<ir::Unsqueeze2dOp>(loc_, g));
      return success();
    }
    if (isa<ir::Unsqueeze2dOp>(op)) {
      accumulate(op.getOperand(0), b_.create<ir::Squeeze2dOp>(loc_, g));
      return success();
    }
    if (auto ls = dyn_cast<ir::LogSumExpOp>(op)) {
      // d lse / dx = softmax(x), broadcast g back along the axis.
      Value x = ls.getOperand();
      Value sm = b_.create<ir::SoftmaxOp>(loc_, x, ls.getAxisAttr());
      Value ge = b_.create<ir::ExpandOp>(loc_, typeOf(x), g, ls.getAxisAttr());
      accumulate(x, mul(ge, sm));
      return success();
    }
    if (auto sm = dyn_cast<ir::SoftmaxOp>(op)) {
      // s * (g - sum(g * s, axis)), the sum broadcast back along the axis.
      Value x = sm.getOperand();
      Value dot = sumAxis(mul(g, r), sm.getAxis());
      Value back =
          b_.create<ir::ExpandOp>(loc_, typeOf(x), dot, sm.getAxisAttr());
      accumulate(x, mul(r, sub(g, back)));
      return success();
    }
    if (auto cv = dyn_cast<ir::Conv2dOp>(op)) {
      if (act(0))
        accumulate(cv.getInput(),
                   b_.create<ir::Conv2dTransposeOp>(loc_, g, cv.getKernel()));
      if (act(1))
        accumulate(cv.getKernel(),
                   b_.create<ir::Conv2dKernelAdjointOp>(
                       loc_, typeOf(cv.getKernel()), cv.getInput(), g));
      return success();
    }
    if (auto ct = dyn_cast<ir::Conv2dTransposeOp>(op)) {
      // Bilinear in (adjoint image, kernel), like conv2d itself.
      if (act(0))
        accumulate(ct.getInput(),
                   b_.create<ir::Conv2dOp>(loc_, g, ct.getKernel()));
      if (act(1))
        accumulate(ct.getKernel(),
                   b_.create<ir::Conv2dKernelAdjointOp>(
                       loc_, typeOf(ct.getKernel()), g, ct.getInput()));
      return success();
    }
    if (auto ka = dyn_cast<ir::Conv2dKernelAdjointOp>(op)) {
      if (act(0))
        accumulate(ka.getInput(),
                   b_.create<ir::Conv2dTransposeOp>(loc_, ka.getAdjoint(), g));
      if (act(1))
        accumulate(ka.getAdjoint(),
                   b_.create<ir::Conv2dOp>(loc_, ka.getInput(), g));
      return success();
    }
    if (auto cv = dyn_cast<ir::Conv1x1Op>(op)) {
      Value x = cv.getInput(), w = cv.getWeight();
      if (act(0))
        accumulate(x, b_.create<ir::Conv1x1Op>(loc_, g, transpose(w)));
      if (act(1)) {
        // Pixels as columns: dW = g [co, hw] @ x [c, hw]^T.
        auto tx = typeOf(x), tg = typeOf(g);
        int64_t pixels = tx.getShape()[1] * tx.getShape()[2];
        auto flat = [&](Value v, int64_t rows) {
          return reshape(v, tensorType(b_.getContext(), {rows, pixels}));
        };
        accumulate(w, matmul(flat(g, tg.getShape()[0]),
                             transpose(flat(x, tx.getShape()[0]))));
      }
      return success();
    }
    if (auto rs = dyn_cast<ir::ReshapeOp>(op)) {
      accumulate(rs.getOperand(), reshape(g, typeOf(rs.getOperand())));
      return success();
    }
    if (isa<ir::InverseOp>(op)) {
      // d(A^-1) = -A^-1 dA A^-1, so the adjoint is -A^-T g A^-T.
      Value rt = transpose(r);
      accumulate(op.getOperand(0), unary("neg", matmul(matmul(rt, g), rt)));
      return success();
    }
    if (isa<ir::LipschitzOp>(op)) {
      Value d = op.getOperand(0);
      accumulate(d, mul(g, b_.create<ir::LipschitzGradOp>(loc_, d)));
      return success();
    }
    if (auto gf = dyn_cast<ir::GraphFilterOp>(op))
      return graphFilter(gf, g, act(0), act(1), act(2));
    if (isa<ir::LipschitzGradOp>(op))
      return op.emitError("cannot differentiate lipschitz twice (its second "
                          "derivative needs every singular vector)");
    return op.emitError("cannot differentiate '")
           << op.getName() << "' with respect to its operands yet";
  }

private:
  /// r = sum_k h_k S^k x. Works on x as [n, rest] so that every power is a
  /// matrix product.
  LogicalResult graphFilter(ir::GraphFilterOp gf, Value g, bool actS, bool actX,
                            bool actH) {
    Value S = gf.getShift(), x = gf.getSignal(), h = gf.getTaps();
    auto tx = typeOf(x);
    int64_t n = tx.getShape()[0], rest = tx.getNumElements() / n;
    int64_t taps = typeOf(h).getShape()[0];
    auto mat = tensorType(b_.getContext(), {n, rest});
    if (actX) // the adjoint filter: sum_k h_k (S^T)^k g
      accumulate(x, b_.create<ir::GraphFilterOp>(loc_, tx, transpose(S), g, h));
    if (!actS && !actH)
      return success();
    Value g2 = reshape(g, mat);
    llvm::SmallVector<Value> z{reshape(x, mat)}; // z_k = S^k x
    for (int64_t k = 1; k < taps; ++k)
      z.push_back(matmul(S, z.back()));
    if (actH) { // dh_k = <S^k x, g>
      auto one = tensorType(b_.getContext(), {1});
      Value dh = reshape(sumAll(mul(z[0], g2)), one);
      for (int64_t k = 1; k < taps; ++k)
        dh = b_.create<ir::ConcatOp>(loc_, dh,
                                     reshape(sumAll(mul(z[k], g2)), one), 0);
      accumulate(h, dh);
    }
    if (actS && taps > 1) {
      // dS = sum_k h_k sum_{j<k} (S^T)^j g (S^{k-1-j} x)^T
      //    = sum_m c_m z_m^T with c_m = sum_{k>m} h_k (S^T)^{k-1-m} g.
      llvm::SmallVector<Value> w{g2}; // w_j = (S^T)^j g
      Value st = transpose(S);
      for (int64_t j = 1; j + 1 < taps; ++j)
        w.push_back(matmul(st, w.back()));
      auto one = tensorType(b_.getContext(), {1});
      Value dS;
      for (int64_t m = 0; m + 1 < taps; ++m) {
        Value c;
        for (int64_t k = m + 1; k < taps; ++k) {
          Value term = mul(slice(h, one, 0, k), w[k - 1 - m]);
          c = c ? add(c, term) : term;
        }
        Value part = matmul(c, transpose(z[m]));
        dS = dS ? add(dS, part) : part;
      }
      accumulate(S, dS);
    }
    return success();
  }

  OpBuilder &b_;
  Location loc_;
  llvm::DenseMap<Value, Value> adj_;
};

struct DifferentiatePass
    : public PassWrapper<DifferentiatePass, OperationPass<ModuleOp>> {
  MLIR_DEFINE_EXPLICIT_INTERNAL_INLINE_TYPE_ID(DifferentiatePass)

  StringRef getArgument() const final { return "differentiate"; }
  StringRef getName() const final { return "Differentiate"; }
  StringRef getDescription() const final {
    return "Replace unroll.grad by explicit reverse-mode IR";
  }
  void getDependentDialects(DialectRegistry &registry) const override {
    registry.insert<ir::UnrollDialect>();
  }

  void runOnOperation() override {
    // Post-order: a gradient inside another's body is expanded first.
    SmallVector<ir::GradOp> grads;
    getOperation().walk([&](ir::GradOp g) { grads.push_back(g); });
    for (ir::GradOp g : grads)
      if (failed(expand(g)))
        return signalPassFailure();
  }

  LogicalResult expand(ir::GradOp grad) {
    OpBuilder b(grad);
    Block &body = grad.getBody().front();
    IRMapping map;
    for (auto [arg, v] : llvm::zip(body.getArguments(), grad.getArgs()))
      map.map(arg, v);
    // The forward computation, inlined before the gradient.
    llvm::DenseSet<Value> active;
    active.insert(grad.getArgs()[0]);
    SmallVector<Operation *> forward;
    for (Operation &op : body.without_terminator()) {
      Operation *c = b.clone(op, map);
      forward.push_back(c);
      // No gradient flows through stop_gradient: its result is inactive.
      if (!isa<ir::StopGradientOp>(c) &&
          llvm::any_of(c->getOperands(),
                       [&](Value v) { return active.contains(v); }))
        for (Value r : c->getResults())
          active.insert(r);
    }
    Value out = map.lookupOrDefault(
        cast<ir::YieldOp>(body.getTerminator()).getValues()[0]);

    Adjoint adj(b, grad.getLoc());
    Value result;
    if (active.contains(out)) {
      adj.accumulate(out, adj.scalar(1));
      for (Operation *op : llvm::reverse(forward)) {
        if (op->getNumResults() > 1 &&
            llvm::any_of(op->getResults(),
                         [&](Value v) { return adj.get(v) != nullptr; }))
          return op->emitError("cannot differentiate '")
                 << op->getName() << "' with respect to its operands yet";
        if (op->getNumResults() != 1 || !active.contains(op->getResult(0)))
          continue;
        Value g = adj.get(op->getResult(0));
        if (!g)
          continue;
        if (failed(adj.propagate(*op, g, active)))
          return failure();
      }
      result = adj.get(grad.getArgs()[0]);
    }
    if (!result) // the function does not depend on the argument
      result = adj.fill(adj.scalar(0), cast<RankedTensorType>(grad.getType()));
    grad.replaceAllUsesWith(result);
    grad.erase();
    return success();
  }
};

} // namespace

std::unique_ptr<mlir::Pass> createDifferentiatePass() {
  return std::make_unique<DifferentiatePass>();
}

void registerDifferentiatePass() {
  mlir::PassRegistration<DifferentiatePass>();
}

} // namespace unroll::compiler
