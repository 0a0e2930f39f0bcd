#pragma once
// The runtime program ("plan", docs/plan.md) as read by the runtime.

#include "abi/Plan.h"
#include "abi/PlanHash.h"

#include <nlohmann/json.hpp>

#include <cstdint>
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

/// One algorithm of a plan, typed (abi/Plan.h).
using abi::Algorithm;
using abi::Body;
using abi::Op;
using abi::OpCode;

using abi::fnv;
using abi::hashString;
using abi::hexHash;
using abi::kFnvBasis;
using abi::planHash;

/// Parses, validates and types plan text; throws PlanError.
std::vector<Algorithm> parsePlan(const std::string &text);

} // namespace unroll::runtime
