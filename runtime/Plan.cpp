#include "runtime/Plan.h"

namespace unroll::runtime {

std::vector<Algorithm> parsePlan(const std::string &text) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error &e) {
    throw PlanError(std::string("plan is not valid JSON: ") + e.what());
  }
  // The whole structure, once: what follows (and the executor) may then
  // walk the plan without checking.
  try {
    return abi::readPlan(j).algorithms;
  } catch (const abi::PlanFormatError &e) {
    throw PlanError(e.what());
  }
}

} // namespace unroll::runtime
