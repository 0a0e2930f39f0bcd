// Training step, compiled (fused ops as JIT-compiled Halide kernels) vs
// LibTorch eager, measured in the same run on the same data.
//
//   build/bench/unroll-bench-train-step [SPEC] [--set k=v ...] [--steps N]
//       [--rounds R] [--only eager|compiled] [--profile TRACE.json]
//       [--kernels jit|library]
//
// Without --only, the two backends train side by side and take turns of
// four steps (R rounds of N steps, default 5 x 20), and the medians of
// their step times are compared (the first step of each turn, with the
// caches just taken by the other backend, is not counted): this VM's speed
// drifts by 20% or more within seconds, which would otherwise read as a
// ratio. --kernels library times the kernels compiled ahead of time into a
// kernel library (unrollc compile; unroll-run) instead of the JIT's.
// --only runs one backend for N steps (for profilers); --profile
// writes LibTorch's profiler trace (chrome://tracing format) of its timed
// steps.
// SPEC defaults to examples/lista.unroll (LISTA-like specs train on
// synthetic sparse codes; others, such as examples/surf.unroll, on their
// own data source); --set edits it as `unrollc train`
// does (the paper's size: --set p=1024 --set d=1228 --set batch=512).
#include "BenchUtil.h"

#include "compiler/export/KernelLibrary.h"
#include "compiler/kernels/KernelJIT.h"
#include "runtime/BuildInfo.h"
#include "runtime/Data.h"
#include "runtime/KernelLibrary.h"
#include "runtime/Memory.h"
#include "runtime/Trainer.h"

#include <torch/csrc/autograd/profiler_legacy.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <unistd.h>
#include <vector>

using namespace unroll;

namespace {

/// Milliseconds per training step (forward, loss, constraints, backward,
/// Adam) over `steps` steps after one warm-up step.
double msPerStep(const runtime::Algorithm &alg, const runtime::Split &data,
                 const torch::Tensor &ystar, const runtime::TrainOptions &to,
                 const unroll_kernels *kernels, const std::string &trace) {
  runtime::Executor ex(alg);
  ex.setKernels(kernels);
  ex.bindInputs(data.inputs);
  ex.initParams(to.seed);
  runtime::PrimalDual pd(ex, to);
  int64_t step = 0;
  std::chrono::steady_clock::time_point start;
  std::unique_ptr<torch::autograd::profiler::RecordProfile> profile;
  pd.epoch(0, data, ystar, [&](const runtime::BatchProgress &) {
    if (step++ == 0) {
      if (!trace.empty())
        profile =
            std::make_unique<torch::autograd::profiler::RecordProfile>(trace);
      start = std::chrono::steady_clock::now(); // after the warm-up step
    }
    return true;
  });
  profile.reset();
  double ms = std::chrono::duration<double, std::milli>(
                  std::chrono::steady_clock::now() - start)
                  .count();
  return ms / static_cast<double>(step - 1);
}

} // namespace

