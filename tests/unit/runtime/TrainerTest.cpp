// Targets by FISTA from the plan's objective split, and primal-dual
// training of a tiny constrained LISTA.
#include "RuntimeTestUtil.h"

#include "compiler/kernels/KernelJIT.h"
#include "runtime/Data.h"
#include "runtime/RunSetup.h"
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
  opts.primal.lr = 3e-3;
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
  o.primal.lr = 3e-3;
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

TEST_CASE("every primal optimizer and schedule resumes exactly", "[trainer]") {
  using Kind = runtime::PrimalSettings::Kind;
  using Schedule = runtime::PrimalSettings::Schedule;
  auto algs = test::planFor(kSpec);
  runtime::TrainOptions opts = smallOptions();
  opts.epochs = 3;
  runtime::PrimalSettings &p = opts.primal;
  const int which = GENERATE(0, 1, 2, 3);
  std::string stateKey;
  if (which == 0) { // SGD with Nesterov momentum, decayed in steps
    p.kind = Kind::Sgd;
    p.lr = 0.05;
    p.momentum = 0.9;
    p.nesterov = true;
    p.schedule = Schedule::Step;
    p.every = 2;
    p.gamma = 0.5;
    stateKey = "sgd.param.Wu.1.momentum_buffer";
  } else if (which == 1) { // AdamW on a cosine
    p.kind = Kind::AdamW;
    p.weightDecay = 0.05;
    p.schedule = Schedule::Cosine;
    p.minLr = 1e-4;
    stateKey = "adamw.param.Wu.1.exp_avg_sq";
  } else if (which == 2) { // Adam with L2 decay
    p.weightDecay = 0.01;
    stateKey = "adam.param.Wu.1.exp_avg";
  } else { // plain SGD: no state at all
    p.kind = Kind::Sgd;
    p.lr = 0.05;
  }
  INFO(p.name() << " " << which);
  Fixture a(algs[0]);
  runtime::PrimalDual pa(a.ex, opts);
  std::vector<double> rates;
  for (int e = 0; e < 3; ++e)
    rates.push_back(pa.epoch(e, a.data, a.ystar)->lr);
  runtime::TensorFile straight;
  pa.save(straight);
  for (int e = 0; e < 3; ++e)
    CHECK(rates[e] == Approx(p.lrAt(e, 3)));

  Fixture b(algs[0]);
  runtime::PrimalDual pb(b.ex, opts);
  REQUIRE(pb.epoch(0, b.data, b.ystar));
  runtime::TensorFile ckpt;
  pb.save(ckpt);
  Fixture c(algs[0]);
  runtime::PrimalDual pc(c.ex, opts);
  pc.load(ckpt);
  for (int e = 1; e < 3; ++e)
    REQUIRE(pc.epoch(e, c.data, c.ystar));
  runtime::TensorFile resumed;
  pc.save(resumed);
  if (stateKey.empty()) {
    for (auto &[name, t] : straight.tensors)
      CHECK((name.rfind("param.", 0) == 0 || name.rfind("dual.", 0) == 0));
  } else {
    CHECK(straight.tensors.count(stateKey));
  }
  REQUIRE(resumed.tensors.size() == straight.tensors.size());
  for (auto &[name, t] : straight.tensors) {
    INFO(name);
    CHECK(torch::equal(resumed.tensors.at(name), t));
  }
  CHECK(!torch::equal(ckpt.tensors.at("param.Wu.1"),
                      straight.tensors.at("param.Wu.1")));

  // A checkpoint of another optimizer is refused, not half loaded.
  if (!stateKey.empty()) {
    runtime::TrainOptions other = smallOptions();
    other.primal.kind = p.kind == Kind::Sgd ? Kind::Adam : Kind::Sgd;
    other.primal.momentum = 0.5;
    Fixture d(algs[0]);
    runtime::PrimalDual pd(d.ex, other);
    CHECK_THROWS_WITH(pd.load(ckpt),
                      Catch::Contains("holds the state of optimizer '" +
                                      std::string(p.name()) + "'"));
  }
}

