#pragma once
// What the benchmarks share: a spec compiled to its runtime program.
#include "compiler/IRGen/IRGen.h"
#include "compiler/Pipeline.h"
#include "compiler/plan/PlanLowering.h"
#include "dsl/Frontend.h"

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#ifndef UNROLL_SOURCE_DIR
#define UNROLL_SOURCE_DIR "."
#endif

namespace unroll::bench {

/// The fused runtime program of `spec` with `settings` applied (as
/// `unrollc train --set`); exits after printing the diagnostics if the
/// spec does not compile.
inline nlohmann::json compilePlan(const std::string &spec,
                                  const std::vector<std::string> &settings) {
  dsl::FrontendOptions opts;
  opts.libraryPath = dsl::defaultLibraryPath();
  opts.settings = settings;
  auto fe = dsl::runFrontend(spec, nullptr, opts, std::cerr);
  if (!fe->ok())
    std::exit(1);
  mlir::MLIRContext ctx;
  auto module = compiler::generateIR(ctx, *fe);
  if (!module || mlir::failed(compiler::runPipeline(*module, false, true)))
    std::exit(1);
  auto plan = compiler::lowerToPlan(*module);
  if (mlir::failed(plan))
    std::exit(1);
  return *plan;
}

} // namespace unroll::bench
