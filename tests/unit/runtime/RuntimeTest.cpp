// The runtime's plan executor (LibTorch, float32, batched) against the
// reference evaluator (float64, one instance at a time) on a small LISTA.
#include "RuntimeTestUtil.h"

#include "compiler/kernels/KernelJIT.h"
#include "runtime/Data.h"
#include "runtime/Npy.h"
#include "runtime/Random.h"
#include "runtime/Safetensors.h"
#include "runtime/Trainer.h"

#include <ATen/CPUGeneratorImpl.h>

#include <catch2/catch.hpp>

#include <filesystem>
#include <limits>

using namespace unroll;

namespace {
// With beta tied across layers, so shared parameters are covered too.
const std::string kSpec = [] {
  std::string s = test::tinyLista(4, 6, 3);
  const std::string perLayer = "vec[d]    per layer";
  s.replace(s.find(perLayer), perLayer.size(), "vec[d]    shared");
  return s;
}();

eval::Tensor toEval(const torch::Tensor &t) {
  torch::Tensor c = t.detach().to(torch::kFloat64).contiguous();
  eval::Tensor r;
  r.shape.assign(c.sizes().begin(), c.sizes().end());
  r.data.assign(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
  return r;
}

/// Runs `spec` (whose states start deterministically) through the plan
/// executor on `inputs` (data with a leading batch axis of `B`) and checks
/// every layer of every instance against the float64 evaluator.
void checkAgainstEvaluator(const std::string &spec,
                           const std::map<std::string, torch::Tensor> &inputs,
                           int64_t B, double margin) {
  // The module is needed too: the evaluator runs its layers.
  mlir::MLIRContext ctx;
  std::ostringstream err;
  auto module = test::compileSpec(spec, ctx, err, /*pipeline=*/true);
  INFO(err.str());
  REQUIRE(module);
  auto plan = compiler::lowerToPlan(*module);
  REQUIRE(mlir::succeeded(plan));
  auto algs = runtime::parsePlan(plan->dump());
  REQUIRE(algs.size() == 1);
  runtime::Executor ex(algs[0]);
  ex.bindInputs(inputs);
  ex.initParams(1);
  runtime::ForwardResult fw = ex.forward(2);
  int64_t L = algs[0].layerCount;
  REQUIRE(static_cast<int64_t>(fw.states.size()) == L + 1);

  // The same layers in float64, one instance at a time, with the same
  // parameter values (plan params are listed in IR order).
  eval::Env env;
  std::vector<ir::ParamOp> params;
  std::vector<ir::InputOp> ins;
  module->walk([&](mlir::Operation *op) {
    if (auto p = mlir::dyn_cast<ir::ParamOp>(op))
      params.push_back(p);
    else if (auto in = mlir::dyn_cast<ir::InputOp>(op))
      ins.push_back(in);
    else if (auto c = mlir::dyn_cast<ir::ConstantOp>(op);
             c && mlir::isa<ir::AlgorithmOp>(op->getParentOp()))
      env[c.getResult()] = eval::Tensor::scalar(c.getValue().convertToDouble());
  });
  const std::vector<abi::Param> &planParams = algs[0].params;
  REQUIRE(params.size() == planParams.size());
  for (size_t i = 0; i < params.size(); ++i)
    env[params[i].getResult()] = toEval(ex.params().at(planParams[i].id));
  std::vector<ir::LayerOp> layers;
  module->walk([&](ir::LayerOp l) { layers.push_back(l); });
  REQUIRE(static_cast<int64_t>(layers.size()) == L);
  for (int64_t b = 0; b < B; ++b) {
    for (ir::InputOp in : ins) {
      const torch::Tensor &t = inputs.at(in.getName().str());
      env[in.getResult()] = toEval(in.getRole() == ir::Role::Data ? t[b] : t);
    }
    eval::Tensor y = toEval(fw.states[0][0][b]);
    for (ir::LayerOp l : layers) {
      y = eval::evaluate(l.getBody().front(), {y}, env,
                         static_cast<double>(l.getIndex()))[0];
      eval::Tensor got = toEval(fw.states[l.getIndex()][0][b]);
      REQUIRE(got.data.size() == y.data.size());
      double worst = 0;
      for (size_t i = 0; i < y.data.size(); ++i)
        worst = std::max(worst, std::fabs(got.data[i] - y.data[i]));
      INFO("instance " << b << ", layer " << l.getIndex());
      CHECK(worst < margin);
    }
  }
}

} // namespace

TEST_CASE("the runtime executes LISTA like the reference evaluator",
          "[runtime]") {
  torch::manual_seed(0);
  checkAgainstEvaluator(
      kSpec, {{"x", torch::randn({5, 4})}, {"D", torch::randn({4, 6})}}, 5,
      1e-5);
}

TEST_CASE("the runtime executes GLOW-Prox like the reference evaluator",
          "[runtime]") {
  torch::manual_seed(0);
  torch::Tensor mask = torch::ones({1, 28, 28});
  mask.index_put_(
      {0, torch::indexing::Slice(10, 18), torch::indexing::Slice(10, 18)}, 0);
  checkAgainstEvaluator(
      test::readFile(test::sourcePath("examples/glow_prox.unroll")),
      {{"x", torch::rand({2, 1, 28, 28})},
       {"ytrue", torch::rand({2, 1, 28, 28})},
       {"M", mask}},
      2, 1e-3);
}

// Steps that take gradients through convolutions, inverses, spectral norms,
// graph filters and stacked products, with respect to the state and to
// parameters: the runtime must run every op the differentiate pass emits
// (per-instance kernels and weights included) like the evaluator.
TEST_CASE("the runtime runs differentiated convolutions and inverses",
          "[runtime]") {
  const std::string spec = R"(
fn e(v, k, m) = sqnorm(tanh(conv2d(v, k))) + sqnorm(conv1x1(v, inv(m)))
fn ek(k, v) = sqnorm(tanh(conv2d(v, k)))
fn em(m, v) = sqnorm(tanh(conv1x1(v, m)))
problem images(c: int, h: int, w: int) {
  data  x : tensor[c, h, w]
  var   y : tensor[c, h, w]
  minimize 0.5 * sqnorm(x - y)
}
unrolled adj(layers = 2) solves images(c = 2, h = 4, w = 5) {
  init  y = x
  param K : tensor[c, c, 3, 3] per layer = normal(0, 0.3)
  param W : mat[c, c] per layer = eye(c)
  step {
    a = y - 0.05 * grad(e, y, K, W)
    b = a - 0.01 * conv2d(a, grad(ek, K, a))
    y = b - 0.01 * conv1x1(b, grad(em, W, b))
  }
}
)";
  torch::manual_seed(0);
  checkAgainstEvaluator(spec, {{"x", torch::randn({3, 2, 4, 5})}}, 3, 1e-4);
}