TEST_CASE("the primal optimizers take the steps their settings define",
          "[trainer]") {
  using Kind = runtime::PrimalSettings::Kind;
  // One parameter w with the loss sum(g * w): the gradient is g.
  auto algs = test::planFor(R"(
problem q(n: int) {
  data x : vec[n]
  var  y : vec[n]
  minimize sqnorm(y)
}
unrolled u(layers = 1) solves q(n = 3) {
  init  y = zeros()
  param w : vec[n] shared = 1
  step { y = w * x }
}
train u { loss sum(y[L]) }
)");
  runtime::Executor ex(algs[0]);
  const torch::Tensor x = torch::tensor({{1.0f, -2.0f, 0.5f}});
  ex.bindInputs({{"x", x}});
  ex.initParams(0);
  const int64_t id = algs[0].params[0].id;
  auto run = [&](const runtime::PrimalSettings &s, int steps, double lr2) {
    torch::NoGradGuard guard;
    ex.params().at(id).fill_(1);
    auto opt = runtime::PrimalOptimizer::make(ex, s);
    for (int k = 0; k < steps; ++k) {
      if (k == 1)
        opt->setLr(lr2);
      opt->zeroGrad();
      {
        at::AutoGradMode on(true);
        auto fw = ex.forward(0);
        ex.body(*algs[0].loss, {runtime::RValue{fw.states[1][0], true}})[0]
            .t.sum()
            .backward();
      }
      opt->step();
    }
    return ex.params().at(id).clone();
  };
  const torch::Tensor g = x[0], w0 = torch::ones({3});
  runtime::PrimalSettings sgd;
  sgd.kind = Kind::Sgd;
  sgd.lr = 0.1;
  // Plain SGD, the second step at the new rate.
  CHECK(torch::allclose(run(sgd, 2, 0.3), w0 - 0.1 * g - 0.3 * g));
  // Nesterov: b = m b + g; w -= lr (g + m b).
  sgd.momentum = 0.9;
  sgd.nesterov = true;
  torch::Tensor b1 = g, b2 = 0.9 * b1 + g;
  CHECK(torch::allclose(run(sgd, 2, 0.1),
                        w0 - 0.1 * (g + 0.9 * b1) - 0.1 * (g + 0.9 * b2)));
  // L2 decay enters SGD's gradient.
  sgd.momentum = 0;
  sgd.nesterov = false;
  sgd.weightDecay = 0.5;
  CHECK(torch::allclose(run(sgd, 1, 0.1), w0 - 0.1 * (g + 0.5 * w0)));
  // AdamW's first step: the decay shrinks w, then Adam moves it by lr
  // against the gradient's sign; Adam's own decay enters the gradient.
  runtime::PrimalSettings adamw;
  adamw.kind = Kind::AdamW;
  adamw.lr = 0.01;
  adamw.weightDecay = 0.5;
  CHECK(torch::allclose(run(adamw, 1, 0.01),
                        w0 * (1 - 0.01 * 0.5) - 0.01 * g.sign(), 1e-5, 1e-6));
  runtime::PrimalSettings adam = adamw;
  adam.kind = Kind::Adam;
  CHECK(torch::allclose(run(adam, 1, 0.01), w0 - 0.01 * (g + 0.5 * w0).sign(),
                        1e-5, 1e-6));
}

