// Targets by FISTA from the plan's objective split, and primal-dual
// training of a tiny constrained LISTA.
#include "RuntimeTestUtil.h"

#include "compiler/kernels/KernelJIT.h"
#include "runtime/Data.h"
#include "runtime/Trainer.h"

#include <catch2/catch.hpp>

using namespace unroll;

namespace {
const std::string kSpec = test::tinyLista(8, 12, 4, R"(
train lista {
  target  ystar = solve(sparse_coding, fista, tol = 1e-6)
  loss    mse(y[L], ystar)
  descend distance(y, ystar) by eps = 0.05
}
)");

/// synthetic_sparse data as the train block's inputs.
std::map<std::string, torch::Tensor> sparseData(int64_t n) {
  auto g = runtime::syntheticSparse(n, 8, 12, 0.2, 0.01, 7);
  return {{"x", g.x}, {"D", g.D}};
}
} // namespace

TEST_CASE("FISTA targets satisfy the LASSO optimality conditions",
          "[trainer]") {
  runtime::Executor ex(test::planFor(kSpec)[0]);
  auto data = sparseData(16);
  ex.bindInputs(data);
  ex.initParams(0);
  torch::Tensor ystar = runtime::solveTargets(ex, 5000, 1e-9);
  REQUIRE(ystar.sizes() == torch::IntArrayRef({16, 12}));
  // grad g = D'(D y - x); optimal: grad_i = -alpha sign(y_i) off zero,
  // |grad_i| <= alpha at zero.
  torch::Tensor grad =
      (ystar.matmul(data["D"].t()) - data["x"]).matmul(data["D"]);
  torch::Tensor nz = ystar.abs() > 1e-6;
  double offZero =
      (grad + 0.1 * ystar.sign()).abs().masked_select(nz).max().item<double>();
  double atZero = grad.abs().masked_select(~nz).max().item<double>();
  INFO("offZero " << offZero << " atZero " << atZero);
  // float32 precision
  CHECK(offZero < 1e-4);
  CHECK(atZero <= 0.1 + 1e-4);
  CHECK(nz.sum().item<int64_t>() > 0);
}

TEST_CASE("primal-dual training lowers the loss and prices violations",
          "[trainer]") {
  auto algs = test::planFor(kSpec);
  auto data = sparseData(128);
  runtime::Executor ex(algs[0]);
  ex.bindInputs(data);
  ex.initParams(0);
  torch::Tensor ystar = runtime::solveTargets(ex, 5000, 1e-9);
  runtime::TrainOptions opts;
  opts.epochs = 15;
  opts.batch = 32;
  opts.primalLr = 3e-3;
  opts.dualLr = 1.0;
  auto hist = runtime::train(ex, data, ystar, opts);
  REQUIRE(hist.size() == 15);
  CHECK(hist.back().loss < 0.7 * hist.front().loss);
  REQUIRE(hist.back().lambda.size() == 4);
  for (size_t l = 0; l < 4; ++l) {
    CHECK(hist.back().lambda[l] >= 0);
    // A multiplier grows only while its layer's constraint was violated.
    if (hist.front().violation[l] <= 0)
      CHECK(hist.front().lambda[l] == 0);
    else
      CHECK(hist.front().lambda[l] > 0);
  }

  // The unconstrained baseline keeps every multiplier at zero.
  runtime::Executor base(algs[0]);
  base.bindInputs(data);
  base.initParams(0);
  opts.constrained = false;
  auto baseHist = runtime::train(base, data, ystar, opts);
  for (double lam : baseHist.back().lambda)
    CHECK(lam == 0);
}

