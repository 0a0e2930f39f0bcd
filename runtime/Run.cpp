#include "runtime/Run.h"

#include "runtime/BuildInfo.h"
#include "runtime/Cache.h"
#include "runtime/KernelLibrary.h"
#include "runtime/Memory.h"
#include "runtime/Report.h"
#include "runtime/Trainer.h"

#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <optional>
#include <ostream>
#include <sstream>

namespace unroll::runtime {

using nlohmann::json;
using torch::Tensor;
namespace fs = std::filesystem;

namespace {

std::atomic<bool> gInterrupted{false};
extern "C" void onSigint(int) { gInterrupted = true; }

/// SIGINT stops training after the current batch instead of killing the
/// process, for as long as this object lives.
class SigintGuard {
public:
  SigintGuard() {
    gInterrupted = false;
    struct sigaction sa {};
    sa.sa_handler = onSigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_);
  }
  ~SigintGuard() { sigaction(SIGINT, &old_, nullptr); }

private:
  struct sigaction old_ {};
};

uint64_t hashTensor(uint64_t h, const Tensor &t0) {
  Tensor t = t0.to(torch::kCPU).to(torch::kFloat32).contiguous();
  for (int64_t s : t.sizes())
    h = fnv(h, &s, sizeof s);
  return fnv(h, t.data_ptr(), static_cast<size_t>(t.numel()) * 4);
}

std::string readText(const fs::path &p) {
  std::ifstream in(p, std::ios::binary);
  if (!in)
    throw RunError("cannot read '" + p.string() + "'");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

json readJson(const fs::path &p) {
  json j = json::parse(readText(p), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded())
    throw RunError("'" + p.string() + "' is not valid JSON");
  return j;
}

/// "cpu", "cuda" (or "cuda:N"), or "auto": CUDA when this LibTorch has it
/// and a GPU is visible. Generated kernels (null: none) run where they were
/// compiled for: the host's in host memory, CUDA kernels on a GPU.
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
    if (a.json.contains("train"))
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

/// Data inputs of instances [from, from + n) and the shared inputs.
std::map<std::string, Tensor> chunk(const Algorithm &alg, const Split &s,
                                    int64_t from, int64_t n) {
  std::map<std::string, Tensor> out;
  for (const json &in : alg.json["inputs"]) {
    const std::string name = in["name"];
    const Tensor &t = s.inputs.at(name);
    out[name] = in["role"] == "data" ? t.narrow(0, from, n) : t;
  }
  return out;
}

constexpr int64_t kChunk = 1024;

/// y* for every instance of a split, from the disk cache when the same
/// problem and data were solved before.
Tensor targetsFor(const Algorithm &alg, const Split &split,
                  const std::string &cacheDir, torch::Device device,
                  std::ostream &log, const std::string &what) {
  if (alg.json["targets"].empty())
    return Tensor();
  const json &target = alg.json["targets"][0];
  std::string solver = target.value("solver", "fista");
  if (solver != "fista" && solver != "ista")
    throw RunError("target solver '" + solver +
                   "' is not supported; use fista or ista");
  double tol = target.value("tol", 1e-6);
  int64_t iters = target.value("iters", int64_t(20000));
  uint64_t h = hashString(kFnvBasis, alg.json.value("solver", json()).dump());
  h = hashString(h, target.dump());
  for (auto &[name, t] : split.inputs) {
    h = hashString(h, name);
    h = hashTensor(h, t);
  }
  fs::path file =
      fs::path(cacheDir) / ("targets-" + hexHash(h) + ".safetensors");
  std::error_code ec;
  if (fs::exists(file, ec)) {
    try {
      TensorFile f = readSafetensors(file.string());
      auto it = f.tensors.find("ystar");
      if (it != f.tensors.end() && it->second.size(0) == split.size) {
        log << "targets (" << what << "): " << split.size << " cached in "
            << file.string() << "\n";
        return it->second;
      }
    } catch (const FileError &e) {
      log << "warning: ignoring a damaged target cache: " << e.what() << "\n";
    }
  }
  log << "targets (" << what << "): solving " << split.size
      << " instances with " << solver << " (tol " << tol << ")..."
      << std::flush;
  auto t0 = std::chrono::steady_clock::now();
  Executor ex(alg);
  ex.setDevice(device);
  std::vector<Tensor> parts;
  for (int64_t from = 0; from < split.size; from += kChunk) {
    int64_t n = std::min(kChunk, split.size - from);
    ex.bindInputs(chunk(alg, split, from, n));
    if (from == 0)
      ex.initParams(0);
    parts.push_back(solveTargets(ex, iters, tol, solver == "fista"));
  }
  Tensor y = torch::cat(parts);
  double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
          .count();
  log << " " << std::fixed << std::setprecision(1) << secs << " s\n"
      << std::defaultfloat;
  try {
    fs::create_directories(cacheDir);
    writeSafetensors(file.string(), {{{"ystar", y}}, {{"key", hexHash(h)}}});
  } catch (const std::exception &e) {
    log << "warning: cannot cache targets: " << e.what() << "\n";
  }
  return y;
}

/// Per-instance measurements of every layer on one split.
struct SplitEval {
  double loss = 0;
  std::vector<Tensor> distance;  // [L + 1] x [n]
  std::vector<Tensor> objective; // [L + 1] x [n] (full only)
  std::vector<Tensor> gradNorm;  // [L + 1] x [n] (full only)
  std::vector<Tensor> l1;        // [L + 1] x [n] (full only)
  /// constraints[c][l - 1]: C_l per instance; undefined where the
  /// constraint has no value (layer 1 of a step-result constraint).
  std::vector<std::vector<Tensor>> constraints;
};

SplitEval evaluateSplit(Executor &ex, const Split &split, const Tensor &ystar,
                        uint64_t seed, double perturb, bool full) {
  const Algorithm &alg = ex.algorithm();
  const json &a = alg.json;
  const int64_t L = alg.layerCount;
  const bool hasSolver = a.contains("solver");
  torch::NoGradGuard noGrad;
  std::vector<std::vector<Tensor>> dist(L + 1), obj(L + 1), grad(L + 1),
      l1(L + 1);
  const size_t nc = a["constraints"].size();
  std::vector<std::vector<std::vector<Tensor>>> cons(
      nc, std::vector<std::vector<Tensor>>(L));
  double lossSum = 0;
  for (int64_t from = 0; from < split.size; from += kChunk) {
    int64_t n = std::min(kChunk, split.size - from);
    ex.bindInputs(chunk(alg, split, from, n));
    Tensor target;
    if (ystar.defined()) {
      target = ystar.narrow(0, from, n).to(ex.device());
      ex.bind(a["targets"][0]["id"].get<int64_t>(), RValue{target, true});
    }
    ForwardResult fw =
        ex.forward(seed + static_cast<uint64_t>(from), false, perturb);
    std::vector<RValue> finals;
    for (const Tensor &s : fw.states.back())
      finals.push_back(RValue{s, true});
    if (a.contains("loss"))
      lossSum += ex.body(a["loss"], finals)[0].t.mean().item<double>() *
                 static_cast<double>(n);
    for (int64_t l = 0; l <= L; ++l) {
      const Tensor &y = fw.states[l][0];
      if (target.defined() && target.sizes() == y.sizes())
        dist[l].push_back((y - target).flatten(1).norm(2, {1}));
      if (!full)
        continue;
      std::vector<RValue> st;
      for (const Tensor &s : fw.states[l])
        st.push_back(RValue{s, true});
      if (a.contains("objective")) {
        RValue f = ex.body(a["objective"], st)[0];
        obj[l].push_back(f.batched ? f.t.reshape({n})
                                   : f.t.reshape({1}).expand({n}));
      }
      if (hasSolver)
        grad[l].push_back(subgradientNorm(ex, y));
      l1[l].push_back(y.flatten(1).abs().sum(1));
    }
    if (full)
      for (size_t c = 0; c < nc; ++c) {
        ConstraintValues cv = constraintValues(ex, fw, c);
        for (int64_t l = 0; l < cv.values.size(0); ++l)
          cons[c][cv.firstLayer + l - 1].push_back(cv.values[l]);
      }
  }
  auto cat = [](std::vector<std::vector<Tensor>> &v) {
    std::vector<Tensor> out;
    for (auto &parts : v)
      out.push_back(parts.empty() ? Tensor() : torch::cat(parts));
    return out;
  };
  SplitEval out;
  out.loss = lossSum / static_cast<double>(split.size);
  out.distance = cat(dist);
  out.objective = cat(obj);
  out.gradNorm = cat(grad);
  out.l1 = cat(l1);
  for (auto &c : cons)
    out.constraints.push_back(cat(c));
  return out;
}

/// Mean of each layer's values; null where a layer has none.
json means(const std::vector<Tensor> &v) {
  json out = json::array();
  for (const Tensor &t : v)
    out.push_back(t.defined() ? json(t.mean().item<double>()) : json());
  return out;
}

std::string fmt(double v, int prec = 3) {
  std::ostringstream os;
  os << std::setprecision(prec) << v;
  return os.str();
}

std::string duration(double s) {
  if (!std::isfinite(s) || s < 0)
    return "?";
  int64_t t = static_cast<int64_t>(s + 0.5);
  std::ostringstream os;
  if (t >= 3600)
    os << t / 3600 << "h" << std::setw(2) << std::setfill('0')
       << (t % 3600) / 60 << "m";
  else if (t >= 60)
    os << t / 60 << "m" << std::setw(2) << std::setfill('0') << t % 60 << "s";
  else
    os << t << "s";
  return os.str();
}

std::string row(const std::vector<double> &v) {
  std::string s;
  for (double x : v)
    s += " " + fmt(x, 2);
  return s;
}

/// A run's executor on its device and kernels, its parameters initialised
/// from the seed (the prelude sees the first training instances), and the
/// trainer over them.
PrimalDual startModel(Executor &ex, const TrainOptions &to,
                      torch::Device device, const unroll_kernels *kernels,
                      const Split &train) {
  ex.setDevice(device);
  ex.setKernels(kernels);
  ex.bindInputs(chunk(ex.algorithm(), train, 0, std::min(kChunk, train.size)));
  ex.initParams(to.seed);
  return PrimalDual(ex, to);
}

/// Parameters, multipliers and optimiser state from a checkpoint; a
/// mismatch with the program is the user's problem, not a crash.
void restore(PrimalDual &pd, const TensorFile &f) {
  try {
    pd.load(f);
  } catch (const FileError &e) {
    throw RunError(e.what());
  }
}

/// A non-negative decimal integer (no sign, no spaces), or nothing.
std::optional<int64_t> countOf(const std::string &s) {
  if (s.empty() || s.size() > 18 ||
      s.find_first_not_of("0123456789") != std::string::npos)
    return std::nullopt;
  return std::stoll(s);
}

struct RunState {
  int64_t epoch = 0; // epochs finished
  double bestVal = std::numeric_limits<double>::infinity();
  int64_t bestEpoch = 0;
};

void writeCheckpoint(const fs::path &file, const PrimalDual &pd,
                     const std::string &hash, const RunState &rs) {
  TensorFile f;
  pd.save(f);
  f.metadata = {{"format", "unroll-checkpoint"},
                {"version", "2"},
                {"plan_hash", hash},
                {"epoch", std::to_string(rs.epoch)},
                {"best_epoch", std::to_string(rs.bestEpoch)},
                {"best_val_loss", fmt(rs.bestVal, 17)}};
  writeSafetensors(file.string(), f);
}

TensorFile readCheckpoint(const fs::path &file, const std::string &hash) {
  TensorFile f;
  try {
    f = readSafetensors(file.string());
  } catch (const FileError &e) {
    throw RunError(std::string(e.what()) +
                   "; the checkpoint is damaged (delete it to start the run "
                   "over)");
  }
  if (f.metadata["format"] != "unroll-checkpoint" || !f.metadata.count("epoch"))
    throw RunError("'" + file.string() + "' is not an Unroll checkpoint");
  auto damaged = [&](const std::string &why) {
    return RunError("'" + file.string() + "' is damaged: " + why +
                    " (delete it to start the run over)");
  };
  // Version 1 checkpoints predate the checksums; from version 2 on every
  // tensor has one, so that a damaged tensor is never loaded.
  const std::string version = f.metadata["version"];
  if (version != "1" && version != "2")
    throw RunError("'" + file.string() +
                   "' is an Unroll checkpoint of version '" + version +
                   "'; this runtime reads versions 1 and 2");
  if (version != "1")
    for (auto &[name, t] : f.tensors)
      if (!f.metadata.count(checksumKey(name)))
        throw damaged("tensor '" + name + "' has no checksum");
  if (f.metadata["plan_hash"] != hash)
    throw RunError("'" + file.string() +
                   "' was written for a different program than the run's "
                   "plan.json (the spec or its settings changed)");
  const std::optional<int64_t> epoch = countOf(f.metadata["epoch"]),
                               bestEpoch = countOf(f.metadata["best_epoch"]);
  if (!epoch || *epoch < 1)
    throw damaged("its epoch '" + f.metadata["epoch"] +
                  "' is not a positive integer");
  if (!bestEpoch || *bestEpoch > *epoch)
    throw damaged("its best epoch '" + f.metadata["best_epoch"] +
                  "' is not an epoch from 0 to " + std::to_string(*epoch));
  const std::string &bestLoss = f.metadata["best_val_loss"];
  char *end = nullptr;
  const double loss = std::strtod(bestLoss.c_str(), &end);
  if (bestLoss.empty() || *end != '\0' || std::isnan(loss))
    throw damaged("its best validation loss '" + bestLoss +
                  "' is not a number");
  return f;
}

} // namespace

int trainRun(const std::string &planText, const TrainRunOptions &opts,
             std::ostream &log) {
  useAllCores();
  retainFreedMemory();
  std::vector<Algorithm> algs = parsePlan(planText);
  const Algorithm &alg = trainedAlgorithm(algs);
  TrainOptions to = resolveOptions(alg.json["train"]);
  to.constrained = !alg.json["constraints"].empty();
  const std::string hash = planHash(planText);
  // A kernel library named by path (unrollc's cache) is opened here.
  std::unique_ptr<KernelLibrary> library;
  const unroll_kernels *kernels = opts.kernels;
  if (!kernels && !opts.kernelLibrary.empty()) {
    library = KernelLibrary::open(opts.kernelLibrary, planText);
    kernels = library->kernels();
  }
  fs::path dir(opts.runDir);
  fs::path planFile = dir / "plan.json",
           ckptFile = dir / "checkpoint.safetensors",
           bestFile = dir / "best.safetensors",
           metricsFile = dir / "metrics.jsonl";
  std::error_code ec;
  // A directory whose run never finished an epoch has nothing to lose: it
  // may be started over without --resume.
  const bool hasCheckpoint = fs::exists(ckptFile, ec);
  if (opts.resume && !fs::exists(planFile, ec))
    throw RunError("nothing to resume: '" + dir.string() +
                   "' holds no run (no plan.json)");
  if (!opts.resume && hasCheckpoint)
    throw RunError("'" + dir.string() +
                   "' already holds a run; continue it with --resume, or "
                   "choose another directory with --out");
  if (opts.resume) {
    std::string old = planHash(readText(planFile));
    if (old != hash) {
      std::string hint;
      fs::path cfg = dir / "config.json";
      if (fs::exists(cfg, ec)) {
        json c = readJson(cfg);
        for (auto &s : c.value("settings", json::array()))
          hint += " --set " + s.get<std::string>();
      }
      throw RunError("cannot resume '" + dir.string() +
                     "': the spec or its settings changed since the run "
                     "started (only epochs and the optimiser settings may "
                     "change)" +
                     (hint.empty() ? "" : "; it was started with" + hint));
    }
  }
  // The metrics of a resumed run, read once: a run that records epochs but
  // lost its checkpoint is not started over silently (its metrics would
  // go), and the lines are kept below.
  const std::string recordedText = opts.resume && fs::exists(metricsFile, ec)
                                       ? readText(metricsFile)
                                       : std::string();
  int64_t recorded = 0;
  {
    std::istringstream in(recordedText);
    for (std::string line; std::getline(in, line);)
      recorded += !line.empty();
  }
  if (opts.resume && !hasCheckpoint && recorded > 0)
    throw RunError("cannot resume '" + dir.string() +
                   "': " + ckptFile.filename().string() +
                   " is missing although " + metricsFile.filename().string() +
                   " records " + std::to_string(recorded) +
                   " finished epoch(s); restore the checkpoint, or start over "
                   "in another directory (--out) or after deleting this one");
  if (opts.resume && !hasCheckpoint)
    log << "nothing to resume from (no epoch had finished): training from "
           "the start\n";
  RunState rs;
  std::optional<TensorFile> resumeFrom;
  if (opts.resume && hasCheckpoint) {
    resumeFrom = readCheckpoint(ckptFile, hash);
    rs.epoch = std::stoll(resumeFrom->metadata["epoch"]);
    rs.bestEpoch = std::stoll(resumeFrom->metadata["best_epoch"]);
    rs.bestVal = std::stod(resumeFrom->metadata["best_val_loss"]);
  }

  // Data and targets before any file is written: bad data changes nothing.
  const torch::Device device = pickDevice(opts.device, kernels, log);
  const std::string cache = cacheDirectory(opts.cacheDir);
  log << "run " << dir.string() << ": " << alg.name << ", " << alg.layerCount
      << " layers, "
      << (to.constrained ? "constrained" : "unconstrained (no descend)") << ", "
      << (kernels ? "compiled kernels" : "eager") << "\n";
  Dataset data = loadDataset(alg, to.seed);
  log << "data: " << data.train.size << " train, " << data.validation.size
      << " validation, " << data.test.size << " test\n";
  // The best checkpoint is chosen on the validation split, and eval runs on
  // the test split: neither may be empty.
  for (const auto &[split, name] :
       {std::pair<const Split *, const char *>{&data.train, "training"},
        {&data.validation, "validation"},
        {&data.test, "test"}})
    if (split->size < 1)
      throw RunError(std::string("the data source gives no ") + name +
                     " instances (" + std::to_string(data.train.size) +
                     " training, " + std::to_string(data.validation.size) +
                     " validation, " + std::to_string(data.test.size) +
                     " test): training needs at least one of each (the best "
                     "checkpoint is chosen on validation, eval runs on test); "
                     "give it more data");
  Tensor yTrain = targetsFor(alg, data.train, cache, device, log, "train");
  Tensor yVal =
      targetsFor(alg, data.validation, cache, device, log, "validation");
  targetsFor(alg, data.test, cache, device, log, "test"); // cached for eval

  fs::create_directories(dir, ec);
  if (ec)
    throw RunError("cannot create '" + dir.string() + "': " + ec.message());
  json config = {{"spec", opts.spec},
                 {"settings", opts.settings},
                 {"plan_hash", hash},
                 {"algorithm", alg.name},
                 {"options",
                  {{"epochs", to.epochs},
                   {"batch", to.batch},
                   {"seed", to.seed},
                   {"primal_lr", to.primalLr},
                   {"dual_lr", to.dualLr},
                   {"dual_every", to.dualEveryEpoch ? "epoch" : "batch"},
                   {"constrained", to.constrained},
                   {"device", device.str()},
                   {"backend", kernels ? "compiled" : "eager"}}}};
  if (!opts.kernelLibrary.empty())
    config["kernel_library"] = fs::absolute(opts.kernelLibrary).string();
  // The program and its settings: a new run writes them now; a resumed one
  // (whose settings may have changed: epochs, optimiser) once its first
  // epoch has finished, so that a resume that fails leaves the run as it
  // was.
  bool runFilesWritten = false;
  auto writeRunFiles = [&] {
    writeFileAtomic(planFile.string(), planText);
    writeFileAtomic((dir / "config.json").string(), config.dump(2) + "\n");
    runFilesWritten = true;
  };
  if (!resumeFrom)
    writeRunFiles();
  // Metrics of epochs after the checkpoint (a run killed between the two
  // writes) are dropped so that the file matches the parameters.
  std::string metrics;
  if (resumeFrom) {
    std::istringstream in(recordedText);
    for (std::string line; std::getline(in, line);) {
      json m = json::parse(line, nullptr, false);
      if (!m.is_discarded() && m.value("epoch", int64_t(0)) <= rs.epoch)
        metrics += line + "\n";
    }
  }
  if (!resumeFrom)
    writeFileAtomic(metricsFile.string(), metrics);

  Executor ex(alg);
  PrimalDual pd = startModel(ex, to, device, kernels, data.train);
  if (resumeFrom) {
    restore(pd, *resumeFrom);
    log << "resuming after epoch " << rs.epoch << "\n";
  }
  if (rs.epoch >= to.epochs) {
    log << "the run already has " << rs.epoch
        << " epochs; raise them with --set epochs=N to train more\n";
    writeReport(dir.string(), log);
    return 0;
  }

  SigintGuard sigint;
  const auto runStart = std::chrono::steady_clock::now();
  int64_t stepsDone = 0;
  const int64_t batchesPerEpoch = (data.train.size + to.batch - 1) / to.batch;
  const int64_t totalSteps = (to.epochs - rs.epoch) * batchesPerEpoch;
  for (int64_t e = rs.epoch; e < to.epochs; ++e) {
    auto epochStart = std::chrono::steady_clock::now();
    auto eta = [&]() {
      double el = std::chrono::duration<double>(
                      std::chrono::steady_clock::now() - runStart)
                      .count();
      return stepsDone ? el / static_cast<double>(stepsDone) *
                             static_cast<double>(totalSteps - stepsDone)
                       : -1.0;
    };
    std::optional<EpochStats> st;
    try {
      st = pd.epoch(e, data.train, yTrain, [&](const BatchProgress &p) {
        ++stepsDone;
        if (opts.interactive)
          log << "\repoch " << e + 1 << "/" << to.epochs << "  batch "
              << p.batch + 1 << "/" << p.batches << "  loss " << fmt(p.loss)
              << "  ETA " << duration(eta()) << "   " << std::flush;
        return !gInterrupted.load();
      });
    } catch (const DivergedError &err) {
      if (opts.interactive)
        log << "\n";
      throw RunError(std::string("training diverged: ") + err.what() + "; " +
                     (rs.epoch > 0
                          ? "the checkpoint of epoch " +
                                std::to_string(rs.epoch) + " is kept in " +
                                ckptFile.string()
                          : std::string("no epoch had finished, so there is no "
                                        "checkpoint")) +
                     "; lower the learning rate (--set primal.lr=...)" +
                     (rs.epoch > 0 ? " and continue with --resume" : ""));
    }
    if (!st) {
      log << (opts.interactive ? "\n" : "") << "interrupted in epoch " << e + 1
          << "; "
          << (rs.epoch > 0 ? "the checkpoint of epoch " +
                                 std::to_string(rs.epoch) + " is kept"
                           : std::string("no epoch had finished"))
          << "; continue with --resume\n";
      return 130;
    }
    SplitEval val = evaluateSplit(ex, data.validation, yVal, to.seed * 31 + 17,
                                  0, /*full=*/false);
    rs.epoch = e + 1;
    bool best = val.loss < rs.bestVal;
    if (best) {
      rs.bestVal = val.loss;
      rs.bestEpoch = rs.epoch;
    }
    double secs = std::chrono::duration<double>(
                      std::chrono::steady_clock::now() - epochStart)
                      .count();
    const int64_t L = alg.layerCount;
    json viol = json::array(), lam = json::array();
    for (size_t c = 0; c < pd.lambda().size(); ++c) {
      viol.push_back(std::vector<double>(st->violation.begin() + c * L,
                                         st->violation.begin() + (c + 1) * L));
      lam.push_back(pd.lambda()[c]);
    }
    json line = {{"epoch", rs.epoch},    {"train_loss", st->loss},
                 {"val_loss", val.loss}, {"val_distance", means(val.distance)},
                 {"violation", viol},    {"lambda", lam},
                 {"seconds", secs},      {"best", best}};
    if (!runFilesWritten)
      writeRunFiles();
    // Checkpoint first: metrics never describe parameters that were lost.
    writeCheckpoint(ckptFile, pd, hash, rs);
    if (best)
      writeCheckpoint(bestFile, pd, hash, rs);
    metrics += line.dump() + "\n";
    writeFileAtomic(metricsFile.string(), metrics);
    if (opts.interactive)
      log << "\r\033[K";
    log << "epoch " << rs.epoch << "/" << to.epochs << "  loss "
        << fmt(st->loss) << "  val " << fmt(val.loss) << (best ? " (best)" : "")
        << "  " << fmt(secs, 2) << " s  ETA " << duration(eta()) << "\n";
    if (!viol.empty()) {
      log << "  violation/layer" << row(viol[0].get<std::vector<double>>())
          << "\n  lambda/layer   " << row(pd.lambda()[0]) << "\n";
    }
  }
  writeReport(dir.string(), log);
  log << "done: best validation loss " << fmt(rs.bestVal) << " at epoch "
      << rs.bestEpoch << "; " << (dir / "report.html").string()
      << "\nevaluate with: " << opts.tool << " eval " << dir.string() << "\n";
  return 0;
}

std::map<std::string, Tensor> readRunParams(const std::string &runDir) {
  fs::path dir(runDir);
  std::error_code ec;
  if (!fs::exists(dir / "plan.json", ec))
    throw RunError("'" + dir.string() +
                   "' is not a run directory (no plan.json)");
  fs::path ckpt = dir / "best.safetensors";
  if (!fs::exists(ckpt, ec))
    throw RunError("'" + dir.string() +
                   "' has no finished epoch yet (no best.safetensors)");
  TensorFile f = readCheckpoint(ckpt, planHash(readText(dir / "plan.json")));
  std::map<std::string, Tensor> out;
  for (auto &[name, t] : f.tensors)
    if (name.rfind("param.", 0) == 0)
      out[name] = t.to(torch::kFloat32).contiguous();
  return out;
}

namespace {

/// Prints the per-layer summary of an evaluation (`what` names the model).
void printSummary(const json &ev, const std::string &what,
                  std::ostream &results) {
  // Without a target (SURF's classification), the objective says how the
  // layers progress.
  bool anyDistance = false;
  for (auto &d : ev["distance"])
    anyDistance |= !d.is_null();
  const char *key = anyDistance ? "distance" : "objective";
  for (const json &o : ev.value("ood", json::array()))
    results << what << "ood p=" << fmt(o["p"].get<double>())
            << ": final distance " << o["final"] << "\n";
  for (const json &o : ev.value("perturb", json::array()))
    results << what << "perturb s=" << fmt(o["s"].get<double>())
            << ": final distance " << o["final"] << "\n";
  results << what << "per-layer "
          << (anyDistance ? "distance to the optimum" : "objective") << ":";
  for (auto &d : ev.value(key, json::array()))
    results << " " << (d.is_null() ? "-" : fmt(d.get<double>()));
  results << std::endl;
}

/// The evaluation of `opts.runDir` as eval.json holds it; writes nothing.
json evaluateRun(const EvalRunOptions &opts, std::ostream &log) {
  useAllCores();
  retainFreedMemory();
  fs::path dir(opts.runDir);
  std::error_code ec;
  if (!fs::exists(dir / "plan.json", ec))
    throw RunError("'" + dir.string() +
                   "' is not a run directory (no plan.json); create one with "
                   "unrollc train SPEC --out " +
                   dir.string());
  std::string planText = readText(dir / "plan.json");
  std::vector<Algorithm> algs = parsePlan(planText);
  const Algorithm &alg = trainedAlgorithm(algs);
  TrainOptions to = resolveOptions(alg.json["train"]);
  const std::string hash = planHash(planText);
  std::unique_ptr<KernelLibrary> library;
  const unroll_kernels *kernels = opts.kernels;
  if (!kernels && !opts.kernelLibrary.empty()) {
    library = KernelLibrary::open(opts.kernelLibrary, planText);
    kernels = library->kernels();
  }
  fs::path ckpt = dir / "best.safetensors";
  if (!fs::exists(ckpt, ec))
    throw RunError("'" + dir.string() +
                   "' has no finished epoch yet (no best.safetensors)");
  TensorFile f = readCheckpoint(ckpt, hash);
  const torch::Device device = pickDevice(opts.device, kernels, log);
  const std::string cache = cacheDirectory(opts.cacheDir);
  Dataset data = loadDataset(alg, to.seed);
  if (data.test.size < 1)
    throw RunError("the data source gives no test instances to evaluate on");
  Tensor yTest = targetsFor(alg, data.test, cache, device, log, "test");
  Executor ex(alg);
  PrimalDual pd = startModel(ex, to, device, kernels, data.train);
  restore(pd, f);
  log << "evaluating " << dir.string() << " (epoch " << f.metadata["epoch"]
      << ") on " << data.test.size << " test instances\n";
  const uint64_t seed = to.seed * 131 + 7;
  SplitEval ev = evaluateSplit(ex, data.test, yTest, seed, 0, true);
  const int64_t L = alg.layerCount;
  json out = {{"run", dir.string()},
              {"epoch", std::stoll(f.metadata["epoch"])},
              {"test_size", data.test.size},
              {"loss", ev.loss},
              {"layers", L},
              {"distance", means(ev.distance)},
              {"objective", means(ev.objective)},
              {"gradient_norm", means(ev.gradNorm)},
              {"l1_norm", means(ev.l1)}};
  // Share of test instances satisfying each constraint at each layer.
  json sat = json::array();
  for (size_t c = 0; c < ev.constraints.size(); ++c) {
    json layers = json::array();
    for (const Tensor &t : ev.constraints[c])
      layers.push_back(
          t.defined() ? json((t <= 0).to(torch::kFloat64).mean().item<double>())
                      : json());
    sat.push_back({{"form", alg.json["constraints"][c]["form"]},
                   {"on", alg.json["constraints"][c]["on"]},
                   {"satisfied", layers}});
  }
  out["constraints"] = sat;
  // l1-norm histograms over a common range, so layers compare directly.
  double hi = 0;
  for (const Tensor &t : ev.l1)
    if (t.defined())
      hi = std::max(hi, t.max().item<double>());
  const int bins = 20;
  json hist = {{"min", 0.0}, {"max", hi}, {"counts", json::array()}};
  for (const Tensor &t : ev.l1) {
    if (!t.defined())
      continue;
    Tensor h = torch::histc(t.to(torch::kFloat64), bins, 0, hi > 0 ? hi : 1)
                   .to(torch::kInt64)
                   .contiguous();
    hist["counts"].push_back(std::vector<int64_t>(
        h.data_ptr<int64_t>(), h.data_ptr<int64_t>() + h.numel()));
  }
  out["l1_histogram"] = hist;
  // OOD: shift the data inputs, recompute y* for the shifted problem.
  json ood = json::array();
  for (double p : opts.ood) {
    if (!(p >= 0))
      throw RunError("--ood values must be non-negative");
    Split shifted = data.test;
    auto gen = at::make_generator<at::CPUGeneratorImpl>(
        seed + static_cast<uint64_t>(p * 1e6));
    for (const json &in : alg.json["inputs"])
      if (in["role"] == "data") {
        Tensor &x = shifted.inputs[in["name"].get<std::string>()];
        x = x + p * torch::randn(x.sizes(), gen);
      }
    Tensor ys = targetsFor(alg, shifted, cache, device, log, "ood " + fmt(p));
    SplitEval e = evaluateSplit(ex, shifted, ys, seed, 0, false);
    json d = means(e.distance);
    ood.push_back({{"p", p}, {"distance", d}, {"final", d.back()}});
  }
  out["ood"] = ood;
  json perturb = json::array();
  for (double s : opts.perturb) {
    if (!(s >= 0))
      throw RunError("--perturb values must be non-negative");
    SplitEval e = evaluateSplit(ex, data.test, yTest, seed, s, false);
    json d = means(e.distance);
    perturb.push_back({{"s", s}, {"distance", d}, {"final", d.back()}});
  }
  out["perturb"] = perturb;
  if (!opts.baseline.empty()) {
    fs::path base(opts.baseline);
    if (fs::equivalent(base, dir, ec))
      throw RunError("--baseline names the run itself");
    EvalRunOptions bo = opts;
    bo.runDir = opts.baseline;
    bo.baseline.clear();
    // The kernels were generated for this run's program, not the
    // baseline's: it runs eagerly.
    bo.kernels = nullptr;
    bo.kernelLibrary.clear();
    log << "baseline:\n";
    // The baseline is read, never written: its evaluation goes into this
    // run's eval.json.
    out["baseline"] = fs::absolute(base).string();
    out["baseline_eval"] = evaluateRun(bo, log);
  }
  return out;
}

} // namespace

int evalRun(const EvalRunOptions &opts, std::ostream &log,
            std::ostream &results) {
  fs::path dir(opts.runDir);
  const json out = evaluateRun(opts, log);
  writeFileAtomic((dir / "eval.json").string(), out.dump(1) + "\n");
  printSummary(out, "", results);
  if (out.contains("baseline_eval"))
    printSummary(out["baseline_eval"], "baseline ", results);
  writeReport(dir.string(), log);
  log << "wrote " << (dir / "eval.json").string() << " and "
      << (dir / "report.html").string() << "\n";
  return 0;
}

} // namespace unroll::runtime