int main(int argc, char **argv) {
  std::string spec = std::string(UNROLL_SOURCE_DIR) + "/examples/lista.unroll";
  std::vector<std::string> settings;
  int64_t steps = 20;
  int64_t rounds = 5;
  std::string only, trace, kernels = "jit";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--set" && i + 1 < argc)
      settings.push_back(argv[++i]);
    else if (a == "--steps" && i + 1 < argc)
      steps = std::stoll(argv[++i]);
    else if (a == "--rounds" && i + 1 < argc)
      rounds = std::max<int64_t>(1, std::stoll(argv[++i]));
    else if (a == "--only" && i + 1 < argc)
      only = argv[++i];
    else if (a == "--profile" && i + 1 < argc)
      trace = argv[++i];
    else if (a == "--kernels" && i + 1 < argc)
      kernels = argv[++i];
    else if (!a.empty() && a[0] != '-')
      spec = a;
    else {
      std::cerr
          << "usage: " << argv[0]
          << " [SPEC] [--set key=value ...] [--steps N] [--rounds R] [--only "
             "eager|compiled] [--profile TRACE.json] [--kernels "
             "jit|library]\n";
      return 1;
    }
  }
  if (kernels != "jit" && kernels != "library") {
    std::cerr << "--kernels takes jit or library, not '" << kernels << "'\n";
    return 1;
  }
  if (steps < 1) {
    std::cerr << "--steps takes a count of at least 1\n";
    return 1;
  }
  runtime::useAllCores();
  runtime::retainFreedMemory();
  nlohmann::json plan = bench::compilePlan(spec, settings);
  auto algs = runtime::parsePlan(plan.dump());
  const runtime::Algorithm &alg = algs[0];
  const nlohmann::json train = alg.train.value_or(nlohmann::json::object());
  runtime::TrainOptions to;
  to.batch = train.value("batch", int64_t(64));
  to.primal.lr = train["primal"].value("lr", 1e-3);
  to.dualLr = train["dual"].value("lr", 1e-2);
  to.dualEveryEpoch = train["dual"].value("every", "epoch") == "epoch";
  to.constrained = !alg.constraints.empty();

  // (steps + 1) batches of data: synthetic sparse codes for LISTA-like
  // specs (a data vector and a dictionary), the spec's own data source for
  // others (SURF); targets, if any, to a loose tolerance (their accuracy
  // does not change the cost of a step).
  const std::vector<abi::Input> &specInputs = alg.inputs;
  const bool listaLike =
      specInputs.size() == 2 && specInputs[1].role == abi::Role::Given &&
      specInputs[1].shape.size() == 2 && specInputs[0].shape.size() == 1;
  const int64_t needed = to.batch * (steps + 1);
  int64_t p = 0, d = 0;
  runtime::Split data;
  if (listaLike) {
    p = specInputs[1].shape[0];
    d = specInputs[1].shape[1];
    auto g = runtime::syntheticSparse(needed, p, d, 0.1, 0.01, 1);
    data.inputs = {{specInputs[0].name, g.x}, {specInputs[1].name, g.D}};
    data.size = g.x.size(0);
  } else {
    data = runtime::loadDataset(alg, 1).train;
    if (data.size < needed) {
      std::cerr << "the spec's data source has " << data.size
                << " training instances; " << steps + 1 << " batches of "
                << to.batch << " need " << needed << " (--set data.n=" << needed
                << ")\n";
      return 1;
    }
  }
  torch::Tensor ystar;
  if (!alg.targets.empty()) {
    runtime::Executor solver(alg);
    solver.bindInputs(data.inputs);
    solver.initParams(0);
    ystar = runtime::solveTargets(solver, 20, 1e-4);
  }

  // The compiled side's kernels: JIT-compiled in process (unrollc train),
  // or a kernel library compiled ahead of time (unrollc compile, then
  // unroll-run).
  compiler::JitKernels jit(abi::readPlan(plan));
  std::unique_ptr<runtime::KernelLibrary> library;
  const unroll_kernels *abi = jit.abi();
  if (kernels == "library") {
    auto dir = std::filesystem::temp_directory_path() /
               ("unroll-bench-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    std::ostringstream log;
    compiler::buildKernelLibrary(plan.dump(), (dir / "kernels.so").string(), {},
                                 log);
    library = runtime::KernelLibrary::open((dir / "kernels.so").string(),
                                           plan.dump());
    std::filesystem::remove_all(dir); // it stays mapped
    abi = library->kernels();
  }
  std::printf("compiled kernels: %s\n",
              kernels == "jit" ? "JIT (unrollc train)"
                               : "kernel library (unrollc compile)");
  std::printf(
      "spec %s, %s, batch %lld, %lld layers, %zu "
      "kernel(s), %d threads, %lld steps each\n",
      spec.c_str(),
      listaLike
          ? ("p = " + std::to_string(p) + ", d = " + std::to_string(d)).c_str()
          : "its own data",
      static_cast<long long>(to.batch), static_cast<long long>(alg.layerCount),
      jit.size(), torch::get_num_threads(), static_cast<long long>(steps));
  if (!trace.empty() && only.empty()) {
    std::cerr << "--profile needs --only eager|compiled\n";
    return 1;
  }
  if (!only.empty()) {
    if (only != "eager" && only != "compiled") {
      std::cerr << "--only takes eager or compiled, not '" << only << "'\n";
      return 1;
    }
    double ms =
        msPerStep(alg, data, ystar, to, only == "eager" ? nullptr : abi, trace);
    std::printf("%-8s %8.2f ms/step\n", only.c_str(), ms);
    return 0;
  }
  // Step by step in turns, each backend with its own executor and
  // optimizer; one batch per epoch call, so that a call is one step.
  std::vector<runtime::Split> batches;
  std::vector<torch::Tensor> targets;
  for (int64_t s = 0; s <= steps; ++s) {
    runtime::Split one;
    torch::Tensor idx = torch::arange(s * to.batch, (s + 1) * to.batch);
    for (const abi::Input &in : alg.inputs) {
      const torch::Tensor &t = data.inputs.at(in.name);
      one.inputs[in.name] =
          in.role == abi::Role::Data ? t.index_select(0, idx) : t;
    }
    one.size = to.batch;
    batches.push_back(one);
    targets.push_back(ystar.defined() ? ystar.index_select(0, idx)
                                      : torch::Tensor());
  }
  std::vector<double> times[2];
  for (int64_t r = 0; r < rounds; ++r) {
    std::unique_ptr<runtime::Executor> ex[2];
    std::unique_ptr<runtime::PrimalDual> pd[2];
    for (int b = 0; b < 2; ++b) {
      ex[b] = std::make_unique<runtime::Executor>(alg);
      ex[b]->setKernels(b ? abi : nullptr);
      ex[b]->bindInputs(data.inputs);
      ex[b]->initParams(to.seed);
      pd[b] = std::make_unique<runtime::PrimalDual>(*ex[b], to);
    }
    // Turns of kTurn steps; the first step of a turn is not timed, as the
    // other backend's turn has just taken the caches.
    constexpr int64_t kTurn = 4;
    for (int64_t first = 0; first <= steps; first += kTurn) {
      const int64_t last = std::min(first + kTurn - 1, steps);
      for (int b = 0; b < 2; ++b)
        for (int64_t s = first; s <= last; ++s) {
          auto start = std::chrono::steady_clock::now();
          pd[b]->epoch(s, batches[s], targets[s]);
          double ms = std::chrono::duration<double, std::milli>(
                          std::chrono::steady_clock::now() - start)
                          .count();
          if (s > first)
            times[b].push_back(ms);
        }
    }
  }
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  double e = median(times[0]), c = median(times[1]);
  std::printf("eager    %8.2f ms/step (median of %zu steps)\n"
              "compiled %8.2f ms/step\n"
              "speed-up (eager / compiled): %.2fx\n",
              e, times[0].size(), c, e / c);
  return 0;
}
