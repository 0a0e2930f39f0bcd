#pragma once
// Runs a spec through the compiler: front end, IR generation and, if asked,
// the middle-end pipeline.
#include "TestUtil.h"

#include "compiler/IRGen/IRGen.h"
#include "compiler/Pipeline.h"
#include "compiler/dialect/UnrollDialect.h"
#include "compiler/eval/Evaluator.h"

#include <random>

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
  // Without the pipeline: still with static shapes and no calls.
  if (module && !pipeline && mlir::failed(compiler::runSpecialization(*module)))
    return nullptr;
  return module;
}

/// A tensor of the given type with N(0, scale^2) entries.
inline eval::Tensor randomTensor(mlir::Type t, std::mt19937 &rng,
                                 double scale) {
  auto rt = mlir::cast<mlir::RankedTensorType>(t);
  eval::Tensor x;
  x.shape.assign(rt.getShape().begin(), rt.getShape().end());
  std::normal_distribution<double> n(0, scale);
  for (int64_t i = 0; i < rt.getNumElements(); ++i)
    x.data.push_back(n(rng));
  return x;
}

/// Random values for every input and parameter of `module`, and the values
/// of algorithm-level constants (parameters at
/// `scale`; `.mix.W` mixing matrices near the identity, so they stay
/// invertible). Returns how many parameters it set.
inline int randomInputsAndParams(mlir::ModuleOp module, std::mt19937 &rng,
                                 double scale, eval::Env &env) {
  int params = 0;
  module->walk([&](mlir::Operation *op) {
    if (auto p = mlir::dyn_cast<ir::ParamOp>(op)) {
      eval::Tensor t = randomTensor(p.getType(), rng, scale);
      if (p.getName().ends_with(".mix.W"))
        for (int64_t i = 0; i < t.shape[0]; ++i)
          t.data[i * t.shape[0] + i] += 1;
      env[p.getResult()] = t;
      ++params;
    } else if (auto in = mlir::dyn_cast<ir::InputOp>(op)) {
      env[in.getResult()] = randomTensor(in.getType(), rng, 1);
    } else if (auto c = mlir::dyn_cast<ir::ConstantOp>(op);
               c && mlir::isa<ir::AlgorithmOp>(op->getParentOp())) {
      // Algorithm-level constants (problem parameters such as alpha).
      env[c.getResult()] = eval::Tensor::scalar(c.getValue().convertToDouble());
    }
  });
  return params;
}

} // namespace unroll::test
