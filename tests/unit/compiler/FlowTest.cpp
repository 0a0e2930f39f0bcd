// The Glow flow from the stdlib, through IR generation and the reference
// evaluator, with random parameters: inverse(forward(x)) must give x back.
// This checks the module instantiation (repeat order, inverse reversal),
// the flow ops and their evaluator together.
#include "CompilerTestUtil.h"

#include "compiler/dialect/UnrollDialect.h"
#include "compiler/eval/Evaluator.h"

#include <catch2/catch.hpp>

#include <cmath>
#include <random>

using namespace unroll;

namespace {

/// Runs the step of `spec` once on a random input with random parameters;
/// returns the largest change |step(y) - y|.
double largestChange(const std::string &spec) {
  mlir::MLIRContext ctx;
  std::ostringstream err;
  auto module = test::compileSpec(spec, ctx, err, /*pipeline=*/false);
  INFO(err.str());
  REQUIRE(module);
  std::mt19937 rng(3);
  eval::Env env;
  int params = test::randomInputsAndParams(*module, rng, 0.3, env);
  ir::StepOp step;
  module->walk([&](ir::StepOp s) { step = s; });
  CHECK(params == 2 * 3 * 5); // levels x depth x (logs, bias, W, K1, K2)
  REQUIRE(step);
  eval::Tensor y0 = test::randomTensor(step.getState()[0].getType(), rng, 1);
  auto out = eval::evaluate(step.getBody().front(), {y0}, env);
  REQUIRE(out[0].data.size() == y0.data.size());
  double worst = 0;
  for (size_t i = 0; i < y0.data.size(); ++i)
    worst = std::max(worst, std::fabs(out[0].data[i] - y0.data[i]));
  return worst;
}

const char *kSpec = R"(
import flows
problem id(c: int, h: int, w: int) {
  data x : tensor[c, h, w]
  var  y : tensor[c, h, w]
  minimize sqnorm(x - y)
}
unrolled roundtrip(layers = 1) solves id(c = 2, h = 4, w = 4) {
  init  y = x
  param flow : glow(c, levels = 2, depth = 3, hidden = 5) shared
  step { STEP }
}
)";

std::string spec(const std::string &step) {
  std::string s = kSpec;
  s.replace(s.find("STEP"), 4, step);
  return s;
}

} // namespace

TEST_CASE("a Glow flow inverts its forward map", "[flow]") {
  CHECK(largestChange(spec("y = flow.inverse(flow.forward(y))")) < 1e-9);
  // The forward map alone moves the input: the check above can fail.
  CHECK(largestChange(spec("y = flow.forward(y)")) > 1e-2);
}
