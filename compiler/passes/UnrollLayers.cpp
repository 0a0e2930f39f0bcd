#include "compiler/passes/UnrollLayers.h"

#include "compiler/dialect/UnrollDialect.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/Pass/PassRegistry.h"

namespace unroll::compiler {

namespace {

using namespace mlir;

struct UnrollLayersPass
    : public PassWrapper<UnrollLayersPass, OperationPass<ModuleOp>> {
  MLIR_DEFINE_EXPLICIT_INTERNAL_INLINE_TYPE_ID(UnrollLayersPass)

  StringRef getArgument() const final { return "unroll-layers"; }
  StringRef getName() const final { return "UnrollLayers"; }
  StringRef getDescription() const final {
    return "Unroll each algorithm's step into explicit layers";
  }
  void getDependentDialects(DialectRegistry &registry) const override {
    registry.insert<ir::UnrollDialect>();
  }

  void runOnOperation() override {
    getOperation().walk([&](ir::AlgorithmOp alg) {
      if (failed(unroll(alg)))
        signalPassFailure();
    });
  }

  LogicalResult unroll(ir::AlgorithmOp alg) {
    ir::StepOp step;
    for (Operation &op : alg.getBody().front())
      if (auto s = dyn_cast<ir::StepOp>(op))
        step = s;
    if (!step)
      return success(); // already unrolled
    int64_t layers = alg.getLayers();
    OpBuilder b(step);

    // One copy of each per-layer parameter per layer, placed where the
    // original was so that initialisers keep their operands in scope.
    std::vector<IRMapping> perLayer(layers);
    SmallVector<ir::ParamOp> originals;
    for (Operation &op : alg.getBody().front()) {
      auto p = dyn_cast<ir::ParamOp>(op);
      if (!p || p.getBinding() != ir::Binding::PerLayer)
        continue;
      originals.push_back(p);
      OpBuilder pb(p);
      for (int64_t k = 0; k < layers; ++k) {
        auto copy = cast<ir::ParamOp>(pb.clone(*p));
        copy.setLayerAttr(pb.getI64IntegerAttr(k + 1));
        perLayer[k].map(p.getResult(), copy.getResult());
      }
    }

    // The layers, each a copy of the step body fed by the previous layer.
    SmallVector<Value> state(step.getState().begin(), step.getState().end());
    for (int64_t k = 0; k < layers; ++k) {
      TypeRange types = step.getState().getTypes();
      auto layer = b.create<ir::LayerOp>(step.getLoc(), types,
                                         b.getI64IntegerAttr(k + 1), state);
      IRMapping &map = perLayer[k];
      step.getBody().cloneInto(&layer.getBody(), map);
      // The layer's index is now known.
      layer.getBody().walk([&](ir::LayerIndexOp li) {
        OpBuilder lb(li);
        Value c = lb.create<ir::ConstantOp>(
            li.getLoc(), li.getType(),
            lb.getF32FloatAttr(static_cast<float>(k + 1)));
        li.replaceAllUsesWith(c);
        li.erase();
      });
      state.assign(layer.getResults().begin(), layer.getResults().end());
    }
    step.erase();
    for (ir::ParamOp p : originals) {
      if (!p.getResult().use_empty())
        return p.emitOpError("still used after unrolling");
      p.erase();
    }
    return success();
  }
};

} // namespace

std::unique_ptr<mlir::Pass> createUnrollLayersPass() {
  return std::make_unique<UnrollLayersPass>();
}

void registerUnrollLayersPass() { mlir::PassRegistration<UnrollLayersPass>(); }

} // namespace unroll::compiler