TEST_CASE("learning-rate schedules", "[trainer]") {
  using Schedule = runtime::PrimalSettings::Schedule;
  runtime::PrimalSettings s;
  s.lr = 0.1;
  CHECK(s.lrAt(7, 10) == 0.1);
  s.schedule = Schedule::Step;
  s.every = 3;
  s.gamma = 0.5;
  CHECK(s.lrAt(2, 10) == Approx(0.1));
  CHECK(s.lrAt(3, 10) == Approx(0.05));
  CHECK(s.lrAt(7, 10) == Approx(0.025));
  s.schedule = Schedule::Cosine;
  s.minLr = 0.02;
  CHECK(s.lrAt(0, 10) == Approx(0.1));
  CHECK(s.lrAt(5, 10) == Approx(0.06));
  CHECK(s.lrAt(10, 10) == Approx(0.02));
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
  opts.primal.lr = 1e30;
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

namespace {
/// The plan of a one-layer algorithm for `problem` (which must declare a
/// problem `q(p, d)` with data x : vec[p], given A : mat[p, d] and one var
/// y : vec[d]) with a target by `solver`.
runtime::Algorithm targetPlan(const std::string &problem,
                              const std::string &solver, int p = 12) {
  return test::planFor("import sets\nimport prox\nimport losses\n" + problem +
                       "\nunrolled u(layers = 1) solves q(p = " +
                       std::to_string(p) + R"(, d = 8) {
  init  y = zeros()
  param t : scalar shared = 0.1
  step  { y = y - t * (A' @ (A @ y - x)) }
}
train u {
  target ystar = solve(q, )" +
                       solver + R"(, tol = 1e-9)
  loss   mse(y[L], ystar)
}
)")[0];
}

/// y* by the plan's solver for x = A c + noise, with A's columns of unit
/// norm; `accelerated` as the target's solver asks (primal_dual: the
/// primal-dual method).
torch::Tensor solve(const runtime::Algorithm &alg, const torch::Tensor &x,
                    const torch::Tensor &A, bool accelerated) {
  runtime::Executor ex(alg);
  ex.bindInputs({{"x", x}, {"A", A}});
  ex.initParams(0);
  if (alg.targets[0].solver == "primal_dual")
    return runtime::solvePrimalDual(ex, 10000, 1e-6);
  return runtime::solveTargets(ex, 5000, 1e-9, accelerated);
}
} // namespace

TEST_CASE("targets of constrained problems satisfy their optimality "
          "conditions",
          "[trainer]") {
  // In float64: y* is a fixed point of the projected (prox-)gradient map,
  // y = P(prox_{w/L}(y - grad g(y) / L)); the set is active (the
  // unconstrained optimum lies outside it), so a solver that forgot the
  // projection would fail; ISTA, FISTA and PGD agree where they apply.
  torch::manual_seed(2);
  torch::Tensor A = torch::randn({12, 8});
  A = A / A.norm(2, {0}, true);
  torch::Tensor x = torch::randn({6, 8}).matmul(A.t()) * 3;
  const torch::Tensor Ad = A.to(torch::kFloat64), xd = x.to(torch::kFloat64);
  const double L = std::pow(std::get<1>(torch::svd(Ad))[0].item<double>(), 2);
  auto gradOf = [&](const torch::Tensor &y) {
    return (y.matmul(Ad.t()) - xd).matmul(Ad);
  };
  auto clamp01 = [](const torch::Tensor &v) { return v.clamp(0, 1); };
  auto soft = [](const torch::Tensor &v, double t) {
    return v.sign() * torch::relu(v.abs() - t);
  };

  SECTION("least squares in a box: projected gradient") {
    auto alg = targetPlan(R"(
problem q(p: int, d: int) {
  data  x : vec[p]
  given A : mat[p, d]
  var   y : vec[d] in box(0, 1)
  minimize 0.5 * sqnorm(A @ y - x)
})",
                          "pgd");
    REQUIRE(alg.projections.size() == 1);
    CHECK(alg.projections[0].set == "box");
    CHECK(alg.targets[0].solver == "pgd");
    torch::Tensor y = solve(alg, x, A, false).to(torch::kFloat64);
    CHECK(y.min().item<double>() >= 0);
    CHECK(y.max().item<double>() <= 1);
    torch::Tensor fixed = clamp01(y - gradOf(y) / L);
    CHECK((y - fixed).abs().max().item<double>() < 1e-4);
    // The box is active: least squares alone leaves it.
    torch::Tensor free = std::get<0>(torch::linalg_lstsq(Ad, xd.t())).t();
    CHECK(((free < -0.1) | (free > 1.1)).any().item<bool>());
    CHECK((y - free).abs().max().item<double>() > 0.1);
    // FISTA with the projection reaches the same point.
    torch::Tensor yf = solve(alg, x, A, true).to(torch::kFloat64);
    CHECK((yf - y).abs().max().item<double>() < 1e-4);
  }

  SECTION("the lasso on the non-negative orthant: prox then projection") {
    auto alg = targetPlan(R"(
problem q(p: int, d: int) {
  data  x : vec[p]
  given A : mat[p, d]
  var   y : vec[d] in nonneg
  minimize 0.5 * sqnorm(A @ y - x) + 0.3 * norm1(y)
})",
                          "auto");
    CHECK(alg.targets[0].solver == "fista");
    torch::Tensor y = solve(alg, x, A, true).to(torch::kFloat64);
    CHECK(y.min().item<double>() >= 0);
    torch::Tensor fixed = torch::relu(soft(y - gradOf(y) / L, 0.3 / L));
    CHECK((y - fixed).abs().max().item<double>() < 1e-4);
    // Without the set the optimum has negative entries.
    auto freeAlg = targetPlan(R"(
problem q(p: int, d: int) {
  data  x : vec[p]
  given A : mat[p, d]
  var   y : vec[d]
  minimize 0.5 * sqnorm(A @ y - x) + 0.3 * norm1(y)
})",
                              "fista");
    CHECK(freeAlg.projections.empty());
    torch::Tensor yFree = solve(freeAlg, x, A, true);
    CHECK((yFree < -1e-3).any().item<bool>());
    // ISTA agrees with FISTA.
    torch::Tensor yi = solve(alg, x, A, false).to(torch::kFloat64);
    CHECK((yi - y).abs().max().item<double>() < 1e-4);
  }

  SECTION("the group lasso: the prox of the l2 norm from the library") {
    auto alg = targetPlan(R"(
import prox
problem q(p: int, d: int) {
  data  x : vec[p]
  given A : mat[p, d]
  var   y : vec[d]
  minimize 0.5 * sqnorm(A @ y - x) + 2 * norm(y)
})",
                          "fista");
    REQUIRE(alg.solver->proximal);
    CHECK(alg.solver->proximal->of == "norm");
    torch::Tensor y = solve(alg, x, A, true).to(torch::kFloat64);
    torch::Tensor z = y - gradOf(y) / L;
    torch::Tensor fixed =
        z * torch::relu(1 - (2 / L) / z.norm(2, {1}, true).clamp_min(1e-30));
    CHECK((y - fixed).abs().max().item<double>() < 1e-4);
    // The norm shrinks every instance, and sets some to zero: it acts.
    torch::Tensor free = std::get<0>(torch::linalg_lstsq(Ad, xd.t())).t();
    CHECK((y.norm(2, {1}) < free.norm(2, {1}) - 0.5).all().item<bool>());
    CHECK(!torch::allclose(y, free, 1e-2, 1e-2));
  }

  SECTION("a regulariser a user adds with its prox, in a box") {
    // The elastic net's prox: argmin_u t(|u| + u^2 / 2) + (u - v)^2 / 2.
    auto alg = targetPlan(R"(
import prox
fn en(v) = norm1(v) + 0.5 * sqnorm(v)
prox en(v, t) = soft_threshold(v, t) / (1 + t)
problem q(p: int, d: int) {
  data  x : vec[p]
  given A : mat[p, d]
  var   y : vec[d] in box(-1, 1)
  minimize 0.5 * sqnorm(A @ y - x) + 0.3 * en(y)
})",
                          "fista");
    REQUIRE(alg.solver->proximal);
    CHECK(alg.solver->proximal->of == "en");
    torch::Tensor y = solve(alg, x, A, true).to(torch::kFloat64);
    const double t = 0.3 / L;
    torch::Tensor fixed = (soft(y - gradOf(y) / L, t) / (1 + t)).clamp(-1, 1);
    CHECK((y - fixed).abs().max().item<double>() < 1e-4);
    CHECK(y.abs().max().item<double>() <= 1 + 1e-6);
    CHECK((y.abs() > 1 - 1e-6).any().item<bool>()); // the box is active
  }

  SECTION("least squares in a ball: a projection that is not elementwise") {
    auto alg = targetPlan(R"(
problem q(p: int, d: int) {
  data  x : vec[p]
  given A : mat[p, d]
  var   y : vec[d] in ball(0.5)
  minimize 0.5 * sqnorm(A @ y - x)
})",
                          "pgd");
    torch::Tensor y = solve(alg, x, A, true).to(torch::kFloat64);
    torch::Tensor norms = y.norm(2, {1});
    CHECK(norms.max().item<double>() <= 0.5 + 1e-5);
    torch::Tensor z = y - gradOf(y) / L;
    torch::Tensor fixed = z * torch::clamp_max(0.5 / z.norm(2, {1}, true), 1.0);
    CHECK((y - fixed).abs().max().item<double>() < 1e-4);
    // The ball is active for every instance here.
    CHECK(norms.min().item<double>() > 0.5 - 1e-4);
  }
}

