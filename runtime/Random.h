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

} // namespace unroll::runtime
