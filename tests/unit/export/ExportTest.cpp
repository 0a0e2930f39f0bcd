// `unrollc export` end to end: a run trained by the runtime, exported to a
// shared library (Halide AOT, weights inside), loaded with dlopen and
// compared with the runtime's LibTorch forward at every layer; bad sizes
// and null pointers at the C interface give status codes.
#include "CompilerTestUtil.h"
#include "RuntimeTestUtil.h"

#include "compiler/export/Export.h"
#include "compiler/export/ParallelFor.h"
#include "compiler/plan/PlanLowering.h"
#include "runtime/Data.h"
#include "runtime/Run.h"
#include "runtime/Trainer.h"

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <dlfcn.h>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <unistd.h>

using namespace unroll;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

using RunFn = int (*)(int64_t, const float *, int64_t, float *, int64_t,
                      float *, int64_t);

const std::string kTrain = R"(
train lista {
  data    synthetic_sparse(n = 40, density = 0.3)
  target  ystar = solve(sparse_coding, fista, tol = 1e-5)
  loss    mse(y[L], ystar)
  descend distance(y, ystar) by eps = 0.05
  epochs 1  batch 20
}
)";

} // namespace

TEST_CASE("an exported LISTA computes what the runtime computes", "[export]") {
  // One pipeline for all layers, and one per layer (with the states
  // between them in the per-layer arrays or in scratch arrays).
  const std::string split = GENERATE(as<std::string>{}, "none", "layers");
  INFO("--split " << split);
  fs::path dir = fs::temp_directory_path() /
                 ("unroll-export-" + std::to_string(::getpid()) + split);
  fs::remove_all(dir);
  // Compile and train a tiny run.
  mlir::MLIRContext ctx;
  std::ostringstream err;
  auto module =
      test::compileSpec(test::tinyLista(6, 10, 3, kTrain), ctx, err, false);
  INFO(err.str());
  REQUIRE(module);
  REQUIRE(mlir::succeeded(compiler::runPipeline(*module, false, true)));
  auto plan = compiler::lowerToPlan(*module);
  REQUIRE(mlir::succeeded(plan));
  runtime::TrainRunOptions to;
  to.runDir = (dir / "run").string();
  to.cacheDir = (dir / "cache").string();
  to.device = "cpu";
  std::ostringstream log;
  REQUIRE(runtime::trainRun(plan->dump(), to, log) == 0);

  // Export it.
  std::map<std::string, torch::Tensor> weights =
      runtime::readRunParams(to.runDir);
  std::map<std::string, Halide::Buffer<float>> params;
  for (auto &[name, t] : weights)
    params[name] = test::toHalide(t);
  compiler::ExportOptions eo;
  eo.outDir = (dir / "out").string();
  eo.runDir = to.runDir;
  eo.split = split;
  compiler::exportModel(abi::readPlan(*plan), params, eo, log);
  INFO(log.str());
  CHECK((log.str().find("layer 3 of 3 compiled") != std::string::npos) ==
        (split == "layers"));
  REQUIRE(fs::exists(dir / "out" / "include" / "lista.h"));
  REQUIRE(fs::exists(dir / "out" / "lib" / "liblista.a"));
  REQUIRE(fs::exists(dir / "out" / "lib" / "cmake" / "lista" /
                     "listaConfig.cmake"));
  void *lib = dlopen((dir / "out" / "lib" / "liblista.so").c_str(),
                     RTLD_NOW | RTLD_LOCAL);
  REQUIRE(lib);
  auto run = reinterpret_cast<RunFn>(dlsym(lib, "lista_run"));
  REQUIRE(run);
  // Only the C API is exported, not the Halide runtime inside.
  CHECK(dlsym(lib, "halide_malloc") == nullptr);
  CHECK(dlsym(lib, "lista_halide_final") == nullptr);

  // The runtime's forward with the same weights.
  auto algs = runtime::parsePlan(plan->dump());
  runtime::Executor ex(algs[0]);
  const int64_t B = 5;
  auto g = runtime::syntheticSparse(B, 6, 10, 0.3, 0.01, 8);
  ex.bindInputs({{"x", g.x}, {"D", g.D}});
  ex.initParams(0);
  {
    torch::NoGradGuard noGrad;
    for (const abi::Param &p : algs[0].params)
      ex.params().at(p.id).copy_(weights.at(runtime::PrimalDual::paramKey(p)));
  }
  runtime::ForwardResult fw = ex.forward(0);

  torch::Tensor x = g.x.contiguous();
  torch::Tensor out = torch::empty({B, 10});
  torch::Tensor layers = torch::empty({B, 4, 10});
  REQUIRE(run(B, x.data_ptr<float>(), B * 6, out.data_ptr<float>(), B * 10,
              layers.data_ptr<float>(), B * 4 * 10) == 0);
  CHECK(torch::allclose(out, fw.states.back()[0], 1e-4, 1e-5));
  for (int64_t l = 0; l <= 3; ++l) {
    INFO("layer " << l);
    CHECK(torch::allclose(layers.select(1, l), fw.states[l][0], 1e-4, 1e-5));
  }
  // Without the per-layer output.
  torch::Tensor out2 = torch::empty({B, 10});
  CHECK(run(B, x.data_ptr<float>(), B * 6, out2.data_ptr<float>(), B * 10,
            nullptr, 0) == 0);
  CHECK(torch::equal(out, out2));
  // Bad input: status codes, nothing written.
  CHECK(run(B, x.data_ptr<float>(), B * 6 - 1, out.data_ptr<float>(), B * 10,
            nullptr, 0) == 2);
  CHECK(run(B, x.data_ptr<float>(), B * 6, out.data_ptr<float>(), B * 9,
            nullptr, 0) == 2);
  CHECK(run(B, nullptr, B * 6, out.data_ptr<float>(), B * 10, nullptr, 0) == 1);
  CHECK(run(0, x.data_ptr<float>(), 0, out.data_ptr<float>(), 0, nullptr, 0) ==
        1);
  auto status =
      reinterpret_cast<const char *(*)(int)>(dlsym(lib, "lista_status_string"));
  REQUIRE(status);
  CHECK(std::string(status(2)) == "an array length does not match the model");
  // A NaN or an Inf in an input is a status of its own, the outputs left
  // as they were (the thresholds would have turned NaN into zeros).
  for (float bad : {std::numeric_limits<float>::quiet_NaN(),
                    std::numeric_limits<float>::infinity(),
                    -std::numeric_limits<float>::infinity()}) {
    INFO("bad value " << bad);
    torch::Tensor xb = x.clone();
    xb[B - 1][5] = bad;
    torch::Tensor o = torch::full({B, 10}, 7.0f);
    torch::Tensor ol = torch::full({B, 4, 10}, 7.0f);
    CHECK(run(B, xb.data_ptr<float>(), B * 6, o.data_ptr<float>(), B * 10,
              nullptr, 0) == 5);
    CHECK(run(B, xb.data_ptr<float>(), B * 6, o.data_ptr<float>(), B * 10,
              ol.data_ptr<float>(), B * 4 * 10) == 5);
    CHECK(torch::all(o == 7.0f).item<bool>());
    CHECK(torch::all(ol == 7.0f).item<bool>());
  }
  CHECK(std::string(status(5)) == "an input holds NaN or Inf");

  // The blocks a call frees are kept for the next: in a fresh process
  // glibc maps a block of 128 KiB or more anew each time, and every page of
  // it faults on first touch. A C program linked with the static library
  // counts the page faults of three calls after a first.
  {
    std::ofstream c(dir / "faults.c");
    c << R"(#include "lista.h"
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
static long faults(void) {
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  return u.ru_minflt;
}
int main(void) {
  const long B = 20000; /* a state of 800 KB */
  float *x = malloc(B * 6 * sizeof(float)), *o = malloc(B * 10 * sizeof(float));
  for (long i = 0; i < B * 6; ++i)
    x[i] = (float)(i % 7) * 0.1f;
  if (lista_run(B, x, B * 6, o, B * 10, NULL, 0))
    return 1;
  long before = faults();
  for (int k = 0; k < 3; ++k)
    if (lista_run(B, x, B * 6, o, B * 10, NULL, 0))
      return 1;
  printf("%ld\n", faults() - before);
  float first = o[0];
  lista_release_memory();
  if (lista_run(B, x, B * 6, o, B * 10, NULL, 0) || o[0] != first)
    return 2;
  return 0;
}
)";
  }
  const fs::path exported = dir / "out";
  const std::string exe = (dir / "faults").string();
  REQUIRE_NOTHROW(compiler::runTool({"cc", "-O2", (dir / "faults.c").string(),
                                     "-I" + (exported / "include").string(),
                                     (exported / "lib" / "liblista.a").string(),
                                     "-o", exe, "-lpthread", "-ldl", "-lm"},
                                    dir / "faults.log"));
  FILE *pipe = popen(exe.c_str(), "r");
  REQUIRE(pipe);
  long faults = -1;
  REQUIRE(std::fscanf(pipe, "%ld", &faults) == 1);
  CHECK(pclose(pipe) == 0);
  // A state is 196 pages; with every block freed to glibc (a mutant),
  // three calls took 956 faults as one pipeline and 397 per layer.
  INFO("page faults in three calls: " << faults);
  CHECK(faults < 100);
  dlclose(lib);
  fs::remove_all(dir);
}

