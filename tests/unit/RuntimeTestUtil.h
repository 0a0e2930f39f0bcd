#pragma once
// Specs compiled all the way to the runtime's view of a plan.
#include "CompilerTestUtil.h"

#include "compiler/plan/PlanLowering.h"
#include "runtime/Executor.h"

#include <Halide.h>

#include <catch2/catch.hpp>

#include <cstring>

namespace unroll::test {

/// Compiles `spec` through the whole pipeline and lowering; the runtime's
/// parsed algorithms (the test fails if any stage rejects the spec).
inline std::vector<runtime::Algorithm> planFor(const std::string &spec) {
  mlir::MLIRContext ctx;
  std::ostringstream err;
  auto module = compileSpec(spec, ctx, err, /*pipeline=*/true);
  INFO(err.str());
  REQUIRE(module);
  auto plan = compiler::lowerToPlan(*module);
  REQUIRE(mlir::succeeded(plan));
  return runtime::parsePlan(plan->dump());
}

/// The runtime program of `spec` as JSON, fused for code generation.
inline nlohmann::json fusedPlanFor(const std::string &spec) {
  mlir::MLIRContext ctx;
  std::ostringstream err;
  auto module = compileSpec(spec, ctx, err, /*pipeline=*/false);
  INFO(err.str());
  REQUIRE(module);
  REQUIRE(mlir::succeeded(
      compiler::runPipeline(*module, /*printAfterAll=*/false, /*fuse=*/true)));
  auto plan = compiler::lowerToPlan(*module);
  REQUIRE(mlir::succeeded(plan));
  return *plan;
}

/// A dense copy of a LibTorch tensor as a Halide buffer (axes reversed).
inline Halide::Buffer<float> toHalide(const torch::Tensor &t0) {
  torch::Tensor t = t0.detach().contiguous();
  std::vector<int> extents;
  for (int64_t d = t.dim() - 1; d >= 0; --d)
    extents.push_back(static_cast<int>(t.size(d)));
  Halide::Buffer<float> b(extents);
  std::memcpy(b.data(), t.data_ptr<float>(), t.numel() * sizeof(float));
  return b;
}

/// A small LISTA: sizes p, d, the layer count and an optional train block.
inline std::string tinyLista(int p, int d, int layers,
                             const std::string &train = "") {
  return R"(
import prox
import losses
problem sparse_coding(p: int, d: int, alpha: float) {
  data  x : vec[p]
  given D : mat[p, d]
  var   y : vec[d]
  minimize 0.5 * sqnorm(x - D @ y) + alpha * norm1(y)
}
unrolled lista(layers = )" +
         std::to_string(layers) +
         ") solves sparse_coding(p = " + std::to_string(p) +
         ", d = " + std::to_string(d) +
         R"(, alpha = 0.1) {
  init  y = zeros()
  let   lip = lipschitz(D)
  param Wu   : mat[d, p] per layer = D' / lip
  param We   : mat[d, d] per layer = eye(d) - D' @ D / lip
  param beta : vec[d]    per layer = alpha / lip
  step { y = soft_threshold(Wu @ x + We @ y, beta) }
}
)" + train;
}

} // namespace unroll::test
