// Inference, measured in one run: the model exported by `unrollc export`
// (Halide AOT, loaded with dlopen) against the runtime's LibTorch eager
// forward, at several batch sizes, and against a plain OpenBLAS SGEMM
// roofline doing the same multiply-adds as one GEMM per layer.
//
//   build/bench/unroll-bench-inference [SPEC] [--set k=v ...]
//                                      [--batches 1,64,4096] [--ms 300]
//                                      [--split auto|none|layers]
//
// SPEC defaults to examples/lista.unroll (parameters at their initial
// values: timing does not depend on training); the paper's size is
// --set p=1024 --set d=1228. Other single-state models (examples/
// surf.unroll) are timed against eager alone, on random inputs.
#include "BenchUtil.h"

#include "compiler/export/Export.h"
#include "runtime/BuildInfo.h"
#include "runtime/Data.h"
#include "runtime/Executor.h"
#include "runtime/Memory.h"
#include "runtime/Trainer.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <dlfcn.h>
#include <filesystem>
#include <functional>
#include <sstream>
#include <unistd.h>

// OpenBLAS's CBLAS entry points (declared here: the Debian package that
// provides them ships no header).
extern "C" {
void cblas_sgemm(int order, int transA, int transB, int m, int n, int k,
                 float alpha, const float *a, int lda, const float *b, int ldb,
                 float beta, float *c, int ldc);
char *openblas_get_config(void);
int openblas_get_num_threads(void);
}

using namespace unroll;
namespace fs = std::filesystem;

namespace {

constexpr int kRowMajor = 101, kNoTrans = 111, kTrans = 112;

/// Milliseconds per call of `f`: the best of three rounds, each calling it
/// for at least `minMs` after a warm-up call.
double msPerCall(const std::function<void()> &f, double minMs) {
  f();
  double best = 1e300;
  for (int round = 0; round < 3; ++round) {
    int64_t calls = 0;
    auto start = std::chrono::steady_clock::now();
    double ms = 0;
    do {
      f();
      ++calls;
      ms = std::chrono::duration<double, std::milli>(
               std::chrono::steady_clock::now() - start)
               .count();
    } while (ms < minMs);
    best = std::min(best, ms / static_cast<double>(calls));
  }
  return best;
}

std::vector<int64_t> parseList(const std::string &s) {
  std::vector<int64_t> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');)
    out.push_back(std::stoll(item));
  return out;
}

/// Random values for every input of the spec: data [B, shape...], given
/// [shape...]. Timing does not depend on the values.
std::map<std::string, torch::Tensor> randomInputs(const runtime::Algorithm &alg,
                                                  int64_t B) {
  std::map<std::string, torch::Tensor> in;
  for (const abi::Input &i : alg.inputs) {
    std::vector<int64_t> shape = i.shape;
    if (i.role == abi::Role::Data)
      shape.insert(shape.begin(), B);
    in[i.name] = torch::randn(shape);
  }
  return in;
}

/// Calls an exported NAME_run with one state and `in.size()` inputs (its
/// arity is the model's, so the pointer is cast per count).
int callRun(void *fn, int64_t B,
            const std::vector<std::pair<const float *, int64_t>> &in,
            float *out, int64_t outLen) {
  using P = const float *;
  using I = int64_t;
  using F = float *;
  const auto &a = in;
  switch (in.size()) {
  case 1:
    return reinterpret_cast<int (*)(I, P, I, F, I, F, I)>(fn)(
        B, a[0].first, a[0].second, out, outLen, nullptr, 0);
  case 2:
    return reinterpret_cast<int (*)(I, P, I, P, I, F, I, F, I)>(fn)(
        B, a[0].first, a[0].second, a[1].first, a[1].second, out, outLen,
        nullptr, 0);
  case 3:
    return reinterpret_cast<int (*)(I, P, I, P, I, P, I, F, I, F, I)>(fn)(
        B, a[0].first, a[0].second, a[1].first, a[1].second, a[2].first,
        a[2].second, out, outLen, nullptr, 0);
  case 4:
    return reinterpret_cast<int (*)(I, P, I, P, I, P, I, P, I, F, I, F, I)>(fn)(
        B, a[0].first, a[0].second, a[1].first, a[1].second, a[2].first,
        a[2].second, a[3].first, a[3].second, out, outLen, nullptr, 0);
  case 5:
    return reinterpret_cast<int (*)(I, P, I, P, I, P, I, P, I, P, I, F, I, F,
                                    I)>(fn)(
        B, a[0].first, a[0].second, a[1].first, a[1].second, a[2].first,
        a[2].second, a[3].first, a[3].second, a[4].first, a[4].second, out,
        outLen, nullptr, 0);
  case 6:
    return reinterpret_cast<int (*)(I, P, I, P, I, P, I, P, I, P, I, P, I, F, I,
                                    F, I)>(fn)(
        B, a[0].first, a[0].second, a[1].first, a[1].second, a[2].first,
        a[2].second, a[3].first, a[3].second, a[4].first, a[4].second,
        a[5].first, a[5].second, out, outLen, nullptr, 0);
  default:
    std::cerr << "error: this benchmark calls models with 1 to 6 inputs\n";
    std::exit(1);
  }
}

/// Any single-state model (SURF, GLOW-Prox): the exported library against
/// the runtime's eager forward on random inputs; drawn inputs (initial
/// states, minibatch draws) are uniform in [0, 1). No roofline: its
/// multiply-adds are not one GEMM per layer.
int benchGeneric(const std::string &spec, const runtime::Algorithm &alg,
                 runtime::Executor &ex, const compiler::ExportSummary &m,
                 void *run, const std::vector<int64_t> &batches, double minMs) {
  if (m.states.size() != 1) {
    std::cerr << "error: this benchmark runs models with one state variable\n";
    return 1;
  }
  int64_t outSize = 1;
  for (int64_t s : m.states[0].shape)
    outSize *= s;
  std::printf("spec %s: %lld layers, %lld floats of state per instance; %d "
              "threads (LibTorch)\n",
              spec.c_str(), static_cast<long long>(alg.layerCount),
              static_cast<long long>(outSize), torch::get_num_threads());
  std::printf("%8s %12s %12s %10s\n", "batch", "eager ms", "exported ms",
              "exp/eager");
  torch::NoGradGuard noGrad;
  for (int64_t B : batches) {
    std::map<std::string, torch::Tensor> inputs = randomInputs(alg, B);
    ex.bindInputs(inputs);
    double eager = msPerCall([&] { ex.forward(0); }, minMs);
    std::vector<torch::Tensor> keep;
    std::vector<std::pair<const float *, int64_t>> args;
    for (const auto &in : m.inputs) {
      auto it = inputs.find(in.name);
      torch::Tensor t;
      if (it != inputs.end()) {
        t = it->second.contiguous();
      } else {
        std::vector<int64_t> shape = in.shape;
        if (in.batched)
          shape.insert(shape.begin(), B);
        t = torch::rand(shape);
      }
      keep.push_back(t);
      args.emplace_back(t.data_ptr<float>(), t.numel());
    }
    torch::Tensor out = torch::empty({B, outSize});
    int status = 0;
    double exported = msPerCall(
        [&] {
          status |= callRun(run, B, args, out.data_ptr<float>(), B * outSize);
        },
        minMs);
    if (status != 0) {
      std::cerr << "error: the exported model returned status " << status
                << "\n";
      return 1;
    }
    std::printf("%8lld %12.4f %12.4f %9.2fx\n", static_cast<long long>(B),
                eager, exported, eager / exported);
  }
  std::printf("exp/eager: speed-up of the exported library over eager\n");
  return 0;
}

} // namespace

