#pragma once
// What training and evaluation of a run directory share: reading its files,
// the device, the trained algorithm and its options, and the model started
// from them.

#include "runtime/Executor.h"
#include "runtime/KernelLibrary.h"
#include "runtime/Plan.h"
#include "runtime/Safetensors.h"
#include "runtime/Trainer.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <filesystem>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

namespace unroll::runtime {

/// A file's bytes; throws RunError if it cannot be read.
std::string readText(const std::filesystem::path &p);
/// A JSON file; throws RunError if it cannot be read or parsed.
nlohmann::json readJson(const std::filesystem::path &p);

/// "cpu", "cuda" (or "cuda:N"), or "auto": CUDA when this LibTorch has it
/// and a GPU is visible. Generated kernels (null: none) run where they were
/// compiled for: the host's in host memory, CUDA kernels on a GPU. Throws
/// RunError.
torch::Device pickDevice(const std::string &name, const unroll_kernels *kernels,
                         std::ostream &log);

/// The algorithm with a train block; throws RunError if none has one.
const Algorithm &trainedAlgorithm(const std::vector<Algorithm> &algs);

/// The train block's `primal` setting (`{kind, lr, ...}`) as settings,
/// defaults filled in; throws RunError for a value out of range or a key
/// that does not apply to the optimizer or its schedule.
PrimalSettings resolvePrimal(const nlohmann::json &primal);

/// The train block's settings as options, defaults filled in; throws
/// RunError for a setting this runtime does not implement.
TrainOptions resolveOptions(const nlohmann::json &train);

/// The kernels a run uses: `given` (a JIT's, from unrollc), else the
/// kernel library at `path` opened into `holder` and checked against
/// `planText`, else none (null). Throws RunError.
const unroll_kernels *openKernels(const unroll_kernels *given,
                                  const std::string &path,
                                  const std::string &planText,
                                  std::unique_ptr<KernelLibrary> &holder);

/// A run's executor on its device and kernels, its parameters initialised
/// from the seed (the prelude sees the first training instances), and the
/// trainer over them.
PrimalDual startModel(Executor &ex, const TrainOptions &to,
                      torch::Device device, const unroll_kernels *kernels,
                      const Split &train);

/// Parameters, multipliers and optimiser state from a checkpoint; a
/// mismatch with the program is the user's problem (RunError), not a crash.
void restore(PrimalDual &pd, const TensorFile &f);

} // namespace unroll::runtime
