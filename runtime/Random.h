#pragma once
// LibTorch's CPU generator (mt19937) read in bulk, so that a generated
// kernel can turn its words into the same draws as torch::randn and
// torch::rand: a seed means the same noise with and without compiled
// kernels.

#include <ATen/core/Generator.h>

#include <cstdint>

namespace unroll::runtime {

/// Writes the next `n` 32-bit words of `gen` (a CPU generator) to `out` and
/// advances it past them: the words that `n` calls of its random() would
/// return, without a call per word (the state is updated a whole block at
/// a time, vectorised).
void generatorWords(at::Generator &gen, uint32_t *out, int64_t n);

/// How many words torch::randn takes from the CPU generator for a
/// contiguous float tensor of `n` >= 16 elements: one per element, and 16
/// more for the last 16 elements where `n` is not a multiple of 16 (its
/// Box-Muller transform works on groups of 16).
inline int64_t normalWords(int64_t n) { return n % 16 ? n + 16 : n; }

} // namespace unroll::runtime