TEST_CASE("the runtime runs differentiated graph filters and spectral norms",
          "[runtime]") {
  const std::string spec = R"(
fn e(v, s, t, st) = lipschitz(v) + sqnorm(graph_filter(s, v, t)) + sqnorm(tanh(st @ v))
fn et(t, s, v) = sqnorm(graph_filter(s, v, t))
problem graphs(n: int, f: int) {
  data  x : mat[n, f]
  given S : mat[n, n]
  var   y : mat[n, f]
  minimize 0.5 * sqnorm(x - y)
}
unrolled adj(layers = 2) solves graphs(n = 4, f = 3) {
  init  y = x
  param taps  : vec[3] per layer = normal(0, 0.5)
  param stack : tensor[2, 3, n] per layer = normal(0, 0.5)
  step {
    a = y - 0.05 * grad(e, y, S, taps, stack)
    y = a * (1 + 0.01 * sum(grad(et, taps, S, a)))
  }
}
)";
  torch::manual_seed(0);
  checkAgainstEvaluator(
      spec, {{"x", torch::randn({3, 4, 3})}, {"S", torch::rand({4, 4}) / 4}}, 3,
      1e-4);
}

TEST_CASE("the runtime runs SURF's layers with fresh minibatches",
          "[runtime]") {
  auto algs =
      test::planFor(test::readFile(test::sourcePath("examples/surf.unroll")));
  runtime::Executor ex(algs[0]);
  torch::manual_seed(0);
  torch::Tensor labels =
      torch::one_hot(torch::randint(10, {2, 100, 50}), 10).to(torch::kFloat32);
  torch::Tensor S = torch::rand({100, 100}) / 100;
  ex.bindInputs(
      {{"X", torch::randn({2, 100, 50, 64})}, {"Y", labels}, {"S", S}});
  ex.initParams(1);
  auto a = ex.forward(2), b = ex.forward(2), c = ex.forward(3);
  REQUIRE(a.states.size() == 11);
  CHECK(a.states[10][0].sizes() == torch::IntArrayRef({2, 100, 10, 65}));
  CHECK(torch::isfinite(a.states[10][0]).all().item<bool>());
  // Seeds make runs reproducible; another seed draws other minibatches.
  CHECK(torch::equal(a.states[10][0], b.states[10][0]));
  CHECK(!torch::equal(a.states[10][0], c.states[10][0]));
}

