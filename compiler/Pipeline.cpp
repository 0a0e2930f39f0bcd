#include "compiler/Pipeline.h"

#include "compiler/IRGen/IRGen.h"
#include "compiler/passes/Differentiate.h"
#include "compiler/passes/FuseElementwise.h"
#include "compiler/passes/InferShapes.h"
#include "compiler/passes/Specialize.h"
#include "compiler/passes/UnrollLayers.h"
#include "compiler/plan/PlanLowering.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Transforms/Passes.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_ostream.h"

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

std::unique_ptr<CompiledSpec> compileSpec(const std::string &file,
                                          const SpecOptions &options,
                                          Stage stage, std::ostream &err) {
  auto out = std::make_unique<CompiledSpec>();
  dsl::FrontendOptions fo;
  fo.libraryPath = options.libraryPath;
  fo.settings = options.settings;
  fo.parseOnly = options.parseOnly && stage == Stage::Checked;
  out->frontend = dsl::runFrontend(file, nullptr, fo, err);
  if (!out->frontend->ok())
    return nullptr;
  if (stage == Stage::Checked)
    return out;
  out->context = std::make_unique<mlir::MLIRContext>();
  mlir::MLIRContext &ctx = *out->context;
  // Users see their own source in diagnostics, not the IR op.
  ctx.printOpOnDiagnostic(false);
  // Errors from passes point at DSL source lines, printed like the front
  // end's: file:line:col, the line, a caret (and "called from" notes for
  // code inlined from a function).
  const dsl::SourceManager &sources = out->frontend->sources;
  llvm::SourceMgr sourceMgr;
  for (uint32_t id = 1; id <= sources.size(); ++id)
    sourceMgr.AddNewSourceBuffer(llvm::MemoryBuffer::getMemBufferCopy(
                                     sources.text(id), sources.path(id)),
                                 llvm::SMLoc());
  mlir::SourceMgrDiagnosticHandler diagHandler(sourceMgr, &ctx, llvm::errs());
  out->module = generateIR(ctx, *out->frontend);
  if (!out->module)
    return nullptr;
  if (stage == Stage::IR)
    return out;
  if (mlir::failed(runPipeline(*out->module, options.printAfterAll,
                               /*fuse=*/stage == Stage::Plan)))
    return nullptr;
  if (stage == Stage::Unrolled)
    return out;
  auto plan = lowerToPlan(*out->module);
  if (mlir::failed(plan))
    return nullptr;
  out->plan = std::move(*plan);
  return out;
}

} // namespace unroll::compiler