int main(int argc, char **argv) {
  std::string spec = std::string(UNROLL_SOURCE_DIR) + "/examples/lista.unroll";
  std::vector<std::string> settings;
  std::vector<int64_t> batches{1, 64, 4096};
  double minMs = 300;
  std::string split = "auto";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--set" && i + 1 < argc)
      settings.push_back(argv[++i]);
    else if (a == "--batches" && i + 1 < argc)
      batches = parseList(argv[++i]);
    else if (a == "--ms" && i + 1 < argc)
      minMs = std::stod(argv[++i]);
    else if (a == "--split" && i + 1 < argc)
      split = argv[++i];
    else if (!a.empty() && a[0] != '-')
      spec = a;
    else {
      std::cerr << "usage: " << argv[0]
                << " [SPEC] [--set key=value ...] [--batches 1,64,4096] "
                   "[--ms MIN_MS_PER_ROUND] [--split auto|none|layers]\n";
      return 1;
    }
  }
  runtime::useAllCores();
  runtime::retainFreedMemory();
  nlohmann::json plan = bench::compilePlan(spec, settings);
  auto algs = runtime::parsePlan(plan.dump());
  const runtime::Algorithm &alg = algs[0];
  const int64_t L = alg.layerCount;
  const int64_t maxB = *std::max_element(batches.begin(), batches.end());
  // LISTA-like: data x and a dictionary D, which the roofline's GEMM
  // sizes come from; any other model is timed against eager alone.
  const std::vector<abi::Input> &specInputs = alg.inputs;
  const bool listaLike = specInputs.size() == 2 && specInputs[0].name == "x" &&
                         specInputs[1].name == "D" &&
                         specInputs[1].shape.size() == 2;
  const int64_t p = listaLike ? specInputs[1].shape[0] : 0;
  const int64_t d = listaLike ? specInputs[1].shape[1] : 0;

  // The runtime with its initial parameters; the export embeds the same.
  runtime::SparseCodingData g;
  runtime::Executor ex(alg);
  if (listaLike) {
    g = runtime::syntheticSparse(maxB, p, d, 0.1, 0.01, 1);
    ex.bindInputs({{"x", g.x}, {"D", g.D}});
  } else {
    ex.bindInputs(randomInputs(alg, maxB));
  }
  ex.initParams(0);
  std::map<std::string, Halide::Buffer<float>> params;
  for (const abi::Param &prm : alg.params) {
    torch::Tensor t = ex.params().at(prm.id).detach().contiguous();
    std::vector<int> extents;
    for (int64_t k = t.dim() - 1; k >= 0; --k)
      extents.push_back(static_cast<int>(t.size(k)));
    Halide::Buffer<float> b(extents);
    std::memcpy(b.data(), t.data_ptr<float>(), t.numel() * sizeof(float));
    params[runtime::PrimalDual::paramKey(prm)] = b;
  }
  fs::path dir = fs::temp_directory_path() /
                 ("unroll-bench-" + std::to_string(::getpid()));
  compiler::ExportOptions eo;
  eo.outDir = dir.string();
  eo.split = split;
  std::ostringstream log;
  compiler::ExportSummary m;
  try {
    m = compiler::exportModel(abi::readPlan(plan), params, eo, log);
  } catch (const compiler::ExportError &e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  void *lib = dlopen((dir / "lib" / ("lib" + m.name + ".so")).c_str(),
                     RTLD_NOW | RTLD_LOCAL);
  if (lib && !(listaLike && m.inputs.size() == 2 && m.inputs[0].batched &&
               m.inputs[1].batched)) {
    void *fn = dlsym(lib, (m.name + "_run").c_str());
    int rc = fn ? benchGeneric(spec, alg, ex, m, fn, batches, minMs) : 1;
    if (!fn)
      std::cerr << "error: cannot load the exported library: " << dlerror()
                << "\n";
    dlclose(lib);
    fs::remove_all(dir);
    return rc;
  }
  using RunFn = int (*)(int64_t, const float *, int64_t, const float *, int64_t,
                        float *, int64_t, float *, int64_t);
  auto run =
      lib ? reinterpret_cast<RunFn>(dlsym(lib, (m.name + "_run").c_str()))
          : nullptr;
  if (!run) {
    std::cerr << "error: cannot load the exported library: " << dlerror()
              << "\n";
    return 1;
  }

  std::printf("spec %s: p = %lld, d = %lld, %lld layers; %d threads "
              "(LibTorch), OpenBLAS %s with %d threads\n",
              spec.c_str(), static_cast<long long>(p),
              static_cast<long long>(d), static_cast<long long>(L),
              torch::get_num_threads(), openblas_get_config(),
              openblas_get_num_threads());
  std::printf("%8s %12s %12s %12s %10s %10s\n", "batch", "eager ms",
              "exported ms", "sgemm ms", "exp/eager", "roofline");
  torch::NoGradGuard noGrad;
  // The GEMM doing one layer's multiply-adds: [B, p + d] x [p + d, d].
  torch::Tensor A = torch::randn({d, p + d});
  for (int64_t B : batches) {
    torch::Tensor x = g.x.narrow(0, 0, B).contiguous();
    torch::Tensor y0 = torch::randn({B, d});
    torch::Tensor out = torch::empty({B, d});
    ex.bindInputs({{"x", x}, {"D", g.D}});
    double eager = msPerCall([&] { ex.forward(0); }, minMs);
    int status = 0;
    double exported = msPerCall(
        [&] {
          status |= run(B, x.data_ptr<float>(), B * p, y0.data_ptr<float>(),
                        B * d, out.data_ptr<float>(), B * d, nullptr, 0);
        },
        minMs);
    if (status != 0) {
      std::cerr << "error: the exported model returned status " << status
                << "\n";
      return 1;
    }
    torch::Tensor X = torch::randn({B, p + d}), C = torch::empty({B, d});
    double sgemm = msPerCall(
        [&] {
          for (int64_t l = 0; l < L; ++l)
            cblas_sgemm(kRowMajor, kNoTrans, kTrans, static_cast<int>(B),
                        static_cast<int>(d), static_cast<int>(p + d), 1.0f,
                        X.data_ptr<float>(), static_cast<int>(p + d),
                        A.data_ptr<float>(), static_cast<int>(p + d), 0.0f,
                        C.data_ptr<float>(), static_cast<int>(d));
        },
        minMs);
    std::printf("%8lld %12.4f %12.4f %12.4f %9.2fx %9.0f%%\n",
                static_cast<long long>(B), eager, exported, sgemm,
                eager / exported, 100.0 * sgemm / exported);
  }
  std::printf("exp/eager: speed-up of the exported library over eager; "
              "roofline: SGEMM time / exported time (same multiply-adds)\n");
  dlclose(lib);
  fs::remove_all(dir);
  return 0;
}
