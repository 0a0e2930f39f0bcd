// Fusion must not change what a layer computes: the first layer of
// GLOW-Prox and of LISTA, evaluated before and after fuse-elementwise.
#include "CompilerTestUtil.h"

#include "compiler/passes/FuseElementwise.h"

#include "mlir/Pass/PassManager.h"

#include <catch2/catch.hpp>

#include <cmath>

using namespace unroll;

namespace {

eval::Tensor firstLayer(mlir::ModuleOp module, eval::Env env,
                        const eval::Tensor &y0, bool &hasFused) {
  ir::LayerOp first;
  module->walk([&](ir::LayerOp l) {
    if (l.getIndex() == 1)
      first = l;
  });
  REQUIRE(first);
  hasFused = false;
  first.walk([&](ir::FusedOp) { hasFused = true; });
  return eval::evaluate(first.getBody().front(), {y0}, env)[0];
}

void checkFusionPreservesLayer(const char *example) {
  INFO(example);
  mlir::MLIRContext ctx;
  std::ostringstream err;
  auto module = test::compileSpec(test::readFile(test::sourcePath(example)),
                                  ctx, err, /*pipeline=*/true);
  INFO(err.str());
  REQUIRE(module);
  std::mt19937 rng(11);
  eval::Env env;
  test::randomInputsAndParams(*module, rng, 0.3, env);
  ir::StateOp state;
  module->walk([&](ir::StateOp s) { state = s; });
  eval::Tensor y0 = test::randomTensor(state.getType(), rng, 1);

  bool fusedBefore = true, fusedAfter = false;
  eval::Tensor before = firstLayer(*module, env, y0, fusedBefore);
  mlir::PassManager pm(&ctx);
  pm.addPass(compiler::createFuseElementwisePass());
  REQUIRE(mlir::succeeded(pm.run(*module)));
  // The environment keys (inputs, parameters) are outside the layers and
  // survive the pass unchanged.
  eval::Tensor after = firstLayer(*module, env, y0, fusedAfter);
  CHECK(!fusedBefore);
  CHECK(fusedAfter);
  REQUIRE(before.data.size() == after.data.size());
  double worst = 0;
  for (size_t i = 0; i < before.data.size(); ++i)
    worst = std::max(worst, std::fabs(before.data[i] - after.data[i]));
  CHECK(worst == 0);
}

} // namespace

TEST_CASE("fusion preserves what a layer computes", "[fuse]") {
  checkFusionPreservesLayer("examples/lista.unroll");
  checkFusionPreservesLayer("examples/glow_prox.unroll");
}