TEST_CASE("synthetic_federated makes SURF's data: one-hot labels a shared "
          "classifier explains, and a normalised graph",
          "[runtime]") {
  std::string spec = test::readFile(test::sourcePath("examples/surf.unroll"));
  auto set = [&](const std::string &from, const std::string &to) {
    size_t at = spec.find(from);
    REQUIRE(at != std::string::npos);
    spec.replace(at, from.size(), to);
  };
  set("agents = 100, features = 64, classes = 10, samples = 50",
      "agents = 7, features = 3, classes = 4, samples = 30");
  const std::string graph = GENERATE("random", "ring", "complete");
  INFO("graph " << graph);
  set("samples = 50, heldout = 200, graph = random",
      "samples = 30, n = 12, heldout = 5, graph = " + graph);
  auto algs = test::planFor(spec);
  runtime::Dataset d = runtime::loadDataset(algs[0], 3);
  CHECK(d.train.size == 12);
  CHECK(d.validation.size == 2);
  CHECK(d.test.size == 3);
  const torch::Tensor X = d.train.inputs.at("X"), Y = d.train.inputs.at("Y"),
                      S = d.train.inputs.at("S");
  CHECK(X.sizes() == torch::IntArrayRef({12, 7, 30, 3}));
  CHECK(Y.sizes() == torch::IntArrayRef({12, 7, 30, 4}));
  CHECK(torch::equal(Y.sum(3), torch::ones({12, 7, 30})));
  CHECK(((Y == 0) | (Y == 1)).all().item<bool>());
  // Symmetric, no self-loops, largest eigenvalue 1, connected (a ring at
  // least: every node has a neighbour on each side).
  CHECK(torch::equal(S, S.t()));
  CHECK(torch::equal(S.diagonal(), torch::zeros({7})));
  CHECK(torch::linalg::eigvalsh(S, "L").abs().max().item<double>() ==
        Approx(1).epsilon(1e-5));
  for (int64_t i = 0; i < 7; ++i)
    CHECK((S[i][(i + 1) % 7].item<float>() > 0 &&
           S[i][(i + 6) % 7].item<float>() > 0));
  // Labels follow the features: per instance, a least-squares fit of the
  // one-hot labels on [x, 1] pooled over the agents beats the class
  // frequencies alone (labels drawn independently of x would not).
  for (int64_t i = 0; i < 3; ++i) {
    torch::Tensor x = X[i].reshape({-1, 3}), y = Y[i].reshape({-1, 4});
    torch::Tensor A = torch::cat({x, torch::ones({x.size(0), 1})}, 1);
    torch::Tensor coef = std::get<0>(torch::linalg::lstsq(A, y, {}, {}));
    double fit = (A.matmul(coef) - y).square().sum().item<double>();
    double base = (y - y.mean(0)).square().sum().item<double>();
    CHECK(fit < 0.9 * base);
  }
  // Same seed, same data; another seed, other data.
  CHECK(torch::equal(runtime::loadDataset(algs[0], 3).train.inputs.at("X"), X));
  CHECK(
      !torch::equal(runtime::loadDataset(algs[0], 4).train.inputs.at("X"), X));
  // The source's samples must be the problem's.
  set("samples = 30, n = 12", "samples = 20, n = 12");
  CHECK_THROWS_WITH(runtime::loadDataset(test::planFor(spec)[0], 3),
                    "synthetic_federated: samples = 20 but the problem's "
                    "inputs hold 30 per agent");
  // Files that are not there: an error that names the first.
  set("synthetic_federated(samples = 20, n = 12, heldout = 5, graph = " +
          graph + ")",
      "npy(dir = \"/nonexistent-unroll\")");
  CHECK_THROWS_WITH(runtime::loadDataset(test::planFor(spec)[0], 3),
                    "cannot open '/nonexistent-unroll/S.npy': No such file "
                    "or directory");
}

