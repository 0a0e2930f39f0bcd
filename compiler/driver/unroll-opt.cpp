// unroll-opt: mlir-opt with the unroll dialect (and, as they arrive, its
// passes) registered. Used by the lit tests of each IR stage.
#include "compiler/dialect/UnrollDialect.h"
#include "compiler/passes/Differentiate.h"
#include "compiler/passes/FuseElementwise.h"
#include "compiler/passes/InferShapes.h"
#include "compiler/passes/Specialize.h"
#include "compiler/passes/UnrollLayers.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"
#include "mlir/Transforms/Passes.h"

int main(int argc, char **argv) {
  mlir::DialectRegistry registry;
  // func holds the generic DSL functions that specialize inlines (and wraps
  // unroll ops in tests).
  registry.insert<unroll::ir::UnrollDialect, mlir::func::FuncDialect>();
  mlir::registerCanonicalizerPass();
  mlir::registerCSEPass();
  unroll::compiler::registerSpecializePass();
  unroll::compiler::registerInferShapesPass();
  unroll::compiler::registerUnrollLayersPass();
  unroll::compiler::registerDifferentiatePass();
  unroll::compiler::registerFuseElementwisePass();
  return mlir::asMainReturnCode(
      mlir::MlirOptMain(argc, argv, "Unroll optimizer driver\n", registry));
}
