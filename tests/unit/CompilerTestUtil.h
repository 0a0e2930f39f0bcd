#pragma once
// Runs a spec through the compiler: front end, IR generation and, if asked,
// the middle-end pipeline.
#include "TestUtil.h"

#include "compiler/IRGen/IRGen.h"
#include "compiler/Pipeline.h"

namespace unroll::test {

/// Null if the front end or IR generation rejected the spec (diagnostics
/// in `err`). Throws dsl::InternalError on compiler bugs.
inline mlir::OwningOpRef<mlir::ModuleOp> compileSpec(const std::string &text,
                                                     mlir::MLIRContext &ctx,
                                                     std::ostringstream &err,
                                                     bool pipeline) {
  dsl::FrontendOptions opts;
  opts.libraryPath = {sourcePath("stdlib")};
  auto fe = dsl::runFrontend("spec.unroll", &text, opts, err);
  if (!fe->ok())
    return nullptr;
  auto module = compiler::generateIR(ctx, *fe);
  if (module && pipeline &&
      mlir::failed(compiler::runPipeline(*module, /*printAfterAll=*/false)))
    return nullptr;
  return module;
}

} // namespace unroll::test