namespace {
/// A .npy file of `descr` and `shape` (a Python tuple) holding `bytes`,
/// in format `version` (1 or 2).
std::string npyFile(const std::string &name, const std::string &descr,
                    const std::string &shape, const std::string &bytes,
                    int version = 1, const char *order = "False") {
  std::string header = "{'descr': '" + descr + "', 'fortran_order': " + order +
                       ", 'shape': " + shape + ", }";
  const size_t prefix = version == 1 ? 10 : 12;
  header.append(63 - (prefix + header.size()) % 64, ' ');
  header += '\n';
  std::string out = "\x93NUMPY";
  out += static_cast<char>(version);
  out += '\0';
  const size_t n = header.size();
  for (size_t k = 0; k < (version == 1 ? 2u : 4u); ++k)
    out += static_cast<char>((n >> (8 * k)) & 0xff);
  out += header + bytes;
  const std::string path =
      (std::filesystem::temp_directory_path() / name).string();
  runtime::writeFileAtomic(path, out);
  return path;
}

template <typename T> std::string bytesOf(std::vector<T> v) {
  return std::string(reinterpret_cast<const char *>(v.data()),
                     v.size() * sizeof(T));
}
} // namespace

TEST_CASE("readNpy reads float32 and float64 arrays and names the file and "
          "the fault in bad ones",
          "[runtime]") {
  // float32: mapped, not copied; the values survive the file's removal.
  std::string f4 = npyFile("unroll-f4.npy", "<f4", "(2, 3)",
                           bytesOf<float>({1, 2, 3, 4, 5, 6.5f}));
  torch::Tensor a = runtime::readNpy(f4);
  std::filesystem::remove(f4);
  CHECK(a.sizes() == torch::IntArrayRef({2, 3}));
  CHECK(a.dtype() == torch::kFloat32);
  CHECK(a[1][2].item<float>() == 6.5f);
  // float64 in format 2, converted; a 1-tuple shape.
  torch::Tensor b = runtime::readNpy(npyFile(
      "unroll-f8.npy", "<f8", "(3,)", bytesOf<double>({0.25, -1, 1e-3}), 2));
  CHECK(b.sizes() == torch::IntArrayRef({3}));
  CHECK(b.dtype() == torch::kFloat32);
  CHECK(b[0].item<float>() == 0.25f);
  // Faults.
  const float inf = std::numeric_limits<float>::infinity();
  std::string p = npyFile("unroll-inf.npy", "<f4", "(2, 2)",
                          bytesOf<float>({0, 1, 2, -inf}));
  CHECK_THROWS_WITH(runtime::readNpy(p),
                    "'" + p + "' holds -Inf at index (1, 1)");
  p = npyFile("unroll-be.npy", ">f4", "(1,)", bytesOf<float>({1}));
  CHECK_THROWS_WITH(runtime::readNpy(p),
                    "'" + p +
                        "' holds dtype '>f4'; the npy source reads "
                        "little-endian float32 ('<f4') or float64 ('<f8')");
  p = npyFile("unroll-short.npy", "<f4", "(4,)", bytesOf<float>({1, 2}));
  CHECK_THROWS_WITH(runtime::readNpy(p),
                    "'" + p +
                        "' is not a valid .npy file (truncated: its shape "
                        "needs 16 bytes of data, the file holds 8)");
  p = npyFile("unroll-f.npy", "<f4", "(1, 1)", bytesOf<float>({1}), 1, "True");
  CHECK_THROWS_WITH(runtime::readNpy(p),
                    Catch::Contains("is in Fortran order"));
  runtime::writeFileAtomic(p, "not an array");
  CHECK_THROWS_WITH(runtime::readNpy(p),
                    "'" + p +
                        "' is not a valid .npy file (no .npy magic "
                        "string)");
  CHECK_THROWS_WITH(runtime::readNpy("/nonexistent-unroll.npy"),
                    "cannot open '/nonexistent-unroll.npy': No such file or "
                    "directory");
}

