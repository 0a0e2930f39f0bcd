#pragma once
// A run's checkpoints (last.safetensors, best.safetensors): the trainer's
// tensors with the plan's hash and the run's progress as metadata,
// validated when read.

#include "runtime/Safetensors.h"
#include "runtime/Trainer.h"

#include <cstdint>
#include <filesystem>
#include <limits>
#include <optional>
#include <string>

namespace unroll::runtime {

/// A run's progress, as its checkpoints record it.
struct RunState {
  int64_t epoch = 0; // epochs finished
  double bestVal = std::numeric_limits<double>::infinity();
  int64_t bestEpoch = 0;
};

/// A non-negative decimal integer (no sign, no spaces), or nothing.
std::optional<int64_t> countOf(const std::string &s);

/// Writes `pd`'s tensors and `rs` to `file` (atomically).
void writeCheckpoint(const std::filesystem::path &file, const PrimalDual &pd,
                     const std::string &hash, const RunState &rs);

/// Reads a checkpoint of the plan with hash `hash`; throws RunError naming
/// what is wrong with a damaged, foreign or unknown one.
TensorFile readCheckpoint(const std::filesystem::path &file,
                          const std::string &hash);

} // namespace unroll::runtime
