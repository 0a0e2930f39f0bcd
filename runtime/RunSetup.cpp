#include "runtime/RunSetup.h"

#include "abi/Files.h"
#include "runtime/Run.h"
#include "runtime/Targets.h"

namespace unroll::runtime {

using nlohmann::json;
using torch::Tensor;
namespace fs = std::filesystem;

std::string readText(const fs::path &p) {
  std::optional<std::string> text = abi::readFile(p.string());
  if (!text)
    throw RunError("cannot read '" + p.string() + "'");
  return *text;
}

json readJson(const fs::path &p) {
  json j = json::parse(readText(p), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded())
    throw RunError("'" + p.string() + "' is not valid JSON");
  return j;
}

torch::Device pickDevice(const std::string &name, const unroll_kernels *kernels,
                         std::ostream &log) {
  bool cuda = torch::cuda::is_available();
  const bool cpuKernels = kernels && kernels->device == UNROLL_KERNELS_CPU;
  const bool cudaKernels = kernels && kernels->device == UNROLL_KERNELS_CUDA;
  if ((name == "auto" || name.empty()) && cpuKernels && cuda) {
    log << "device: cpu (the kernels were compiled for the host; for the "
           "GPU, ask unrollc for --device cuda, or compile the program with "
           "--target host-cuda)\n";
    return torch::kCPU;
  }
  if ((name == "auto" || name.empty()) && cudaKernels && !cuda)
    throw RunError("the kernels were compiled for CUDA (--target host-cuda) "
                   "but this LibTorch has no CUDA support or sees no GPU; "
                   "use --backend=eager or kernels compiled for the host");
  if (name == "auto" || name.empty()) {
    torch::Device d = cuda ? torch::Device(torch::kCUDA) : torch::kCPU;
    log << "device: " << d
        << (cuda ? "" : " (no CUDA in this LibTorch or no GPU)") << "\n";
    return d;
  }
  torch::Device d = torch::kCPU;
  try {
    d = torch::Device(name);
  } catch (const c10::Error &) {
    throw RunError("--device '" + name +
                   "': expected cpu, cuda, cuda:N or auto");
  }
  if (d.is_cuda() && cpuKernels)
    throw RunError("--device " + name +
                   ": the kernels were compiled for the host; use "
                   "--backend=eager, or kernels compiled with --target "
                   "host-cuda, for the GPU");
  if (d.is_cpu() && cudaKernels)
    throw RunError("--device " + name +
                   ": the kernels were compiled for CUDA (--target "
                   "host-cuda); use --device cuda, --backend=eager, or "
                   "kernels compiled for the host");
  if (d.is_cuda() && !cuda)
    throw RunError("--device " + name +
                   ": this LibTorch build has no CUDA support or sees no GPU; "
                   "use --device cpu");
  if (d.is_cuda() && d.has_index() &&
      d.index() >= static_cast<int>(torch::cuda::device_count()))
    throw RunError("--device " + name + ": only " +
                   std::to_string(torch::cuda::device_count()) +
                   " GPU(s) visible");
  if (!d.is_cpu() && !d.is_cuda())
    throw RunError("--device '" + name + "': only cpu and cuda are supported");
  log << "device: " << d << "\n";
  return d;
}

const Algorithm &trainedAlgorithm(const std::vector<Algorithm> &algs) {
  for (const Algorithm &a : algs)
    if (a.train)
      return a;
  throw RunError("the spec has no train block: nothing to train");
}

TrainOptions resolveOptions(const json &train) {
  TrainOptions o;
  o.epochs = train.value("epochs", int64_t(10));
  o.batch = train.value("batch", int64_t(64));
  o.seed = static_cast<uint64_t>(train.value("seed", int64_t(0)));
  json primal = train.value("primal", json{{"kind", "adam"}});
  json dual = train.value("dual", json{{"kind", "ascent"}});
  if (primal.value("kind", "adam") != "adam")
    throw RunError("primal optimizer '" + primal["kind"].get<std::string>() +
                   "' is not supported; use adam");
  if (dual.value("kind", "ascent") != "ascent")
    throw RunError("dual update '" + dual["kind"].get<std::string>() +
                   "' is not supported; use ascent");
  o.primalLr = primal.value("lr", 1e-3);
  o.beta1 = primal.value("beta1", 0.9);
  o.beta2 = primal.value("beta2", 0.999);
  o.weightDecay = primal.value("weight_decay", 0.0);
  if (!(o.beta1 >= 0 && o.beta1 < 1 && o.beta2 >= 0 && o.beta2 < 1 &&
        o.weightDecay >= 0))
    throw RunError("adam needs 0 <= beta1, beta2 < 1 and weight_decay >= 0");
  o.dualLr = dual.value("lr", 1e-2);
  std::string every = dual.value("every", "epoch");
  if (every != "epoch" && every != "batch")
    throw RunError("dual.every must be 'epoch' or 'batch', got '" + every +
                   "'");
  o.dualEveryEpoch = every == "epoch";
  if (o.epochs < 1 || o.batch < 1)
    throw RunError("epochs and batch must be positive");
  if (!(o.primalLr > 0) || !(o.dualLr >= 0))
    throw RunError("learning rates must be positive");
  return o;
}

const unroll_kernels *openKernels(const unroll_kernels *given,
                                  const std::string &path,
                                  const std::string &planText,
                                  std::unique_ptr<KernelLibrary> &holder) {
  if (given || path.empty())
    return given;
  holder = KernelLibrary::open(path, planText);
  return holder->kernels();
}

PrimalDual startModel(Executor &ex, const TrainOptions &to,
                      torch::Device device, const unroll_kernels *kernels,
                      const Split &train) {
  ex.setDevice(device);
  ex.setKernels(kernels);
  ex.bindInputs(chunk(ex.algorithm(), train, 0, std::min(kChunk, train.size)));
  ex.initParams(to.seed);
  return PrimalDual(ex, to);
}

void restore(PrimalDual &pd, const TensorFile &f) {
  try {
    pd.load(f);
  } catch (const FileError &e) {
    throw RunError(e.what());
  }
}

} // namespace unroll::runtime