TEST_CASE("fashion_mnist's random mask hides half of the pixels, the same "
          "for every image and run of a seed",
          "[runtime]") {
  // Tiny IDX files (uncompressed: zlib reads them as they are).
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / "unroll-tiny-fashion";
  std::filesystem::create_directories(dir);
  auto idx = [&](const char *name, uint32_t n) {
    std::string bytes = {0, 0, 8, 3};
    for (uint32_t v : {n, 28u, 28u})
      for (int k = 3; k >= 0; --k)
        bytes += static_cast<char>((v >> (8 * k)) & 0xff);
    for (uint32_t i = 0; i < n * 28 * 28; ++i)
      bytes += static_cast<char>((i * 37 + 11) % 251);
    runtime::writeFileAtomic((dir / name).string(), bytes);
  };
  idx("train-images-idx3-ubyte.gz", 20);
  idx("t10k-images-idx3-ubyte.gz", 3);
  const std::string spec = R"(
import losses
problem inpaint(h: int) {
  data  x : tensor[1, h, h]
  data  c : tensor[1, h, h]
  given M : tensor[1, h, h]
  var   y : tensor[1, h, h]
  minimize sqnorm(M * y - x)
}
unrolled u(layers = 1) solves inpaint(h = 28) {
  init  y = x
  param t : scalar shared = 0.5
  step  { y = y - t * (M * y - x) }
}
train u {
  data  fashion_mnist(n = 8, mask = random, path = ")" +
                           dir.string() + R"(")
  loss  mse(y[L], c)
}
)";
  auto algs = test::planFor(spec);
  runtime::Dataset d = runtime::loadDataset(algs[0], 4);
  const torch::Tensor M = d.train.inputs.at("M");
  CHECK(M.sizes() == torch::IntArrayRef({1, 28, 28}));
  CHECK(((M == 0) | (M == 1)).all().item<bool>());
  CHECK(M.mean().item<double>() == Approx(0.5).margin(0.08));
  // Not the centre square: missing pixels on the border too.
  CHECK((M.narrow(1, 0, 7) == 0).any().item<bool>());
  CHECK(torch::equal(d.train.inputs.at("x"), d.train.inputs.at("c") * M));
  CHECK(torch::equal(d.test.inputs.at("M"), M));
  CHECK(torch::equal(runtime::loadDataset(algs[0], 4).train.inputs.at("M"), M));
  CHECK(
      !torch::equal(runtime::loadDataset(algs[0], 5).train.inputs.at("M"), M));
}

TEST_CASE("synthetic_piecewise makes piecewise-constant signals with the "
          "jumps asked for, plus noise",
          "[runtime]") {
  std::string spec =
      test::readFile(test::sourcePath("examples/admm_tv.unroll"));
  auto set = [&](const std::string &from, const std::string &to) {
    size_t at = spec.find(from);
    REQUIRE(at != std::string::npos);
    spec.replace(at, from.size(), to);
  };
  // A second data input, the clean signal, that the loss reads.
  set("data  x : vec[d]", "data  x : vec[d]\n  data  c : vec[d]");
  set("loss    mse(y[L], ystar)", "loss    mse(y[L], c)");
  set("n = 2000, jumps = 3, noise = 0.1", "n = 50, jumps = 3, noise = 0.1");
  auto algs = test::planFor(spec);
  runtime::Dataset d = runtime::loadDataset(algs[0], 5);
  CHECK(d.train.size == 50);
  CHECK(d.validation.size == 5);
  CHECK(d.test.size == 5);
  const torch::Tensor x = d.train.inputs.at("x"), c = d.train.inputs.at("c");
  CHECK(x.sizes() == torch::IntArrayRef({50, 32}));
  // The clean signal has exactly 3 jumps (levels are continuous draws:
  // no two equal) and levels in [-1, 1]; the noise is N(0, 0.1^2).
  torch::Tensor jumps = (c.narrow(1, 1, 31) != c.narrow(1, 0, 31)).sum(1);
  CHECK(torch::equal(jumps, torch::full({50}, 3, torch::kLong)));
  CHECK(c.abs().max().item<double>() <= 1);
  CHECK((x - c).std().item<double>() == Approx(0.1).epsilon(0.1));
  CHECK(torch::equal(runtime::loadDataset(algs[0], 5).train.inputs.at("x"), x));
  // Given inputs are not its to supply.
  set("data  c : vec[d]", "given c : vec[d]");
  CHECK_THROWS_WITH(runtime::loadDataset(test::planFor(spec)[0], 5),
                    Catch::Contains("synthetic_piecewise supplies a noisy "
                                    "signal x: vec[d]"));
}

TEST_CASE("the runtime rejects bad plans and inputs clearly", "[runtime]") {
  CHECK_THROWS_WITH(runtime::parsePlan("{"),
                    Catch::Contains("plan is not valid JSON"));
  CHECK_THROWS_WITH(
      runtime::parsePlan(R"({"format": "unroll-plan", "version": 99})"),
      Catch::Contains("plan version 99 is not supported"));
  auto algs = test::planFor(kSpec);
  runtime::Executor ex(algs[0]);
  CHECK_THROWS_WITH(ex.bindInputs({{"x", torch::zeros({2, 4})}}),
                    Catch::Contains("missing input 'D'"));
  CHECK_THROWS_WITH(
      ex.bindInputs({{"x", torch::zeros({2, 5})}, {"D", torch::zeros({4, 6})}}),
      Catch::Contains("input 'x' has shape [2, 5], expected [4] per instance"));
}