TEST_CASE("primal-dual targets of non-smooth terms of linear maps satisfy "
          "their optimality conditions",
          "[trainer]") {
  // In float64. y* minimises g(y) + c ||G y||_1 when some z with
  // |z_i| <= c, z_i = c sign((G y)_i) where (G y)_i != 0, has
  // grad g(y) + G' z = 0: the test finds the best such z by least squares
  // on the entries where G y is zero and checks the residual. A solver
  // that dropped the term, or treated it as c ||y||_1, would fail.
  torch::manual_seed(3);
  auto kkt = [](const torch::Tensor &y, const torch::Tensor &grad,
                const torch::Tensor &G, double c) {
    double worst = 0;
    for (int64_t b = 0; b < y.size(0); ++b) {
      torch::Tensor gy = G.matmul(y[b]);
      torch::Tensor on = gy.abs() > 1e-5, off = gy.abs() <= 1e-5;
      torch::Tensor rhs =
          -grad[b] - G.index({on}).t().matmul(c * gy.index({on}).sign());
      torch::Tensor Goff = G.index({off}).t(); // [d, zeros]
      torch::Tensor zoff = torch::zeros({0}, y.options());
      if (Goff.size(1) > 0)
        zoff =
            std::get<0>(torch::linalg_lstsq(Goff, rhs.unsqueeze(1))).squeeze(1);
      torch::Tensor residual = Goff.size(1) > 0 ? Goff.matmul(zoff) - rhs : rhs;
      worst = std::max(worst, residual.abs().max().item<double>());
      if (zoff.numel() > 0)
        worst = std::max(worst, zoff.abs().max().item<double>() - c);
    }
    return worst;
  };
  auto diffMatrix = [](int64_t d) {
    torch::Tensor I = torch::eye(d, torch::kFloat64);
    return I.narrow(0, 1, d - 1) - I.narrow(0, 0, d - 1);
  };
  const torch::Tensor G = diffMatrix(8);

  SECTION("TV denoising: against the dual solved here") {
    auto alg = targetPlan(R"(
problem q(p: int, d: int) {
  data  x : vec[p]
  given A : mat[p, d]
  var   y : vec[d]
  minimize 0.5 * sqnorm(A @ y - x) + 0.3 * norm1(diff(y))
})",
                          "auto", 8);
    CHECK(alg.targets[0].solver == "primal_dual");
    REQUIRE(alg.solver);
    REQUIRE(alg.solver->composed.size() == 1);
    CHECK(alg.solver->composed[0].of == "norm1");
    torch::Tensor steps =
        torch::tensor({0.f, 0.f, 1.f, 1.f, 1.f, -0.5f, -0.5f, -0.5f});
    torch::Tensor x = steps.expand({5, 8}) + 0.2 * torch::randn({5, 8});
    torch::Tensor y = solve(alg, x, torch::eye(8), false).to(torch::kFloat64);
    const torch::Tensor xd = x.to(torch::kFloat64);
    CHECK(kkt(y, y - xd, G, 0.3) < 1e-4);
    // The dual of TV denoising, min ||x - G' z||^2 / 2 over |z| <= c, by
    // projected gradient (||G||^2 <= 4): y = x - G' z.
    torch::Tensor z = torch::zeros({5, 7}, torch::kFloat64);
    for (int i = 0; i < 20000; ++i)
      z = (z + 0.25 * (xd - z.matmul(G)).matmul(G.t())).clamp(-0.3, 0.3);
    torch::Tensor ref = xd - z.matmul(G);
    CHECK((y - ref).abs().max().item<double>() < 1e-4);
    // The term acts: the optimum is flatter than the data, with runs of
    // equal entries.
    CHECK(y.matmul(G.t()).abs().sum().item<double>() <
          xd.matmul(G.t()).abs().sum().item<double>());
    CHECK((y.matmul(G.t()).abs() < 1e-5).any().item<bool>());
  }

  SECTION("TV of a least-squares fit, its weight a product") {
    auto alg = targetPlan(R"(
problem q(p: int, d: int) {
  data  x : vec[p]
  given A : mat[p, d]
  var   y : vec[d]
  minimize 0.5 * sqnorm(A @ y - x) + 0.5 * 0.4 * norm1(diff(y))
})",
                          "primal_dual");
    torch::Tensor A = torch::randn({12, 8});
    A = A / A.norm(2, {0}, true);
    torch::Tensor x = torch::randn({4, 8}).matmul(A.t()) * 2;
    torch::Tensor y = solve(alg, x, A, false).to(torch::kFloat64);
    const torch::Tensor Ad = A.to(torch::kFloat64), xd = x.to(torch::kFloat64);
    torch::Tensor grad = (y.matmul(Ad.t()) - xd).matmul(Ad);
    CHECK(kkt(y, grad, G, 0.2) < 1e-3);
    // Some differences are zero: the term is active.
    CHECK((y.matmul(G.t()).abs() < 1e-5).any().item<bool>());
  }

  SECTION("a scaled identity map agrees with FISTA on the plain term") {
    auto linear = targetPlan(R"(
problem q(p: int, d: int) {
  data  x : vec[p]
  given A : mat[p, d]
  var   y : vec[d]
  minimize 0.5 * sqnorm(A @ y - x) + 0.3 * norm1(2 * y)
})",
                             "auto");
    auto plain = targetPlan(R"(
problem q(p: int, d: int) {
  data  x : vec[p]
  given A : mat[p, d]
  var   y : vec[d]
  minimize 0.5 * sqnorm(A @ y - x) + 0.6 * norm1(y)
})",
                            "fista");
    CHECK(linear.targets[0].solver == "primal_dual");
    torch::Tensor A = torch::randn({12, 8});
    A = A / A.norm(2, {0}, true);
    torch::Tensor x = torch::randn({4, 8}).matmul(A.t()) * 2;
    torch::Tensor a = solve(linear, x, A, false), b = solve(plain, x, A, true);
    CHECK((a - b).abs().max().item<double>() < 1e-4);
  }

  SECTION("two kinds of non-smooth term: the second through the identity") {
    // 0.3 ||y||_1 + 0.5 ||y||_2: the sparse group lasso of one group, whose
    // prox is the soft-threshold followed by the group soft-threshold.
    auto alg = targetPlan(R"(
problem q(p: int, d: int) {
  data  x : vec[p]
  given A : mat[p, d]
  var   y : vec[d]
  minimize 0.5 * sqnorm(A @ y - x) + 0.3 * norm1(y) + 0.5 * norm(y)
})",
                          "auto");
    CHECK(alg.targets[0].solver == "primal_dual");
    REQUIRE(alg.solver->proximal);
    CHECK(alg.solver->proximal->of == "norm1");
    REQUIRE(alg.solver->composed.size() == 1);
    CHECK(alg.solver->composed[0].of == "norm");
    torch::Tensor A = torch::randn({12, 8});
    A = A / A.norm(2, {0}, true);
    torch::Tensor x = torch::randn({4, 8}).matmul(A.t()) * 2;
    torch::Tensor y = solve(alg, x, A, false).to(torch::kFloat64);
    const torch::Tensor Ad = A.to(torch::kFloat64), xd = x.to(torch::kFloat64);
    const double L = std::pow(std::get<1>(torch::svd(Ad))[0].item<double>(), 2);
    torch::Tensor v = y - (y.matmul(Ad.t()) - xd).matmul(Ad) / L;
    torch::Tensor s = v.sign() * torch::relu(v.abs() - 0.3 / L);
    torch::Tensor fixed =
        s * torch::relu(1 - (0.5 / L) / s.norm(2, {1}, true).clamp_min(1e-30));
    CHECK((y - fixed).abs().max().item<double>() < 1e-4);
  }
}

