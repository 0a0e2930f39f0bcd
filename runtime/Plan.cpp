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
  // index the plan without checking.
  try {
    abi::checkPlan(j);
  } catch (const abi::PlanFormatError &e) {
    throw PlanError(e.what());
  }
  std::vector<Algorithm> out;
  for (const auto &a : j["algorithms"]) {
    Algorithm alg;
    alg.json = a;
    alg.name = a["name"].get<std::string>();
    alg.layerCount = a["layer_count"].get<int64_t>();
    out.push_back(std::move(alg));
  }
  return out;
}

} // namespace unroll::runtime
