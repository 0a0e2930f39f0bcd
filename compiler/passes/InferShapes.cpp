#include "compiler/passes/InferShapes.h"

#include "compiler/dialect/UnrollDialect.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/PassRegistry.h"

namespace unroll::compiler {

namespace {

using namespace mlir;

struct InferShapesPass
    : public PassWrapper<InferShapesPass, OperationPass<ModuleOp>> {
  MLIR_DEFINE_EXPLICIT_INTERNAL_INLINE_TYPE_ID(InferShapesPass)

  StringRef getArgument() const final { return "infer-shapes"; }
  StringRef getName() const final { return "InferShapes"; }
  StringRef getDescription() const final {
    return "Infer static shapes for every value of the algorithms";
  }
  void getDependentDialects(DialectRegistry &registry) const override {
    registry.insert<ir::UnrollDialect>();
  }

  void runOnOperation() override {
    for (auto alg : getOperation().getOps<ir::AlgorithmOp>())
      if (failed(inferBlock(alg.getBody().front())))
        return signalPassFailure();
  }

  LogicalResult inferBlock(Block &block) {
    for (Operation &op : llvm::make_early_inc_range(block))
      if (failed(inferOp(op)))
        return failure();
    return success();
  }

  LogicalResult inferOp(Operation &op) {
    // A gradient's body is its function: arguments of the operands' types.
    if (auto g = dyn_cast<ir::GradOp>(op))
      for (auto [arg, v] :
           llvm::zip(g.getBody().front().getArguments(), g.getArgs()))
        arg.setType(v.getType());
    // A constraint on a step result measures the value its probe records.
    if (auto c = dyn_cast<ir::ConstraintOp>(op)) {
      BlockArgument q = c.getBody().front().getArgument(0);
      if (ir::isUnranked(q.getType()))
        c->getParentOp()->walk([&](ir::ProbeOp p) {
          if (p.getName() == c.getOn())
            q.setType(p.getValue().getType());
        });
    }
    for (Region &r : op.getRegions())
      for (Block &b : r)
        if (failed(inferBlock(b)))
          return failure();
    if (isa<ir::ParamOp, ir::StateOp>(op))
      broadcastInit(op);
    if (ir::anyUnranked(op.getResults())) {
      if (ir::anyUnranked(op.getOperands()))
        return op.emitError("infer-shapes: an operand's shape is unknown");
      if (!isa<InferTypeOpInterface>(op))
        return op.emitError("infer-shapes: cannot infer the result shape of '")
               << op.getName() << "'";
      if (failed(ir::inferResultTypes(&op)))
        return failure();
    }
    resolve(op);
    return success();
  }

  /// `half`, `diff` and `append_ones` as the plain ops they stand for.
  void resolve(Operation &op) {
    OpBuilder b(&op);
    Location loc = op.getLoc();
    if (auto h = dyn_cast<ir::HalfOp>(op)) {
      auto in = cast<RankedTensorType>(h.getOperand().getType());
      int64_t start = h.getWhich() == "first" ? 0 : in.getShape()[0] / 2;
      Value s =
          b.create<ir::SliceOp>(loc, h.getType(), h.getOperand(), 0, start);
      h.replaceAllUsesWith(s);
      h.erase();
    } else if (auto d = dyn_cast<ir::DiffOp>(op)) {
      int64_t axis = static_cast<int64_t>(d.getAxis());
      if (axis == -1) // the last
        axis = cast<RankedTensorType>(d.getOperand().getType()).getRank() - 1;
      Value next =
          b.create<ir::SliceOp>(loc, d.getType(), d.getOperand(), axis, 1);
      Value prev =
          b.create<ir::SliceOp>(loc, d.getType(), d.getOperand(), axis, 0);
      Value r = b.create<ir::SubOp>(loc, next, prev);
      d.replaceAllUsesWith(r);
      d.erase();
    } else if (auto a = dyn_cast<ir::AppendOnesOp>(op)) {
      auto in = cast<RankedTensorType>(a.getOperand().getType());
      SmallVector<int64_t> ones(in.getShape());
      ones.back() = 1;
      Value one = b.create<ir::ConstantOp>(
          loc, ir::tensorType(&getContext(), {}), b.getF32FloatAttr(1));
      Value column =
          b.create<ir::FillOp>(loc, ir::tensorType(&getContext(), ones), one);
      Value joined = b.create<ir::ConcatOp>(loc, a.getType(), a.getOperand(),
                                            column, in.getRank() - 1);
      a.replaceAllUsesWith(joined);
      a.erase();
    }
  }

  /// `param W : mat[n, n] = f(...)` where f returned a scalar: broadcast,
  /// as IR generation does when it sees the scalar directly.
  void broadcastInit(Operation &op) {
    Block &init = op.getRegion(0).front();
    auto yield = cast<ir::YieldOp>(init.getTerminator());
    if (yield.getValues().size() != 1)
      return;
    Value v = yield.getValues()[0];
    auto t = dyn_cast<RankedTensorType>(v.getType());
    Type declared = op.getResult(0).getType();
    if (!t || t.getRank() != 0 || t == declared)
      return;
    OpBuilder b(yield);
    Value filled = b.create<ir::FillOp>(yield.getLoc(), declared, v);
    yield->setOperand(0, filled);
  }
};

} // namespace

std::unique_ptr<mlir::Pass> createInferShapesPass() {
  return std::make_unique<InferShapesPass>();
}

void registerInferShapesPass() { mlir::PassRegistration<InferShapesPass>(); }

} // namespace unroll::compiler