TEST_CASE("a layer that ignores the instance still yields one state each",
          "[runtime]") {
  const char *spec = R"(
problem q(n: int) {
  data  x : vec[n]
  given b : vec[n]
  var   y : vec[n]
  minimize sqnorm(y - x)
}
unrolled u(layers = 2) solves q(n = 3) {
  init y = x
  step { y = 2 * b }
}
)";
  auto algs = test::planFor(spec);
  runtime::Executor ex(algs[0]);
  torch::Tensor b = torch::tensor({1.0f, 2.0f, 3.0f});
  ex.bindInputs({{"x", torch::zeros({4, 3})}, {"b", b}});
  ex.initParams(0);
  auto fw = ex.forward(0);
  REQUIRE(fw.states[2][0].sizes() == torch::IntArrayRef({4, 3}));
  CHECK(torch::equal(fw.states[2][0][3], 2 * b));
}

TEST_CASE("the CPU generator's words in bulk are those it gives one by one",
          "[runtime]") {
  // From the first word, part-way into a state, at its end; short runs,
  // and runs across one and several state updates (every 624 words).
  for (int64_t skip : {0, 1, 623, 624, 1000})
    for (int64_t n : {0, 1, 2, 623, 624, 625, 1248, 5000}) {
      INFO("after " << skip << " words, " << n << " words");
      at::Generator a = at::make_generator<at::CPUGeneratorImpl>(5);
      at::Generator b = at::make_generator<at::CPUGeneratorImpl>(5);
      auto *ia = at::check_generator<at::CPUGeneratorImpl>(a);
      auto *ib = at::check_generator<at::CPUGeneratorImpl>(b);
      for (int64_t i = 0; i < skip; ++i) {
        ia->random();
        ib->random();
      }
      std::vector<uint32_t> bulk(static_cast<size_t>(n));
      runtime::generatorWords(a, bulk.data(), n);
      int64_t differ = 0;
      for (uint32_t w : bulk)
        differ += w != ib->random();
      CHECK(differ == 0);
      // And the generator goes on from after them.
      CHECK(ia->random() == ib->random());
      CHECK(torch::equal(torch::randn({40}, a), torch::randn({40}, b)));
    }
}

TEST_CASE("training noise is added only when asked, with its scale",
          "[runtime]") {
  const char *spec = R"(
problem q(n: int) {
  data x : vec[n]
  var  y : vec[n]
  minimize sqnorm(y - x)
}
unrolled u(layers = 2) solves q(n = 1000) {
  init y = x
  step { y = y }
}
train u {
  loss  sqnorm(y[L])
  noise y += normal(0, 3 / l)
}
)";
  nlohmann::json plan = test::fusedPlanFor(spec);
  auto algs = runtime::parsePlan(plan.dump());
  // Compiled and eager draw the same noise; compiled, the kernels' noise
  // kernel draws it (counted here).
  compiler::JitKernels jit(abi::readPlan(plan));
  static const unroll_kernels *inner = jit.abi();
  static int draws = 0;
  unroll_kernels counted = *jit.abi();
  counted.noise = [](void *ctx, const unroll_tensor *w, const unroll_tensor *o,
                     const unroll_noise_draw *h, char *err, int32_t size) {
    ++draws;
    return inner->noise(ctx, w, o, h, err, size);
  };
  const unroll_kernels *kernels = GENERATE(false, true) ? &counted : nullptr;
  INFO((kernels ? "compiled" : "eager"));
  draws = 0;
  runtime::Executor ex(algs[0]);
  ex.setKernels(kernels);
  ex.bindInputs({{"x", torch::zeros({4, 1000})}});
  ex.initParams(0);
  auto clean = ex.forward(1);
  CHECK(torch::equal(clean.states[2][0], torch::zeros({4, 1000})));
  CHECK(draws == 0);
  auto noisy = ex.forward(1, /*noise=*/true);
  CHECK(draws == (kernels ? 2 : 0));
  // Layer 1 adds N(0, 3^2); layer 2 adds N(0, 1.5^2) on top.
  double s1 = noisy.states[1][0].std().item<double>();
  double s2 = (noisy.states[2][0] - noisy.states[1][0]).std().item<double>();
  CHECK(s1 == Approx(3.0).epsilon(0.05));
  CHECK(s2 == Approx(1.5).epsilon(0.05));
  // Every layer and instance draws its own noise; a seed replays it.
  torch::Tensor n2 = noisy.states[2][0] - noisy.states[1][0];
  CHECK(!torch::allclose(noisy.states[1][0] / 3, n2 / 1.5, 0.1, 0.1));
  CHECK(!torch::allclose(n2[0], n2[1], 0.1, 0.1));
  CHECK(torch::equal(ex.forward(1, true).states[2][0], noisy.states[2][0]));
  CHECK(!torch::equal(ex.forward(2, true).states[2][0], noisy.states[2][0]));
  // Both backends draw the same noise from a seed.
  runtime::Executor eager(algs[0]);
  eager.bindInputs({{"x", torch::zeros({4, 1000})}});
  eager.initParams(0);
  CHECK(torch::allclose(eager.forward(1, true).states[2][0], noisy.states[2][0],
                        1e-5, 1e-5));
}

