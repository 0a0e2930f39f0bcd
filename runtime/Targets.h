#pragma once
// The targets y* of a split, computed by the classical solver and cached on
// disk by the problem and the data they solve.

#include "runtime/Data.h"
#include "runtime/Plan.h"

#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <ostream>
#include <string>

namespace unroll::runtime {

/// Instances per chunk when a whole split is run (targets, evaluation).
constexpr int64_t kChunk = 1024;

/// Data inputs of instances [from, from + n) and the shared inputs.
std::map<std::string, torch::Tensor> chunk(const Algorithm &alg, const Split &s,
                                           int64_t from, int64_t n);

/// `h` continued with a tensor's shape and float32 values.
uint64_t hashTensor(uint64_t h, const torch::Tensor &t);

/// y* for every instance of a split: the split's own where the data
/// source gives it, else from the disk cache when the same problem and
/// data were solved before, else solved; undefined without a target.
/// Throws RunError for a solver this runtime does not implement.
torch::Tensor targetsFor(const Algorithm &alg, const Split &split,
                         const std::string &cacheDir, torch::Device device,
                         std::ostream &log, const std::string &what);

} // namespace unroll::runtime
