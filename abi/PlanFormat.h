#pragma once
// The runtime program ("plan", docs/plan.md): the contract between the
// compiler, which writes it, and the runtime, the kernel generator and the
// export lowering, which read it. Its version and its structural check
// live here, once, for all of them.

#include <nlohmann/json.hpp>

#include <stdexcept>
#include <string>

namespace unroll::abi {

/// The plan format version written by the compiler and read by every
/// reader; a reader rejects any other.
constexpr int kPlanVersion = 1;

/// A plan that is not one: the message names the place
/// ("algorithms[0].layers[2].body.ops[5]: ...").
class PlanFormatError : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

} // namespace unroll::abi
