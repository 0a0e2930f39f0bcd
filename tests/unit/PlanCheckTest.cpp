// The plan's structural check (abi/PlanCheck.cpp): the compiler's plans of
// the flagship specs pass it, and every kind of damage a reader could trip
// over is rejected with the place it is at.
#include "RuntimeTestUtil.h"

#include "abi/PlanFormat.h"

#include <catch2/catch.hpp>

#include <functional>

using namespace unroll;
using nlohmann::json;

namespace {

json examplePlan(const char *file) {
  return test::fusedPlanFor(test::readFile(test::sourcePath(file)));
}

/// checkPlan's message for `plan` ("" when it passes).
std::string problem(const json &plan) {
  try {
    abi::checkPlan(plan);
    return "";
  } catch (const abi::PlanFormatError &e) {
    return e.what();
  }
}

/// Calls `f` on every object of `j` with its path.
void eachObject(json &j, const std::string &at,
                const std::function<void(json &, const std::string &)> &f) {
  if (j.is_object()) {
    f(j, at);
    for (auto &[k, v] : j.items())
      eachObject(v, at + "." + k, f);
  } else if (j.is_array()) {
    for (size_t i = 0; i < j.size(); ++i)
      eachObject(j[i], at + "[" + std::to_string(i) + "]", f);
  }
}

} // namespace

TEST_CASE("the compiler's plans pass the structural check", "[abi]") {
  for (const char *f : {"examples/lista.unroll", "examples/glow_prox.unroll",
                        "examples/surf.unroll"}) {
    INFO(f);
    CHECK(problem(examplePlan(f)) == "");
  }
}

TEST_CASE("damaged plans are rejected with the place of the damage", "[abi]") {
  const json good = examplePlan("examples/lista.unroll");
  REQUIRE(problem(good) == "");
  CHECK(problem(json::object()) ==
        "not an Unroll plan (missing \"format\": \"unroll-plan\")");
  CHECK(problem(json::array({1, 2, 3})) ==
        "not an Unroll plan (missing \"format\": \"unroll-plan\")");
  json j = good;
  j["version"] = 2;
  CHECK(problem(j) == "plan version 2 is not supported; this program reads "
                      "version 1");
  j = good;
  j.erase("algorithms");
  CHECK(problem(j) == "the plan has no \"algorithms\" array");
  j = good;
  j["algorithms"][0].erase("states");
  CHECK(problem(j) == "algorithms[0]: lacks \"states\"");
  j = good;
  j["algorithms"][0]["layer_count"] = "ten";
  CHECK(problem(j) == "algorithms[0].layer_count: is not an integer");
  j = good;
  j["algorithms"][0]["layers"].erase(0);
  CHECK(problem(j) == "algorithms[0].layers: lists 9 layers but layer_count "
                      "is 10");
  j = good;
  j["algorithms"][0]["inputs"][0]["shape"] = {3, 0};
  CHECK(problem(j) ==
        "algorithms[0].inputs[0].shape[1]: is not a dimension from 1 to "
        "2147483647");

  // Every op of the plan: an unknown name, a missing operand, an operand
  // that is not defined before it, a missing attribute.
  int ops = 0;
  json probe = good;
  eachObject(probe, "", [&](json &o, const std::string &) {
    if (o.contains("op"))
      ++ops;
  });
  REQUIRE(ops > 20);
  for (int which = 0; which < ops; which += 7) {
    for (int damage = 0; damage < 4; ++damage) {
      json d = good;
      int k = 0;
      std::string where;
      bool applicable = false;
      eachObject(d, "", [&](json &o, const std::string &at) {
        if (!o.contains("op") || k++ != which)
          return;
        where = at;
        switch (damage) {
        case 0:
          o["op"] = "frobnicate";
          applicable = true;
          break;
        case 1:
          if (!o["args"].empty()) {
            o["args"].erase(0);
            applicable = true;
          }
          break;
        case 2:
          if (!o["args"].empty()) {
            o["args"][0] = 999999;
            applicable = true;
          }
          break;
        case 3:
          for (const char *attr : {"fn", "kind", "value", "distribution",
                                   "axis", "body", "kernel"})
            if (o.contains(attr) && !applicable) {
              o.erase(attr);
              applicable = true;
            }
          break;
        }
      });
      if (!applicable)
        continue;
      INFO("op " << which << " at " << where << ", damage " << damage);
      const std::string why = problem(d);
      CHECK(why != "");
      // The message starts with the path of the damaged op.
      CHECK(why.rfind(where.substr(1), 0) == 0);
    }
  }

  // An id defined twice.
  j = good;
  j["algorithms"][0]["params"][1]["id"] = j["algorithms"][0]["params"][0]["id"];
  CHECK(problem(j).find("a second time") != std::string::npos);
}
