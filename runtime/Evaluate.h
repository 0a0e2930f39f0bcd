#pragma once
// Measurements of a model layer by layer on one split: what `eval` reports
// and training's validation reads.

#include "runtime/Data.h"
#include "runtime/Executor.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace unroll::runtime {

/// Per-instance measurements of every layer on one split.
struct SplitEval {
  double loss = 0;
  std::vector<torch::Tensor> distance;  // [L + 1] x [n]
  std::vector<torch::Tensor> objective; // [L + 1] x [n] (full only)
  std::vector<torch::Tensor> gradNorm;  // [L + 1] x [n] (full only)
  std::vector<torch::Tensor> l1;        // [L + 1] x [n] (full only)
  /// setDistance[k][l]: ||y_l - P(y_l)|| per instance for the plan's
  /// projection k (full only).
  std::vector<std::vector<torch::Tensor>> setDistance;
  /// constraints[c][l - 1]: C_l per instance; undefined where the
  /// constraint has no value (layer 1 of a step-result constraint).
  std::vector<std::vector<torch::Tensor>> constraints;
};

/// Runs the model over every instance of `split` (in chunks) with the
/// targets `ystar` (undefined: none), states perturbed by N(0, perturb^2)
/// after every layer; `full` also measures the objective, gradient and l1
/// norms and the constraints.
SplitEval evaluateSplit(Executor &ex, const Split &split,
                        const torch::Tensor &ystar, uint64_t seed,
                        double perturb, bool full);

/// Mean of each layer's values; null where a layer has none.
nlohmann::json means(const std::vector<torch::Tensor> &v);

} // namespace unroll::runtime
