#include "compiler/Pipeline.h"

#include "compiler/passes/Differentiate.h"
#include "compiler/passes/FuseElementwise.h"
#include "compiler/passes/InferShapes.h"
#include "compiler/passes/Specialize.h"
#include "compiler/passes/UnrollLayers.h"

#include "mlir/Pass/PassManager.h"
#include "mlir/Transforms/Passes.h"

namespace unroll::compiler {

mlir::LogicalResult runPipeline(mlir::ModuleOp module, bool printAfterAll,
                                bool fuse) {
  mlir::MLIRContext *ctx = module.getContext();
  mlir::PassManager pm(ctx);
  if (printAfterAll) {
    // Printing from several threads would interleave.
    ctx->disableMultithreading();
    pm.enableIRPrinting(
        /*shouldPrintBeforePass=*/[](mlir::Pass *, mlir::Operation *) {
          return false;
        });
  }
  pm.addPass(createSpecializePass());
  pm.addPass(createInferShapesPass());
  pm.addPass(createDifferentiatePass());
  pm.addPass(mlir::createCanonicalizerPass());
  pm.addPass(mlir::createCSEPass());
  pm.addPass(createUnrollLayersPass());
  if (fuse)
    pm.addPass(createFuseElementwisePass());
  return pm.run(module);
}

mlir::LogicalResult runSpecialization(mlir::ModuleOp module) {
  mlir::PassManager pm(module.getContext());
  pm.addPass(createSpecializePass());
  pm.addPass(createInferShapesPass());
  return pm.run(module);
}

} // namespace unroll::compiler
