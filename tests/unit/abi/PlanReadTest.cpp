// The plan's reader (abi/Plan.cpp): the compiler's plans of the flagship
// specs pass its structural check and come out typed as written, and every
// kind of damage a reader could trip over is rejected with the place it is
// at.
#include "RuntimeTestUtil.h"

#include "abi/Plan.h"

#include <catch2/catch.hpp>

#include <functional>

using namespace unroll;
using nlohmann::json;

namespace {

json examplePlan(const char *file) {
  return test::fusedPlanFor(test::readFile(test::sourcePath(file)));
}

/// readPlan's message for `plan` ("" when it passes).
std::string problem(const json &plan) {
  try {
    (void)abi::readPlan(plan);
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
                        "examples/surf.unroll", "examples/fista.unroll",
                        "examples/box_ls.unroll", "examples/gd_mlp.unroll",
                        "examples/admm_tv.unroll"}) {
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

TEST_CASE("enumerated attributes and body arities are checked", "[abi]") {
  const json good = examplePlan("examples/lista.unroll");
  json j = good;
  j["algorithms"][0]["inputs"][1]["role"] = "weights";
  CHECK(problem(j) == "algorithms[0].inputs[1].role: is 'weights', not "
                      "'data' or 'given'");
  j = good;
  j["algorithms"][0]["params"][0]["binding"] = "global";
  CHECK(problem(j) == "algorithms[0].params[0].binding: is 'global', not "
                      "'shared' or 'per_layer'");
  j = good;
  j["algorithms"][0]["constraints"][0]["mode"] = "quotient";
  CHECK(problem(j) == "algorithms[0].constraints[0].mode: is 'quotient', not "
                      "'difference' or 'ratio'");
  j = good;
  j["algorithms"][0]["noise"][0]["distribution"] = "cauchy";
  CHECK(problem(j) == "algorithms[0].noise[0].distribution: is 'cauchy', not "
                      "'normal' or 'uniform'");
  j = good;
  j["algorithms"][0]["solver"]["prox"] = "l2";
  CHECK(problem(j) == "algorithms[0].solver.prox: is 'l2', not 'l1' or 'none'");
  // A unary op's function and a reduction's kind, wherever the first is.
  bool unary = false, reduce = false;
  j = good;
  eachObject(j, "", [&](json &o, const std::string &) {
    if (o.value("op", "") == "unary" && !unary) {
      o["fn"] = "cosh";
      unary = true;
    }
  });
  REQUIRE(unary);
  CHECK(problem(j).find(".fn: is 'cosh', not 'neg', 'abs'") !=
        std::string::npos);
  j = good;
  eachObject(j, "", [&](json &o, const std::string &) {
    if (o.value("op", "") == "reduce" && !reduce) {
      o["kind"] = "median";
      reduce = true;
    }
  });
  REQUIRE(reduce);
  CHECK(problem(j).find(".kind: is 'median', not 'sum', 'mean'") !=
        std::string::npos);
  // A noise body yields the distribution's two parameters.
  j = good;
  json &yield = j["algorithms"][0]["noise"][0]["body"]["yield"];
  yield.erase(1);
  CHECK(problem(j) == "algorithms[0].noise[0].body: takes 1 argument(s) and "
                      "yields 1, not 1 and 2");
}

TEST_CASE("algorithm states and projections are read and checked", "[abi]") {
  // FISTA's momentum point v is the algorithm's; the objective takes y.
  const json fista = examplePlan("examples/fista.unroll");
  const abi::Plan plan = abi::readPlan(fista);
  const abi::Algorithm &alg = plan.algorithms[0];
  REQUIRE(alg.states.size() == 2);
  CHECK(alg.states[1].name == "v");
  CHECK(alg.states[1].algorithm);
  CHECK(alg.variableCount() == 1);
  json j = fista;
  j["algorithms"][0]["states"][0]["algorithm"] = true;
  j["algorithms"][0]["states"][1].erase("algorithm");
  CHECK(problem(j) == "algorithms[0].states[1]: is a variable of the problem "
                      "after a state of the algorithm; the problem's "
                      "variables come first");
  j = fista;
  j["algorithms"][0]["states"][0]["algorithm"] = true;
  CHECK(problem(j).find("algorithms[0].states: holds no variable of the "
                        "problem") != std::string::npos);
  j = fista;
  j["algorithms"][0]["states"][1]["algorithm"] = "yes";
  CHECK(problem(j).find("states[1]") != std::string::npos);

  // box_ls's y has the projection onto box(0, 1).
  const json box = examplePlan("examples/box_ls.unroll");
  const abi::Plan boxPlan = abi::readPlan(box);
  REQUIRE(boxPlan.algorithms[0].projections.size() == 1);
  CHECK(boxPlan.algorithms[0].projections[0].set == "box");
  CHECK(boxPlan.algorithms[0].projectionOf("y"));
  CHECK(!boxPlan.algorithms[0].projectionOf("x"));
  CHECK(boxPlan.algorithms[0].targets[0].solver == "pgd");
  j = box;
  j["algorithms"][0]["projections"][0]["on"] = "x";
  CHECK(problem(j) == "algorithms[0].projections[0].on: 'x' is not a "
                      "variable of the problem");
  j = box;
  j["algorithms"][0]["projections"][0]["body"]["yield"].push_back(
      j["algorithms"][0]["projections"][0]["body"]["yield"][0]);
  CHECK(problem(j) == "algorithms[0].projections[0].body: takes 1 "
                      "argument(s) and yields 2, not 1 and 1");

  // admm_tv's total variation is a composed term of the solver split.
  const json tv = examplePlan("examples/admm_tv.unroll");
  const abi::Plan tvPlan = abi::readPlan(tv);
  REQUIRE(tvPlan.algorithms[0].solver);
  REQUIRE(tvPlan.algorithms[0].solver->composed.size() == 1);
  CHECK(tvPlan.algorithms[0].solver->composed[0].of == "norm1");
  CHECK(tvPlan.algorithms[0].targets[0].solver == "primal_dual");
  j = tv;
  j["algorithms"][0]["solver"]["composed"][0].erase("adjoint");
  CHECK(problem(j) == "algorithms[0].solver.composed[0]: lacks "
                      "\"adjoint\"");
  j = tv;
  j["algorithms"][0]["solver"]["composed"][0]["prox"]["args"].erase(1);
  CHECK(problem(j).find("algorithms[0].solver.composed[0].prox") !=
        std::string::npos);
}

TEST_CASE("the typed plan holds what the JSON says", "[abi]") {
  const json j = examplePlan("examples/lista.unroll");
  const abi::Plan plan = abi::readPlan(j);
  REQUIRE(plan.algorithms.size() == j["algorithms"].size());
  const abi::Algorithm &a = plan.algorithms[0];
  const json &ja = j["algorithms"][0];
  CHECK(a.name == ja["name"]);
  CHECK(a.layerCount == ja["layer_count"]);
  REQUIRE(a.inputs.size() == ja["inputs"].size());
  for (size_t i = 0; i < a.inputs.size(); ++i) {
    CHECK(a.inputs[i].id == ja["inputs"][i]["id"]);
    CHECK(a.inputs[i].name == ja["inputs"][i]["name"]);
    CHECK(abi::spelling(a.inputs[i].role) == ja["inputs"][i]["role"]);
    CHECK(a.inputs[i].shape == ja["inputs"][i]["shape"]);
  }
  REQUIRE(a.params.size() == ja["params"].size());
  for (size_t i = 0; i < a.params.size(); ++i) {
    CHECK(a.params[i].id == ja["params"][i]["id"]);
    CHECK(abi::spelling(a.params[i].binding) == ja["params"][i]["binding"]);
    CHECK(a.params[i].layer.has_value() == ja["params"][i].contains("layer"));
  }
  REQUIRE(a.layers.size() == ja["layers"].size());
  REQUIRE(a.constraints.size() == ja["constraints"].size());
  CHECK(abi::spelling(a.constraints[0].form) == ja["constraints"][0]["form"]);
  CHECK(a.constraints[0].eps == ja["constraints"][0]["eps"].get<double>());
  CHECK(a.train.has_value() == ja.contains("train"));
  CHECK(a.solver.has_value() == ja.contains("solver"));
  // Every op of every layer, with the fused ops' bodies: the opcode named
  // as in the plan, its ids, shape and attributes.
  size_t ops = 0, fused = 0;
  std::function<void(const abi::Body &, const json &)> same =
      [&](const abi::Body &b, const json &jb) {
        REQUIRE(b.ops.size() == jb["ops"].size());
        CHECK(b.args == jb["args"].get<std::vector<int64_t>>());
        CHECK(b.yield == jb["yield"].get<std::vector<int64_t>>());
        for (size_t k = 0; k < b.ops.size(); ++k) {
          const abi::Op &op = b.ops[k];
          const json &jo = jb["ops"][k];
          ++ops;
          CHECK(abi::opName(op.code) == jo["op"]);
          CHECK(op.args == jo["args"].get<std::vector<int64_t>>());
          if (jo.contains("id")) {
            CHECK(op.id == jo["id"]);
            CHECK(op.shape == jo["shape"].get<abi::Shape>());
          }
          if (op.code == abi::OpCode::Unary)
            CHECK(abi::spelling(op.fn) == jo["fn"]);
          if (op.code == abi::OpCode::Reduce) {
            CHECK(abi::spelling(op.reduce) == jo["kind"]);
            CHECK(op.axis.has_value() == jo.contains("axis"));
          }
          if (op.code == abi::OpCode::Constant)
            CHECK(op.value == jo["value"].get<double>());
          if (op.code == abi::OpCode::Fused) {
            ++fused;
            CHECK(op.kernel == jo["kernel"]);
            CHECK(op.argShapes.size() == op.args.size());
            REQUIRE(op.body);
            same(*op.body, jo["body"]);
          }
        }
      };
  for (size_t l = 0; l < a.layers.size(); ++l) {
    CHECK(a.layers[l].index == ja["layers"][l]["index"]);
    same(a.layers[l].body, ja["layers"][l]["body"]);
  }
  CHECK(ops > 20);
  CHECK(fused >= a.layers.size());
  // Every opcode's name leads back to it.
  for (const char *name :
       {"constant", "matmul", "fused", "graph_filter", "minibatch", "probe"}) {
    INFO(name);
    REQUIRE(abi::opCodeOf(name));
    CHECK(std::string(abi::opName(*abi::opCodeOf(name))) == name);
  }
  CHECK(!abi::opCodeOf("half"));
}
