// The runtime program (plan) of LISTA: structure and well-formedness.
#include "CompilerTestUtil.h"

#include "compiler/plan/PlanLowering.h"

#include <catch2/catch.hpp>
#include <set>

using namespace unroll;
using nlohmann::json;

namespace {

/// Every id an op uses must be defined before; each id is defined once.
void checkBody(const json &body, std::set<int64_t> &defined) {
  for (const json &a : body["args"])
    CHECK(defined.insert(a.get<int64_t>()).second);
  for (const json &op : body["ops"]) {
    for (const json &a : op["args"])
      CHECK(defined.count(a.get<int64_t>()) == 1);
    if (op.contains("id"))
      CHECK(defined.insert(op["id"].get<int64_t>()).second);
    if (op.contains("ids"))
      for (const json &id : op["ids"])
        CHECK(defined.insert(id.get<int64_t>()).second);
  }
  for (const json &y : body["yield"])
    CHECK(defined.count(y.get<int64_t>()) == 1);
}

} // namespace

TEST_CASE("LISTA lowers to a well-formed plan", "[plan]") {
  mlir::MLIRContext ctx;
  std::ostringstream err;
  auto module = test::compileSpec(
      test::readFile(test::sourcePath("examples/lista.unroll")), ctx, err,
      /*pipeline=*/true);
  INFO(err.str());
  REQUIRE(module);
  auto plan = compiler::lowerToPlan(*module);
  REQUIRE(mlir::succeeded(plan));
  const json &p = *plan;
  CHECK(p["format"] == "unroll-plan");
  CHECK(p["version"] == compiler::kPlanVersion);
  REQUIRE(p["algorithms"].size() == 1);
  const json &a = p["algorithms"][0];
  CHECK(a["layer_count"] == 10);
  REQUIRE(a["layers"].size() == 10);
  CHECK(a["params"].size() == 30);
  CHECK(a["inputs"].size() == 2);
  CHECK(a["states"].size() == 1);
  CHECK(a["states"][0]["random"] == true);
  CHECK(a["targets"][0]["solver"] == "fista");
  CHECK(a["constraints"][0]["form"] == "distance");
  CHECK(a["constraints"][0]["eps"] == Approx(0.05));
  CHECK(a["train"]["epochs"] == 60);
  CHECK(a["train"]["dual"]["every"] == "batch");

  // The runtime's order: inputs, prelude, params, states, targets, layers.
  std::set<int64_t> defined;
  for (const json &v : a["inputs"])
    CHECK(defined.insert(v["id"].get<int64_t>()).second);
  checkBody(json{{"args", json::array()},
                 {"ops", a["prelude"]},
                 {"yield", json::array()}},
            defined);
  for (const char *kind : {"params", "states", "targets"})
    for (const json &v : a[kind]) {
      if (v.contains("init"))
        checkBody(v["init"], defined);
      CHECK(defined.insert(v["id"].get<int64_t>()).second);
    }
  // Layer k's products use the k-th copies of Wu and We, nothing else.
  std::map<int64_t, std::pair<std::string, int64_t>> paramOf;
  for (const json &prm : a["params"])
    paramOf[prm["id"]] = {prm["name"], prm["layer"]};
  for (const json &layer : a["layers"]) {
    int64_t k = layer["index"];
    for (const json &s : layer["state"])
      CHECK(defined.count(s.get<int64_t>()) == 1);
    checkBody(layer["body"], defined);
    int matmuls = 0;
    for (const json &op : layer["body"]["ops"])
      for (const json &arg : op["args"]) {
        auto it = paramOf.find(arg.get<int64_t>());
        if (it == paramOf.end())
          continue;
        CHECK(it->second.second == k);
        matmuls += op["op"] == "matmul";
      }
    CHECK(matmuls == 2);
    for (const json &r : layer["results"])
      CHECK(defined.insert(r.get<int64_t>()).second);
  }
  for (const char *region : {"objective", "loss"})
    checkBody(a[region], defined);
  for (const json &c : a["constraints"])
    checkBody(c["body"], defined);
  for (const json &n : a["noise"])
    checkBody(n["body"], defined);
}
