#pragma once
// The runtime program ("plan", docs/plan.md) as read by the runtime.

#include "abi/PlanFormat.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

namespace unroll::runtime {

/// A malformed or unsupported plan; the message says what and where.
class PlanError : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// The plan version this runtime reads (the compiler's, from abi/).
using abi::kPlanVersion;

/// One algorithm of a plan, checked for the keys the executor needs.
struct Algorithm {
  nlohmann::json json;
  std::string name;
  int64_t layerCount = 0;
};

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
/// carry it. Inline, as the compiler stamps it into kernel libraries.
inline std::string planHash(const std::string &planText) {
  nlohmann::json plan = nlohmann::json::parse(planText);
  for (nlohmann::json &a : plan["algorithms"])
    if (a.contains("train"))
      for (const char *k : {"epochs", "primal", "dual"})
        a["train"].erase(k);
  return hexHash(hashString(kFnvBasis, plan.dump()));
}

/// Parses and validates plan text; throws PlanError.
std::vector<Algorithm> parsePlan(const std::string &text);

/// Whether the fused op `op` ends in a reduction over all axes (a loss's or
/// a descent constraint's measure): one value per instance. Inline, as the
/// kernel generator reads plans too.
inline bool fusedReduces(const nlohmann::json &op) {
  const nlohmann::json &ops = op["body"]["ops"];
  return !ops.empty() && ops.back()["op"] == "reduce";
}

/// The per-instance shape the kernel of fused op `op` runs over (its
/// operands' and adjoints'): the result's, or for a chain that ends in a
/// reduction, the reduced value's. Throws PlanError for a reduction of a
/// value the body does not hold.
inline std::vector<int64_t> fusedDomain(const nlohmann::json &op) {
  if (!fusedReduces(op))
    return op["shape"].get<std::vector<int64_t>>();
  const nlohmann::json &body = op["body"];
  const nlohmann::json &arg = body["ops"].back()["args"][0];
  for (const nlohmann::json &o : body["ops"])
    if (o["id"] == arg)
      return o["shape"].get<std::vector<int64_t>>();
  for (size_t i = 0; i < body["args"].size(); ++i)
    if (body["args"][i] == arg)
      return op["arg_shapes"][i].get<std::vector<int64_t>>();
  throw PlanError("a fused op reduces a value its body does not hold");
}

} // namespace unroll::runtime
