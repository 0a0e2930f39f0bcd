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

} // namespace unroll::runtime
