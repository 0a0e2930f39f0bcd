#pragma once
// Data sources named in train blocks.

#include <torch/torch.h>

namespace unroll::runtime {

/// synthetic_sparse: a Gaussian dictionary with unit-norm columns,
/// Bernoulli-Gaussian codes and noisy measurements x = D y + noise.
struct SparseCodingData {
  torch::Tensor x;     // [n, p]
  torch::Tensor D;     // [p, d]
  torch::Tensor codes; // [n, d], the codes that generated x
};

/// Same seed, same data. `density` is the probability that a code entry is
/// non-zero; `noise` the standard deviation added to each measurement.
SparseCodingData syntheticSparse(int64_t n, int64_t p, int64_t d,
                                 double density, double noise, uint64_t seed);

} // namespace unroll::runtime