TEST_CASE("constraints are evaluated over all layers at once, or layer by "
          "layer where they read l",
          "[trainer]") {
  // g reads the data x (repeated for every layer in one run) and, in the
  // second spec, the layer index (one run per layer).
  const bool readsL = GENERATE(false, true);
  auto algs = test::planFor(
      test::tinyLista(8, 12, 4,
                      R"(
train lista {
  target  ystar = solve(sparse_coding, fista, tol = 1e-6)
  loss    mse(y[L], ystar)
  descend objective(g, y) by eps = 0.1 where g(v) = sqnorm(x - D @ v))" +
                          std::string(readsL ? " * l" : "") + "\n}\n"));
  auto data = sparseData(16);
  runtime::Executor ex(algs[0]);
  ex.bindInputs(data);
  ex.initParams(0);
  runtime::ForwardResult fw = ex.forward(3, /*noise=*/false, /*perturb=*/0.1);
  runtime::ConstraintValues cv = runtime::constraintValues(ex, fw, 0);
  CHECK(cv.firstLayer == 1);
  REQUIRE(cv.values.sizes() == torch::IntArrayRef({4, 16}));
  auto g = [&](int64_t l) {
    torch::Tensor r = data["x"] - fw.states[l][0].mm(data["D"].t());
    return (r * r).sum(1) * (readsL ? static_cast<double>(l) : 1.0);
  };
  for (int64_t l = 1; l <= 4; ++l) {
    INFO("layer " << l);
    CHECK(torch::allclose(cv.values[l - 1], g(l) - 0.9 * g(l - 1), 1e-4, 1e-5));
  }
}

TEST_CASE("synthetic_sparse data: shapes, unit columns, density, seeds",
          "[trainer]") {
  auto a = runtime::syntheticSparse(2000, 8, 12, 0.1, 0.01, 42);
  auto b = runtime::syntheticSparse(2000, 8, 12, 0.1, 0.01, 42);
  auto c = runtime::syntheticSparse(2000, 8, 12, 0.1, 0.01, 43);
  CHECK(a.x.sizes() == torch::IntArrayRef({2000, 8}));
  CHECK(a.D.sizes() == torch::IntArrayRef({8, 12}));
  CHECK(torch::allclose(a.D.norm(2, {0}), torch::ones({12})));
  double density = (a.codes != 0).to(torch::kFloat64).mean().item<double>();
  CHECK(density == Approx(0.1).margin(0.02));
  double residual = (a.x - a.codes.matmul(a.D.t())).std().item<double>();
  CHECK(residual == Approx(0.01).epsilon(0.1));
  CHECK(torch::equal(a.x, b.x));
  CHECK(!torch::equal(a.x, c.x));
  CHECK_THROWS_WITH(runtime::syntheticSparse(10, 8, 12, 1.5, 0, 0),
                    Catch::Contains("density must be in [0, 1]"));
}

namespace {
/// A trainer over kSpec's tiny LISTA with its FISTA targets, run with
/// `kernels` (null: eagerly).
struct Fixture {
  runtime::Executor ex;
  runtime::Split data;
  torch::Tensor ystar;
  explicit Fixture(const runtime::Algorithm &alg,
                   const unroll_kernels *kernels = nullptr)
      : ex(alg) {
    data.inputs = sparseData(64);
    data.size = 64;
    ex.setKernels(kernels);
    ex.bindInputs(data.inputs);
    ex.initParams(3);
    ystar = runtime::solveTargets(ex, 5000, 1e-9);
  }
};

runtime::TrainOptions smallOptions() {
  runtime::TrainOptions o;
  o.batch = 16;
  o.primalLr = 3e-3;
  o.dualLr = 0.5;
  o.dualEveryEpoch = false;
  o.seed = 11;
  return o;
}
} // namespace