TEST_CASE("an export with two state variables returns both, at every layer",
          "[export]") {
  const std::string spec = R"(
problem sc(p: int, d: int, alpha: float) {
  data  x : vec[p]
  given D : mat[p, d]
  var   y : vec[d]
  var   z : vec[d]
  minimize 0.5 * sqnorm(x - D @ y) + alpha * norm1(z)
}
unrolled admm(layers = 3) solves sc(p = 6, d = 10, alpha = 0.1) {
  init  y = zeros()
  init  z ~ normal(0, 1)
  param W : mat[d, p] per layer = normal(0, 0.1)
  param V : mat[d, d] per layer = normal(0, 0.1)
  param t : vec[d] shared = 0.05
  step {
    y = W @ x + V @ z
    z = max(y - t, 0) - max(0 - y - t, 0)
  }
}
)";
  const std::string split = GENERATE(as<std::string>{}, "none", "layers");
  INFO("--split " << split);
  fs::path dir = fs::temp_directory_path() /
                 ("unroll-export2-" + std::to_string(::getpid()) + split);
  fs::remove_all(dir);
  json plan = test::fusedPlanFor(spec);
  auto algs = runtime::parsePlan(plan.dump());
  runtime::Executor ex(algs[0]);
  const int64_t B = 4;
  auto g = runtime::syntheticSparse(B, 6, 10, 0.3, 0.01, 8);
  ex.bindInputs({{"x", g.x}, {"D", g.D}});
  ex.initParams(3);
  std::map<std::string, Halide::Buffer<float>> params;
  for (const abi::Param &p : algs[0].params)
    params[runtime::PrimalDual::paramKey(p)] =
        test::toHalide(ex.params().at(p.id));
  compiler::ExportOptions eo;
  std::ostringstream log;
  eo.outDir = (dir / "out").string();
  eo.split = split;
  compiler::ExportSummary summary =
      compiler::exportModel(abi::readPlan(plan), params, eo, log);
  INFO(log.str());
  REQUIRE(summary.states.size() == 2);
  CHECK(summary.states[0].name == "y");
  CHECK(summary.states[0].out == "y_out");
  CHECK(summary.states[1].layers == "z_layers");
  REQUIRE(summary.inputs.size() == 2); // x and the initial z's draw
  CHECK(summary.inputs[1].identifier == "z0");
  void *lib = dlopen((dir / "out" / "lib" / "libadmm.so").c_str(),
                     RTLD_NOW | RTLD_LOCAL);
  REQUIRE(lib);
  using Run2 =
      int (*)(int64_t, const float *, int64_t, const float *, int64_t, float *,
              int64_t, float *, int64_t, float *, int64_t, float *, int64_t);
  auto run = reinterpret_cast<Run2>(dlsym(lib, "admm_run"));
  REQUIRE(run);

  runtime::ForwardResult fw = ex.forward(5);
  torch::Tensor x = g.x.contiguous(), z0 = fw.states[0][1].contiguous();
  torch::Tensor y = torch::empty({B, 10}), z = torch::empty({B, 10});
  torch::Tensor yl = torch::empty({B, 4, 10}), zl = torch::empty({B, 4, 10});
  REQUIRE(run(B, x.data_ptr<float>(), B * 6, z0.data_ptr<float>(), B * 10,
              y.data_ptr<float>(), B * 10, z.data_ptr<float>(), B * 10,
              yl.data_ptr<float>(), B * 40, zl.data_ptr<float>(), B * 40) == 0);
  CHECK(torch::allclose(y, fw.states.back()[0], 1e-4, 1e-5));
  CHECK(torch::allclose(z, fw.states.back()[1], 1e-4, 1e-5));
  for (int64_t l = 0; l <= 3; ++l) {
    INFO("layer " << l);
    CHECK(torch::allclose(yl.select(1, l), fw.states[l][0], 1e-4, 1e-5));
    CHECK(torch::allclose(zl.select(1, l), fw.states[l][1], 1e-4, 1e-5));
  }
  // The final states alone; per-layer arrays all or none. (The program
  // `unrollc build` makes is run in tests/lit/run/build_states.unroll.)
  torch::Tensor y2 = torch::empty({B, 10}), z2 = torch::empty({B, 10});
  CHECK(run(B, x.data_ptr<float>(), B * 6, z0.data_ptr<float>(), B * 10,
            y2.data_ptr<float>(), B * 10, z2.data_ptr<float>(), B * 10, nullptr,
            0, nullptr, 0) == 0);
  CHECK(torch::equal(y, y2));
  CHECK(torch::equal(z, z2));
  CHECK(run(B, x.data_ptr<float>(), B * 6, z0.data_ptr<float>(), B * 10,
            y2.data_ptr<float>(), B * 10, z2.data_ptr<float>(), B * 10,
            yl.data_ptr<float>(), B * 40, nullptr, 0) == 1);
  CHECK(run(B, x.data_ptr<float>(), B * 6, z0.data_ptr<float>(), B * 10,
            y2.data_ptr<float>(), B * 10, nullptr, B * 10, nullptr, 0, nullptr,
            0) == 1);
  CHECK(run(B, x.data_ptr<float>(), B * 6, z0.data_ptr<float>(), B * 10,
            y2.data_ptr<float>(), B * 10, z2.data_ptr<float>(), B * 9, nullptr,
            0, nullptr, 0) == 2);
  dlclose(lib);
  fs::remove_all(dir);
}