TEST_CASE("a norm's gradient at zero is zero, not NaN", "[runtime]") {
  // The distance constraint and losses take norms of differences that are
  // exactly zero where a layer reaches its target.
  const char *spec = R"(
problem q(n: int) {
  data x : vec[n]
  var  y : vec[n]
  minimize sqnorm(y - x)
}
unrolled u(layers = 1) solves q(n = 3) {
  init  y = x
  param a : vec[n] per layer = 0
  step { y = y + a }
}
train u {
  loss  norm(y[L] - x)
}
)";
  auto algs = test::planFor(spec);
  runtime::Executor ex(algs[0]);
  ex.bindInputs({{"x", torch::ones({2, 3})}});
  ex.initParams(0);
  auto fw = ex.forward(1);
  torch::Tensor loss =
      ex.body(*algs[0].loss, {runtime::RValue{fw.states[1][0], true}})[0]
          .t.sum();
  CHECK(loss.item<double>() == 0.0);
  torch::Tensor a = ex.params().at(algs[0].params[0].id);
  loss.backward();
  REQUIRE(a.grad().defined());
  CHECK(torch::equal(a.grad(), torch::zeros_like(a)));
}

TEST_CASE("noise parameters are not differentiated", "[runtime]") {
  // y_1 = W x plus noise of scale ||W x||: with the scale a constant, the
  // gradient of sum(y_1) in W is the sum over instances of 1 x^T whatever
  // the draw; differentiated, it would gain (sum u) (W x)^T x / ||W x||.
  const char *spec = R"(
problem q(n: int, m: int) {
  data x : vec[n]
  var  y : vec[m]
  minimize 0.5 * sqnorm(y)
}
unrolled u(layers = 1) solves q(n = 3, m = 2) {
  init  y = zeros()
  param W : mat[m, n] shared = normal(0, 1)
  step { y = W @ x }
}
train u {
  loss  sum(y[L])
  noise y += normal(0, norm(y))
}
)";
  auto algs = test::planFor(spec);
  // The scale is wrapped in a stop_gradient.
  REQUIRE(algs[0].noise.size() == 1);
  const abi::Body &noise = algs[0].noise[0].body;
  bool stopped = false;
  for (const abi::Op &op : noise.ops)
    stopped |= op.code == abi::OpCode::StopGradient && op.id == noise.yield[1];
  CHECK(stopped);
  torch::manual_seed(3);
  torch::Tensor x = torch::randn({5, 3});
  runtime::Executor ex(algs[0]);
  ex.bindInputs({{"x", x}});
  ex.initParams(0);
  torch::Tensor W = ex.params().at(algs[0].params[0].id);
  for (uint64_t seed : {1, 2}) {
    if (W.grad().defined())
      W.grad().zero_();
    auto fw = ex.forward(seed, /*noise=*/true);
    // The noise did move the state.
    CHECK(!torch::allclose(fw.states[1][0], torch::matmul(x, W.detach().t())));
    torch::Tensor loss =
        ex.body(*algs[0].loss, {runtime::RValue{fw.states[1][0], true}})[0]
            .t.sum();
    loss.backward();
    torch::Tensor want = torch::ones({2, 1}) * x.sum(0).unsqueeze(0);
    CHECK(torch::allclose(W.grad(), want, 1e-5, 1e-6));
  }
}