TEST_CASE("a run resumed from a checkpoint continues exactly", "[trainer]") {
  // With training noise, so that its draws must replay too.
  const std::string spec = test::tinyLista(8, 12, 4, R"(
train lista {
  target  ystar = solve(sparse_coding, fista, tol = 1e-6)
  loss    mse(y[L], ystar)
  descend distance(y, ystar) by eps = 0.05
  noise   y += normal(0, 0.01)
}
)");
  nlohmann::json plan = test::fusedPlanFor(spec);
  auto algs = runtime::parsePlan(plan.dump());
  // Compiled: fused ops, Adam and noise by the JIT's kernels.
  compiler::JitKernels jit(abi::readPlan(plan));
  const unroll_kernels *kernels = GENERATE(false, true) ? jit.abi() : nullptr;
  INFO((kernels ? "compiled" : "eager"));
  runtime::TrainOptions opts = smallOptions();
  // Three epochs straight through.
  Fixture a(algs[0], kernels);
  runtime::PrimalDual pa(a.ex, opts);
  for (int e = 0; e < 3; ++e)
    REQUIRE(pa.epoch(e, a.data, a.ystar));
  runtime::TensorFile straight;
  pa.save(straight);

  // One epoch, a checkpoint through a file, then two more in a new process
  // state (fresh executor, optimizer and multipliers).
  Fixture b(algs[0], kernels);
  runtime::PrimalDual pb(b.ex, opts);
  REQUIRE(pb.epoch(0, b.data, b.ystar));
  runtime::TensorFile ckpt;
  pb.save(ckpt);
  const std::string path = "resume-test.safetensors";
  runtime::writeSafetensors(path, ckpt);
  Fixture c(algs[0], kernels);
  runtime::PrimalDual pc(c.ex, opts);
  pc.load(runtime::readSafetensors(path));
  std::remove(path.c_str());
  for (int e = 1; e < 3; ++e)
    REQUIRE(pc.epoch(e, c.data, c.ystar));
  runtime::TensorFile resumed;
  pc.save(resumed);

  REQUIRE(resumed.tensors.size() == straight.tensors.size());
  // Adam's moments are saved too (without them the next step would differ).
  CHECK(straight.tensors.count("adam.param.Wu.1.exp_avg_sq"));
  for (auto &[name, t] : straight.tensors) {
    INFO(name);
    CHECK(torch::equal(resumed.tensors.at(name), t));
  }
  // And the run did move: the checkpoint is not the initial state.
  CHECK(!torch::equal(ckpt.tensors.at("param.Wu.1"),
                      straight.tensors.at("param.Wu.1")));
}

TEST_CASE("a checkpoint of another spec is rejected", "[trainer]") {
  auto algs = test::planFor(kSpec);
  auto other = test::planFor(test::tinyLista(8, 10, 4, R"(
train lista {
  target  ystar = solve(sparse_coding, fista, tol = 1e-6)
  loss    mse(y[L], ystar)
}
)"));
  Fixture a(algs[0]);
  runtime::PrimalDual pa(a.ex, smallOptions());
  runtime::TensorFile f;
  pa.save(f);
  runtime::Executor ex(other[0]);
  auto g = runtime::syntheticSparse(4, 8, 10, 0.2, 0.01, 7);
  ex.bindInputs({{"x", g.x}, {"D", g.D}});
  ex.initParams(0);
  runtime::PrimalDual pb(ex, smallOptions());
  CHECK_THROWS_WITH(pb.load(f),
                    Catch::Contains("param.Wu.1") &&
                        Catch::Contains("not written for this spec"));
}

TEST_CASE("divergence stops training with the layer or parameter and step",
          "[trainer]") {
  auto algs = test::planFor(kSpec);
  Fixture a(algs[0]);
  runtime::TrainOptions opts = smallOptions();
  opts.primalLr = 1e30;
  runtime::PrimalDual pd(a.ex, opts);
  try {
    for (int e = 0; e < 3; ++e)
      pd.epoch(e, a.data, a.ystar);
    FAIL("training with lr 1e30 did not diverge");
  } catch (const runtime::DivergedError &err) {
    std::string msg = err.what();
    INFO(msg);
    CHECK((msg.find("layer ") != std::string::npos ||
           msg.find("loss") != std::string::npos));
    CHECK(msg.find("NaN or Inf") != std::string::npos);
    CHECK(msg.find("at step ") != std::string::npos);
  }
}
