#pragma once
// Stable hashes of plans and data: what checkpoints, kernel libraries and
// the target cache are keyed by, the same in the compiler and the runtime.

#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstdio>
#include <string>

namespace unroll::abi {

/// FNV-1a of `n` bytes continuing from `h`: stable across runs and
/// machines, unlike std::hash.
inline uint64_t fnv(uint64_t h, const void *p, size_t n) {
  auto *b = static_cast<const unsigned char *>(p);
  for (size_t i = 0; i < n; ++i)
    h = (h ^ b[i]) * 1099511628211ull;
  return h;
}
constexpr uint64_t kFnvBasis = 14695981039346656037ull;

inline uint64_t hashString(uint64_t h, const std::string &s) {
  return fnv(h, s.data(), s.size());
}

/// `v` as 16 hex digits.
inline std::string hexHash(uint64_t v) {
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(v));
  return hex;
}

/// The plan's identity: everything but the epoch count and the optimiser
/// settings, which a resumed run may change (train longer, or with a lower
/// learning rate after a divergence). Checkpoints and kernel libraries
/// carry it; the compiler stamps it into kernel libraries.
inline std::string planHash(const std::string &planText) {
  nlohmann::json plan = nlohmann::json::parse(planText);
  for (nlohmann::json &a : plan["algorithms"])
    if (a.contains("train"))
      for (const char *k : {"epochs", "primal", "dual"})
        a["train"].erase(k);
  return hexHash(hashString(kFnvBasis, plan.dump()));
}

} // namespace unroll::abi
