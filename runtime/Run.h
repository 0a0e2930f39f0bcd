#pragma once
// Run directories: `unrollc train` and `unrollc eval` as the runtime sees
// them. A run directory holds everything needed to continue, evaluate or
// export a training run without the spec or the compiler:
//   plan.json               the compiled program
//   config.json             the settings used (spec, --set, resolved options)
//   metrics.jsonl           one line per finished epoch
//   checkpoint.safetensors  parameters, multipliers, Adam state (last epoch)
//   best.safetensors        parameters of the best validation epoch
//   eval.json, report.html  written by eval (report also by train)

#include "abi/RuntimeAPI.h"

#include <torch/torch.h>

#include <iosfwd>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace unroll::runtime {

/// A user-facing failure of a run (bad run directory, diverged training,
/// mismatched checkpoint); the message says what to do.
class RunError : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

struct TrainRunOptions {
  std::string runDir;
  bool resume = false;
  /// Where the plan came from, recorded in config.json.
  std::string spec;
  std::vector<std::string> settings;
  /// Target cache directory; empty: $UNROLL_CACHE_DIR, else
  /// $XDG_CACHE_HOME/unroll, else ~/.cache/unroll.
  std::string cacheDir;
  /// Progress redrawn in place on a terminal; one line per epoch elsewhere.
  bool interactive = false;
  /// cpu, cuda, cuda:N or auto (CUDA when LibTorch has it and sees a GPU).
  std::string device = "auto";
  /// Generated kernels for the fused ops; null: eager LibTorch.
  const unroll_kernels *kernels = nullptr;
  /// The command users run, in hints ("unrollc", "unroll-run").
  std::string tool = "unrollc";
  /// The kernel library `kernels` came from, if any (recorded in
  /// config.json, where `unroll-run eval` finds it again); loaded here when
  /// `kernels` is null.
  std::string kernelLibrary;
};

/// Trains the plan's trained algorithm into `opts.runDir`. Returns the exit
/// status (0 done, 130 interrupted by SIGINT with the last epoch's
/// checkpoint kept); throws RunError and the runtime's other errors on bad
/// input, never leaving a partially written file behind.
int trainRun(const std::string &planText, const TrainRunOptions &opts,
             std::ostream &log);

struct EvalRunOptions {
  std::string runDir;
  /// Standard deviations p of OOD input shifts x + N(0, p^2).
  std::vector<double> ood;
  /// Standard deviations s of noise added to the state at every layer.
  std::vector<double> perturb;
  /// Another run (typically trained with --set descend=off) to show side
  /// by side in the report; evaluated with the same sweeps.
  std::string baseline;
  std::string cacheDir;
  std::string device = "auto";
  const unroll_kernels *kernels = nullptr;
  /// A kernel library to load when `kernels` is null (unrollc's cache).
  std::string kernelLibrary;
};

/// Evaluates the best checkpoint of a run layer by layer on its test split;
/// writes RUN_DIR/eval.json (with the baseline's evaluation inside: the
/// baseline's own directory is only read) and RUN_DIR/report.html. The
/// per-layer summary goes to `results`, progress to `log`.
int evalRun(const EvalRunOptions &opts, std::ostream &log,
            std::ostream &results);

/// The parameters of a run's best checkpoint (after checking it against
/// the run's plan.json), by checkpoint name, and the given values the run
/// recorded (given.safetensors) as "given.NAME". Throws RunError.
std::map<std::string, torch::Tensor> readRunParams(const std::string &runDir);

} // namespace unroll::runtime