TEST_CASE("a plan's primal settings are resolved or refused", "[trainer]") {
  // What a hand-edited plan could hold: the checker refuses the same in a
  // spec, with its location.
  using nlohmann::json;
  runtime::PrimalSettings p = runtime::resolvePrimal({{"kind", "sgd"},
                                                      {"lr", 0.1},
                                                      {"momentum", 0.9},
                                                      {"nesterov", "true"},
                                                      {"schedule", "step"},
                                                      {"every", 3},
                                                      {"gamma", 0.5}});
  CHECK(p.kind == runtime::PrimalSettings::Kind::Sgd);
  CHECK(p.nesterov);
  CHECK(p.every == 3);
  CHECK(runtime::resolvePrimal({{"kind", "adamw"}, {"lr", 0.1}}).weightDecay ==
        0.01);
  auto refused = [](const json &j) {
    try {
      runtime::resolvePrimal(j);
    } catch (const std::exception &e) {
      return std::string(e.what());
    }
    return std::string();
  };
  CHECK(refused({{"kind", "rmsprop"}, {"lr", 0.1}}) ==
        "primal optimizer 'rmsprop' is not supported; use adam, adamw or sgd");
  CHECK(refused({{"kind", "sgd"}, {"lr", 0.1}, {"beta1", 0.9}}) ==
        "sgd: 'beta1' does not apply to sgd");
  CHECK(refused({{"kind", "adam"}, {"lr", 0.1}, {"gamma", 0.5}}) ==
        "adam: 'gamma' does not apply without schedule = step");
  CHECK(refused({{"kind", "adam"}, {"lr", 0.1}, {"min_lr", 0.01}}) ==
        "adam: 'min_lr' does not apply without schedule = cosine");
  CHECK(refused({{"kind", "sgd"}, {"lr", 0.1}, {"nesterov", "true"}}) ==
        "sgd: nesterov needs a momentum above 0");
  CHECK(refused({{"kind", "adam"}, {"lr", -1}}) == "adam: lr must be positive");
  CHECK(refused({{"kind", "adam"},
                 {"lr", 0.1},
                 {"schedule", "cosine"},
                 {"min_lr", 0.5}}) == "adam: min_lr must be in [0, lr]");
  CHECK(refused({{"kind", "adam"}, {"lr", 0.1}, {"schedule", "linear"}}) ==
        "learning-rate schedule 'linear' is not supported; use constant, "
        "step or cosine");
}