TEST_CASE("an algorithm's own states are carried from layer to layer",
          "[runtime]") {
  // FISTA written out: the extrapolated point v and the step sequence t
  // are the algorithm's, not the problem's. With FISTA's own step the
  // layers are FISTA's iterations, computed here by hand.
  const char *spec = R"(
import prox
problem lasso(p: int, d: int, alpha: float) {
  data  x : vec[p]
  given D : mat[p, d]
  var   y : vec[d]
  minimize 0.5 * sqnorm(D @ y - x) + alpha * norm1(y)
}
unrolled fista(layers = 6) solves lasso(p = 5, d = 7, alpha = 0.1) {
  init  y ~ normal(0, 1)
  state v : vec[d] = y
  state t : scalar = 1
  let   lip = lipschitz(D)
  param eta : scalar shared = 1 / lip
  step {
    yn = soft_threshold(v - eta * (D' @ (D @ v - x)), alpha * eta)
    tn = (1 + sqrt(1 + 4 * t * t)) / 2
    v  = yn + (t - 1) / tn * (yn - y)
    y  = yn
    t  = tn
  }
}
train fista {
  target ystar = solve(lasso, fista, tol = 1e-7)
  loss   sqnorm(y[L] - ystar) + 0 * sum(v[L])
}
)";
  auto algs = test::planFor(spec);
  const runtime::Algorithm &alg = algs[0];
  REQUIRE(alg.states.size() == 3);
  CHECK(!alg.states[0].algorithm);
  CHECK(alg.states[1].algorithm);
  CHECK(alg.states[2].algorithm);
  CHECK(alg.variableCount() == 1);
  // The objective takes the problem's variable only; the loss every state.
  REQUIRE(alg.objective);
  CHECK(alg.objective->args.size() == 1);
  REQUIRE(alg.loss);
  CHECK(alg.loss->args.size() == 3);

  torch::manual_seed(5);
  const int64_t B = 4;
  torch::Tensor x = torch::randn({B, 5}), D = torch::randn({5, 7});
  runtime::Executor ex(alg);
  ex.bindInputs({{"x", x}, {"D", D}});
  ex.initParams(0);
  runtime::ForwardResult fw = ex.forward(1);
  REQUIRE(fw.states.size() == 7);
  // v starts at y's draw, t at 1 for every instance.
  CHECK(torch::equal(fw.states[0][1], fw.states[0][0]));
  CHECK(fw.states[0][2].sizes() == torch::IntArrayRef{B});
  CHECK(torch::allclose(fw.states[0][2], torch::ones({B})));

  // The step as initialised: 1 / ||D||_2^2.
  REQUIRE(alg.params.size() == 1);
  const double eta = ex.params().at(alg.params[0].id).item<double>();
  CHECK(eta ==
        Approx(1 / std::pow(std::get<1>(torch::svd(D))[0].item<double>(), 2))
            .epsilon(1e-3));
  torch::Tensor y = fw.states[0][0].detach(), v = y;
  double t = 1;
  for (int64_t l = 1; l <= 6; ++l) {
    torch::Tensor z = v - eta * torch::matmul(torch::matmul(v, D.t()) - x, D);
    torch::Tensor yn = torch::sign(z) * torch::relu(z.abs() - 0.1 * eta);
    const double tn = (1 + std::sqrt(1 + 4 * t * t)) / 2;
    v = yn + (t - 1) / tn * (yn - y);
    y = yn;
    t = tn;
    INFO("layer " << l);
    CHECK(torch::allclose(fw.states[l][0], y, 1e-4, 1e-5));
    CHECK(torch::allclose(fw.states[l][1], v, 1e-4, 1e-5));
    CHECK(torch::allclose(fw.states[l][2], torch::full({B}, t), 1e-5, 1e-6));
  }

  // The classical solver's target is y's, and the loss reads the
  // algorithm's states at the last layer.
  torch::Tensor ystar = runtime::solveTargets(ex, 20000, 1e-7, true);
  CHECK(ystar.sizes() == torch::IntArrayRef{B, 7});
  ex.bind(alg.targets[0].id, runtime::RValue{ystar, true});
  std::vector<runtime::RValue> finals;
  for (const torch::Tensor &s : fw.states.back())
    finals.push_back(runtime::RValue{s, true});
  torch::Tensor loss = ex.body(*alg.loss, finals)[0].t;
  CHECK(torch::allclose(loss, (fw.states[6][0] - ystar).pow(2).sum(1), 1e-4,
                        1e-5));
}
