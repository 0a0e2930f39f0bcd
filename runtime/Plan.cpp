#include "runtime/Plan.h"

namespace unroll::runtime {

std::vector<Algorithm> parsePlan(const std::string &text) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error &e) {
    throw PlanError(std::string("plan is not valid JSON: ") + e.what());
  }
  if (!j.is_object() || j.value("format", "") != "unroll-plan")
    throw PlanError("not an Unroll plan (missing \"format\": \"unroll-plan\")");
  if (!j.contains("version") || !j["version"].is_number_integer() ||
      j["version"].get<int>() != kPlanVersion)
    throw PlanError("plan version " +
                    (j.contains("version") ? j["version"].dump() : "missing") +
                    " is not supported; this runtime reads version " +
                    std::to_string(kPlanVersion));
  std::vector<Algorithm> out;
  for (const auto &a : j.value("algorithms", nlohmann::json::array())) {
    for (const char *key : {"name", "layer_count", "inputs", "params", "states",
                            "layers", "prelude"})
      if (!a.contains(key))
        throw PlanError(std::string("plan algorithm lacks \"") + key + "\"");
    Algorithm alg;
    alg.json = a;
    alg.name = a["name"].get<std::string>();
    alg.layerCount = a["layer_count"].get<int64_t>();
    if (static_cast<int64_t>(a["layers"].size()) != alg.layerCount)
      throw PlanError("algorithm '" + alg.name + "' lists " +
                      std::to_string(a["layers"].size()) + " layers but " +
                      "layer_count is " + std::to_string(alg.layerCount));
    out.push_back(std::move(alg));
  }
  return out;
}

} // namespace unroll::runtime
