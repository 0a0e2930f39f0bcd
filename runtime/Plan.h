#pragma once
// The runtime program ("plan", docs/plan.md) as read by the runtime.

#include <nlohmann/json.hpp>

#include <stdexcept>
#include <string>
#include <vector>

namespace unroll::runtime {

/// A malformed or unsupported plan; the message says what and where.
class PlanError : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// The plan version this runtime reads.
constexpr int kPlanVersion = 1;

/// One algorithm of a plan, checked for the keys the executor needs.
struct Algorithm {
  nlohmann::json json;
  std::string name;
  int64_t layerCount = 0;
};

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