TEST_CASE("the per-layer compile pool runs each item once and reports the "
          "first failure after every thread has stopped",
          "[export]") {
  using compiler::parallelFor;
  SECTION("every item once, whatever the number of threads") {
    for (int64_t jobs : {0, 1, 2, 3, 50}) {
      std::vector<std::atomic<int>> runs(7);
      parallelFor(7, jobs, [&](int64_t i) { ++runs[i]; });
      for (size_t i = 0; i < runs.size(); ++i)
        CHECK(runs[i] == 1);
    }
    bool called = false;
    parallelFor(0, 2, [&](int64_t) { called = true; });
    CHECK_FALSE(called);
  }
  SECTION("one thread: the items after a failure never start") {
    std::vector<int64_t> ran;
    auto failing = [&] {
      parallelFor(6, 1, [&](int64_t i) {
        ran.push_back(i);
        if (i == 2)
          throw compiler::ExportError("layer 2 failed");
      });
    };
    CHECK_THROWS_MATCHES(failing(), compiler::ExportError,
                         Catch::Message("layer 2 failed"));
    CHECK(ran == std::vector<int64_t>{0, 1, 2});
  }
  SECTION("several threads: the first error is rethrown once the items "
          "already running have finished") {
    std::atomic<int> started{0}, finished{0};
    auto failing = [&] {
      parallelFor(100, 3, [&](int64_t i) {
        ++started;
        if (i == 1)
          throw std::runtime_error("item 1");
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        ++finished;
      });
    };
    CHECK_THROWS_WITH(failing(), "item 1");
    // Nothing runs behind the caller's back, and the failure cut the work
    // short (3 threads, 10 ms an item: far fewer than 100 start).
    CHECK(started == finished + 1);
    CHECK(started < 100);
  }
}
