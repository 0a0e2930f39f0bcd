// `train` of a run directory: the training loop with its checkpoints,
// metrics and report, resumable after an interruption.
#include "runtime/Run.h"

#include "abi/Cache.h"
#include "runtime/BuildInfo.h"
#include "runtime/Checkpoint.h"
#include "runtime/Evaluate.h"
#include "runtime/KernelLibrary.h"
#include "runtime/Memory.h"
#include "runtime/Report.h"
#include "runtime/RunSetup.h"
#include "runtime/RunText.h"
#include "runtime/Targets.h"
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

} // namespace

int trainRun(const std::string &planText, const TrainRunOptions &opts,
             std::ostream &log) {
  useAllCores();
  retainFreedMemory();
  std::vector<Algorithm> algs = parsePlan(planText);
  const Algorithm &alg = trainedAlgorithm(algs);
  TrainOptions to = resolveOptions(*alg.train);
  to.constrained = !alg.constraints.empty();
  const std::string hash = planHash(planText);
  // A kernel library named by path (unrollc's cache) is opened here.
  std::unique_ptr<KernelLibrary> library;
  const unroll_kernels *kernels =
      openKernels(opts.kernels, opts.kernelLibrary, planText, library);
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
  const std::string cache = abi::cacheDirectory(opts.cacheDir);
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
                   {"primal", to.primal.name()},
                   {"primal_lr", to.primal.lr},
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
    writeGivenValues(dir.string(), alg, data.train);
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
    json line = {{"epoch", rs.epoch},
                 {"train_loss", st->loss},
                 {"lr", st->lr},
                 {"val_loss", val.loss},
                 {"val_distance", means(val.distance)},
                 {"violation", viol},
                 {"lambda", lam},
                 {"seconds", secs},
                 {"best", best}};
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

} // namespace unroll::runtime
