#include "runtime/Random.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <mutex>

namespace unroll::runtime {

namespace {

constexpr int kN = at::MERSENNE_STATE_N; // 624
constexpr int kM = at::MERSENNE_STATE_M; // 397

inline uint32_t twist(uint32_t u, uint32_t v) {
  return (((u & at::UMASK) | (v & at::LMASK)) >> 1) ^
         ((v & 1u) ? at::MATRIX_A : 0u);
}

/// at::mt19937's next_state(), in two loops that the compiler vectorises
/// (the engine's own is a word at a time, most of a draw's time). The
/// first reads words that it writes later (a vector reads them all before
/// it writes); the second reads what it wrote kN - kM = 227 words before,
/// so no more than that many words may be in flight. Built for AVX-512,
/// AVX2 and the baseline, chosen at load time (the wider, the faster).
__attribute__((target_clones("avx512f", "avx2", "default"))) void
nextState(uint32_t *s) {
#pragma omp simd
  for (int i = 0; i < kN - kM; ++i)
    s[i] = s[i + kM] ^ twist(s[i], s[i + 1]);
#pragma omp simd safelen(kN - kM)
  for (int i = kN - kM; i < kN - 1; ++i)
    s[i] = s[i + kM - kN] ^ twist(s[i], s[i + 1]);
  s[kN - 1] = s[kM - 1] ^ twist(s[kN - 1], s[0]);
}

/// at::mt19937's tempering of `k` state words.
__attribute__((target_clones("avx512f", "avx2", "default"))) void
temper(const uint32_t *__restrict s, uint32_t *__restrict out, int64_t k) {
#pragma omp simd
  for (int64_t i = 0; i < k; ++i) {
    uint32_t y = s[i];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    out[i] = y;
  }
}

} // namespace

void generatorWords(at::Generator &gen, uint32_t *out, int64_t n) {
  auto *impl = at::check_generator<at::CPUGeneratorImpl>(gen);
  std::lock_guard<std::mutex> lock(gen.mutex());
  at::mt19937 engine = impl->engine();
  at::mt19937_data_pod d = engine.data();
  // The engine's operator(): --left_, a new state when it reaches 0, then
  // the word at next_++. So left_ - 1 words are ready at next_; a new
  // state makes kN ready (left_ = kN + 1 stands for the engine's kN after
  // it has returned the first).
  while (n > 0) {
    if (d.left_ == 1) {
      nextState(d.state_.data());
      d.left_ = kN + 1;
      d.next_ = 0;
    }
    const int64_t k = std::min<int64_t>(n, d.left_ - 1);
    temper(d.state_.data() + d.next_, out, k);
    d.left_ -= static_cast<int>(k);
    d.next_ += static_cast<uint32_t>(k);
    out += k;
    n -= k;
  }
  engine.set_data(d);
  impl->set_engine(engine);
}

} // namespace unroll::runtime
