// The runtime's plan executor (LibTorch, float32, batched) against the
// reference evaluator (float64, one instance at a time) on a small LISTA.
#include "CompilerTestUtil.h"

#include "compiler/plan/PlanLowering.h"
#include "runtime/Executor.h"

#include <catch2/catch.hpp>

using namespace unroll;

namespace {
const char *kSpec = R"(
import prox
problem sparse_coding(p: int, d: int, alpha: float) {
  data  x : vec[p]
  given D : mat[p, d]
  var   y : vec[d]
  minimize 0.5 * sqnorm(x - D @ y) + alpha * norm1(y)
}
unrolled lista(layers = 3) solves sparse_coding(p = 4, d = 6, alpha = 0.1) {
  init  y = zeros()
  let   lip = lipschitz(D)
  param Wu   : mat[d, p] per layer = D' / lip
  param We   : mat[d, d] per layer = eye(d) - D' @ D / lip
  param beta : vec[d]    shared    = alpha / lip
  step { y = soft_threshold(Wu @ x + We @ y, beta) }
}
)";

eval::Tensor toEval(const torch::Tensor &t) {
  torch::Tensor c = t.detach().to(torch::kFloat64).contiguous();
  eval::Tensor r;
  r.shape.assign(c.sizes().begin(), c.sizes().end());
  r.data.assign(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
  return r;
}
} // namespace

TEST_CASE("the runtime executes a plan like the reference evaluator",
          "[runtime]") {
  mlir::MLIRContext ctx;
  std::ostringstream err;
  auto module = test::compileSpec(kSpec, ctx, err, /*pipeline=*/true);
  INFO(err.str());
  REQUIRE(module);
  auto plan = compiler::lowerToPlan(*module);
  REQUIRE(mlir::succeeded(plan));
  auto algs = runtime::parsePlan(plan->dump());
  REQUIRE(algs.size() == 1);

  runtime::Executor ex(algs[0]);
  torch::manual_seed(0);
  const int64_t B = 5;
  torch::Tensor x = torch::randn({B, 4}), D = torch::randn({4, 6});
  ex.bindInputs({{"x", x}, {"D", D}});
  ex.initParams(1);
  runtime::ForwardResult fw = ex.forward(2);
  REQUIRE(fw.states.size() == 4);
  REQUIRE(fw.states[3][0].sizes() == torch::IntArrayRef({B, 6}));

  // The same layers in float64, one instance at a time, with the same
  // parameter values (plan params are listed in IR order).
  eval::Env env;
  std::vector<ir::ParamOp> params;
  module->walk([&](mlir::Operation *op) {
    if (auto p = mlir::dyn_cast<ir::ParamOp>(op))
      params.push_back(p);
    else if (auto c = mlir::dyn_cast<ir::ConstantOp>(op);
             c && mlir::isa<ir::AlgorithmOp>(op->getParentOp()))
      env[c.getResult()] = eval::Tensor::scalar(c.getValue().convertToDouble());
  });
  const auto &planParams = algs[0].json["params"];
  REQUIRE(params.size() == planParams.size());
  for (size_t i = 0; i < params.size(); ++i)
    env[params[i].getResult()] =
        toEval(ex.params().at(planParams[i]["id"].get<int64_t>()));
  std::vector<ir::LayerOp> layers;
  module->walk([&](ir::LayerOp l) { layers.push_back(l); });
  REQUIRE(layers.size() == 3);
  mlir::Value xIn, dIn;
  module->walk([&](ir::InputOp in) {
    (in.getName() == "x" ? xIn : dIn) = in.getResult();
  });
  env[dIn] = toEval(D);
  for (int64_t b = 0; b < B; ++b) {
    env[xIn] = toEval(x[b]);
    eval::Tensor y{{6}, std::vector<double>(6, 0.0)};
    for (ir::LayerOp l : layers) {
      y = eval::evaluate(l.getBody().front(), {y}, env,
                         static_cast<double>(l.getIndex()))[0];
      eval::Tensor got = toEval(fw.states[l.getIndex()][0][b]);
      for (size_t i = 0; i < y.data.size(); ++i)
        CHECK(got.data[i] == Approx(y.data[i]).margin(1e-5));
    }
  }
}

TEST_CASE("the runtime rejects bad plans and inputs clearly", "[runtime]") {
  CHECK_THROWS_WITH(runtime::parsePlan("{"),
                    Catch::Contains("plan is not valid JSON"));
  CHECK_THROWS_WITH(
      runtime::parsePlan(R"({"format": "unroll-plan", "version": 99})"),
      Catch::Contains("plan version 99 is not supported"));
  mlir::MLIRContext ctx;
  std::ostringstream err;
  auto module = test::compileSpec(kSpec, ctx, err, /*pipeline=*/true);
  REQUIRE(module);
  auto algs = runtime::parsePlan(compiler::lowerToPlan(*module)->dump());
  runtime::Executor ex(algs[0]);
  CHECK_THROWS_WITH(ex.bindInputs({{"x", torch::zeros({2, 4})}}),
                    Catch::Contains("missing input 'D'"));
  CHECK_THROWS_WITH(
      ex.bindInputs({{"x", torch::zeros({2, 5})}, {"D", torch::zeros({4, 6})}}),
      Catch::Contains("input 'x' has shape [2, 5], expected [4] per instance"));
}
