#include "TestUtil.h"

#include <catch2/catch.hpp>

using namespace unroll;
using namespace unroll::dsl;

TEST_CASE("the three flagship specs pass the checker", "[frontend]") {
  for (const char *f : {"examples/lista.unroll", "examples/glow_prox.unroll",
                        "examples/surf.unroll"}) {
    INFO(f);
    bool ok = false;
    std::string diags =
        test::check(test::readFile(test::sourcePath(f)), ok, "spec.unroll");
    CHECK(diags == "");
    CHECK(ok);
  }
}

TEST_CASE("the AST of LISTA has what the spec says", "[frontend]") {
  std::ostringstream err;
  FrontendOptions opts;
  opts.libraryPath = {test::sourcePath("stdlib")};
  auto fe = runFrontend(test::sourcePath("examples/lista.unroll"), nullptr,
                        opts, err);
  REQUIRE(fe->ok());
  const Module &m = *fe->main->ast;
  REQUIRE(m.imports.size() == 2);
  REQUIRE(m.problems.size() == 1);
  const ProblemDecl &p = *m.problems[0];
  CHECK(p.name == "sparse_coding");
  REQUIRE(p.vars.size() == 3);
  CHECK(p.vars[1].role == VarDecl::Role::Given);
  CHECK(p.vars[1].loc.line == 8);
  REQUIRE(m.unrolleds.size() == 1);
  const UnrolledDecl &u = *m.unrolleds[0];
  REQUIRE(u.params.size() == 3);
  for (auto &prm : u.params)
    CHECK(prm.binding == Binding::PerLayer);
  REQUIRE(u.step.size() == 1);
  REQUIRE(m.trains.size() == 1);
  CHECK(m.trains[0]->items.size() == 9);
  const TrainItem &d = m.trains[0]->items[3];
  CHECK(d.kind == TrainItem::Kind::Descend);
  CHECK(d.mode == ConstraintMode::Difference);

  // Sema recorded the type of the step's right-hand side.
  auto &a = static_cast<const AssignStmt &>(*u.step[0]);
  auto it = fe->sema->exprTypes().find(a.value.get());
  REQUIRE(it != fe->sema->exprTypes().end());
  CHECK(it->second.str() == "vec[d]");
}

TEST_CASE("a shape error names both shapes", "[frontend]") {
  bool ok = true;
  std::string d = test::check(R"(problem q(p: int, d: int) {
  given D : mat[p, d]
  var y : vec[p]
  minimize sqnorm(D @ y)
}
)",
                              ok);
  CHECK(!ok);
  CHECK(d == "test.unroll:4:21: error: matrix product mat[p, d] @ vec[p]: "
             "inner dimensions d and p differ\n"
             "  minimize sqnorm(D @ y)\n"
             "                    ^\n");
}

TEST_CASE("sizes bound by 'solves' are compared by value", "[frontend]") {
  // d and p differ symbolically but are both 4 here, so this is fine.
  bool ok = false;
  std::string d = test::check(R"(problem q(p: int, d: int) {
  data x : vec[p]
  var y : vec[d]
  minimize sqnorm(y)
}
unrolled u(layers = 2) solves q(p = 4, d = 4) {
  init y = x
  step { y = y * 0.5 }
}
)",
                              ok);
  CHECK(d == "");
  CHECK(ok);
}

TEST_CASE("syntax errors are all reported, then checking goes on",
          "[frontend]") {
  bool ok = true;
  std::string d = test::check(R"(problem q(p: int) {
  data x : vec[p
  var y : vec[p]
  minimize sqnorm(y) +
}
unrolled u(layers = 2) solves q(p = 3) {
  init y = x
  step { y = y @@ 2 }
}
)",
                              ok);
  CHECK(!ok);
  CHECK(d.find("test.unroll:3:3: error: expected ',' or ']', found 'var'") !=
        std::string::npos);
  CHECK(d.find("test.unroll:5:1: error: expected an expression, found '}'") !=
        std::string::npos);
  CHECK(d.find("test.unroll:8:17: error: expected an expression, found '@'") !=
        std::string::npos);
}

TEST_CASE("every diagnostic has file:line:col, source line and caret",
          "[frontend]") {
  bool ok = true;
  std::string d = test::check("import prox\nfn f(x) = soft_threshold(x)\n", ok);
  CHECK(!ok);
  CHECK(d == "test.unroll:2:11: error: missing argument 't' in call to "
             "'soft_threshold'\n"
             "fn f(x) = soft_threshold(x)\n"
             "          ^\n");
}
