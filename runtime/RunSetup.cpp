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

PrimalSettings resolvePrimal(const json &primal) {
  using Kind = PrimalSettings::Kind;
  using Schedule = PrimalSettings::Schedule;
  PrimalSettings p;
  const std::string kind = primal.value("kind", "adam");
  if (kind == "adam")
    p.kind = Kind::Adam;
  else if (kind == "adamw")
    p.kind = Kind::AdamW;
  else if (kind == "sgd")
    p.kind = Kind::Sgd;
  else
    throw RunError("primal optimizer '" + kind +
                   "' is not supported; use adam, adamw or sgd");
  p.lr = primal.value("lr", 1e-3);
  p.beta1 = primal.value("beta1", 0.9);
  p.beta2 = primal.value("beta2", 0.999);
  // AdamW decays by default, as PyTorch's does.
  p.weightDecay = primal.value("weight_decay", kind == "adamw" ? 1e-2 : 0.0);
  p.momentum = primal.value("momentum", 0.0);
  p.nesterov = primal.value("nesterov", "false") == "true";
  if (!(p.lr > 0))
    throw RunError(kind + ": lr must be positive");
  if (!(p.beta1 >= 0 && p.beta1 < 1 && p.beta2 >= 0 && p.beta2 < 1))
    throw RunError(kind + " needs 0 <= beta1, beta2 < 1");
  if (!(p.weightDecay >= 0))
    throw RunError(kind + ": weight_decay must not be negative");
  if (!(p.momentum >= 0 && p.momentum < 1))
    throw RunError(kind + ": momentum must be in [0, 1)");
  if (p.nesterov && p.momentum == 0)
    throw RunError("sgd: nesterov needs a momentum above 0");
  const std::string schedule = primal.value("schedule", "constant");
  if (schedule == "constant")
    p.schedule = Schedule::Constant;
  else if (schedule == "step")
    p.schedule = Schedule::Step;
  else if (schedule == "cosine")
    p.schedule = Schedule::Cosine;
  else
    throw RunError("learning-rate schedule '" + schedule +
                   "' is not supported; use constant, step or cosine");
  p.every = primal.value("every", int64_t(1));
  p.gamma = primal.value("gamma", 0.1);
  p.minLr = primal.value("min_lr", 0.0);
  if (p.every < 1)
    throw RunError(kind + ": every must be at least 1");
  if (!(p.gamma > 0 && p.gamma <= 1))
    throw RunError(kind + ": gamma must be in (0, 1]");
  if (!(p.minLr >= 0 && p.minLr <= p.lr))
    throw RunError(kind + ": min_lr must be in [0, lr]");
  // A setting that does nothing for this optimizer or schedule is an
  // error rather than silently ignored.
  const bool adamLike = p.kind != Kind::Sgd;
  const std::vector<std::pair<const char *, bool>> applies = {
      {"beta1", adamLike},
      {"beta2", adamLike},
      {"momentum", !adamLike},
      {"nesterov", !adamLike},
      {"every", p.schedule == Schedule::Step},
      {"gamma", p.schedule == Schedule::Step},
      {"min_lr", p.schedule == Schedule::Cosine}};
  for (auto &[key, ok] : applies)
    if (!ok && primal.contains(key))
      throw RunError(kind + ": '" + key + "' does not apply" +
                     (std::string(key) == "every" || std::string(key) == "gamma"
                          ? " without schedule = step"
                      : std::string(key) == "min_lr"
                          ? " without schedule = cosine"
                          : " to " + kind));
  return p;
}

TrainOptions resolveOptions(const json &train) {
  TrainOptions o;
  o.epochs = train.value("epochs", int64_t(10));
  o.batch = train.value("batch", int64_t(64));
  o.seed = static_cast<uint64_t>(train.value("seed", int64_t(0)));
  json primal = train.value("primal", json{{"kind", "adam"}});
  json dual = train.value("dual", json{{"kind", "ascent"}});
  if (dual.value("kind", "ascent") != "ascent")
    throw RunError("dual update '" + dual["kind"].get<std::string>() +
                   "' is not supported; use ascent");
  o.primal = resolvePrimal(primal);
  o.dualLr = dual.value("lr", 1e-2);
  std::string every = dual.value("every", "epoch");
  if (every != "epoch" && every != "batch")
    throw RunError("dual.every must be 'epoch' or 'batch', got '" + every +
                   "'");
  o.dualEveryEpoch = every == "epoch";
  if (o.epochs < 1 || o.batch < 1)
    throw RunError("epochs and batch must be positive");
  if (!(o.dualLr >= 0))
    throw RunError("the dual learning rate must not be negative");
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
