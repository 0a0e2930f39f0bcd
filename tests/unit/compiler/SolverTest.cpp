// The objective split for classical solvers (unroll.composite and
// unroll.proximal): ISTA run with only g, grad g and the prox of the l1
// term from the compiled IR must reach a LASSO optimum (the subgradient
// optimality conditions), and g + w ||y||_1 must equal the objective.
#include "CompilerTestUtil.h"

#include <catch2/catch.hpp>

#include <cmath>

using namespace unroll;

TEST_CASE("ISTA from the composite split solves a small LASSO", "[solver]") {
  const char *spec = R"(
import prox
problem lasso(p: int, d: int, alpha: float) {
  data  x : vec[p]
  given D : mat[p, d]
  var   y : vec[d]
  minimize 0.5 * sqnorm(x - D @ y) + alpha * norm1(y)
}
unrolled u(layers = 1) solves lasso(p = 5, d = 8, alpha = 0.3) {
  init y = zeros()
  step { y = y }
}
)";
  mlir::MLIRContext ctx;
  std::ostringstream err;
  auto module = test::compileSpec(spec, ctx, err, /*pipeline=*/true);
  INFO(err.str());
  REQUIRE(module);
  ir::CompositeOp comp;
  ir::ProximalOp prox;
  ir::ObjectiveOp obj;
  module->walk([&](ir::CompositeOp c) { comp = c; });
  module->walk([&](ir::ProximalOp p) { prox = p; });
  module->walk([&](ir::ObjectiveOp o) { obj = o; });
  REQUIRE(comp);
  REQUIRE(prox);
  REQUIRE(obj);
  CHECK(comp.getProx() == "l1");
  CHECK(prox.getOf() == "norm1");
  bool hasGrad = false;
  comp.walk([&](ir::GradOp) { hasGrad = true; });
  CHECK(!hasGrad); // the gradient is explicit after the pipeline

  std::mt19937 rng(5);
  eval::Env env;
  test::randomInputsAndParams(*module, rng, 1, env);
  double lip = 0; // the Frobenius norm squared bounds ||D||_2^2
  module->walk([&](ir::InputOp in) {
    if (in.getName() == "D")
      for (double v : env[in.getResult()].data)
        lip += v * v;
  });
  REQUIRE(lip > 0);
  mlir::Block &body = comp.getBody().front();
  eval::Tensor y = test::randomTensor(body.getArgument(0).getType(), rng, 0);
  double t = 1 / lip, w = 0;
  mlir::Block &proxBody = prox.getBody().front();
  for (int it = 0; it < 20000; ++it) {
    auto out = eval::evaluate(body, {y}, env);
    w = out[2].data[0];
    eval::Tensor v = y;
    for (size_t i = 0; i < y.data.size(); ++i)
      v.data[i] = y.data[i] - t * out[1].data[i];
    y = eval::evaluate(proxBody, {v, eval::Tensor::scalar(t)}, env)[0];
  }
  CHECK(w == Approx(0.3));
  auto out = eval::evaluate(body, {y}, env);
  int nonzero = 0;
  for (size_t i = 0; i < y.data.size(); ++i) {
    double g = out[1].data[i];
    if (y.data[i] != 0) {
      ++nonzero;
      CHECK(std::fabs(g + w * (y.data[i] > 0 ? 1 : -1)) < 1e-6);
    } else {
      CHECK(std::fabs(g) <= w + 1e-6);
    }
  }
  CHECK(nonzero > 0);
  double l1 = 0;
  for (double v : y.data)
    l1 += std::fabs(v);
  double f = eval::evaluate(obj.getBody().front(), {y}, env)[0].data[0];
  CHECK(f == Approx(out[0].data[0] + w * l1).epsilon(1e-12));
}
