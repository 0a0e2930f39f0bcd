// Mutated specs through the whole compile pipeline (front end, IR
// generation, the dialect's verifier, the middle-end passes with fusion,
// the plan), as `unrollc --emit=plan` runs it: every run must end within
// the child's time limit (a hang fails) with status 0 (a plan that passes
// the readers' structural check) or 1 (user error reported), never
// anything else. Internal errors (exit 2) and plans that the readers would
// reject count as failures too.
#include "CompilerTestUtil.h"
#include "Mutation.h"

#include "abi/Plan.h"
#include "compiler/plan/PlanLowering.h"

#include <catch2/catch.hpp>

using namespace unroll;

namespace {
int compile(const std::string &text) {
  std::ostringstream err;
  mlir::MLIRContext ctx;
  try {
    dsl::FrontendOptions opts;
    opts.libraryPath = {test::sourcePath("stdlib")};
    auto fe = dsl::runFrontend("spec.unroll", &text, opts, err);
    if (!fe->ok())
      return 1;
    auto module = compiler::generateIR(ctx, *fe);
    if (!module || mlir::failed(compiler::runPipeline(*module, false,
                                                      /*fuse=*/true)))
      return 1;
    auto plan = compiler::lowerToPlan(*module);
    if (mlir::failed(plan))
      return 1;
    (void)abi::readPlan(*plan);
    return 0;
  } catch (const dsl::InternalError &) {
    return 2;
  } catch (const abi::PlanFormatError &) {
    return 4;
  }
}
} // namespace

TEST_CASE("the examples compile to verified, unrolled IR", "[pipeline]") {
  for (const char *f : {"examples/lista.unroll", "examples/glow_prox.unroll",
                        "examples/surf.unroll", "examples/fista.unroll",
                        "examples/box_ls.unroll", "examples/gd_mlp.unroll",
                        "examples/admm_tv.unroll"}) {
    INFO(f);
    CHECK(compile(test::readFile(test::sourcePath(f))) == 0);
  }
}

TEST_CASE("mutated specs never crash the pipeline", "[pipeline][mutation]") {
  std::vector<std::string> seeds;
  for (const char *f : {"examples/lista.unroll", "examples/glow_prox.unroll",
                        "examples/surf.unroll", "examples/fista.unroll",
                        "examples/box_ls.unroll", "examples/admm_tv.unroll"})
    seeds.push_back(test::readFile(test::sourcePath(f)));
  for (auto &s : seeds)
    REQUIRE(!s.empty());
  std::mt19937 rng(777);
  const int kRuns = 3000;
  int compiled = 0;
  for (int i = 0; i < kRuns; ++i) {
    std::string m = test::mutate(seeds[i % seeds.size()], rng);
    int status = test::runInChild([&] { return compile(m); });
    if (!test::cleanExit(status)) {
      INFO("mutant " << i << " wait status " << status << ":\n" << m);
      FAIL();
    }
    compiled += WEXITSTATUS(status) == 0;
  }
  // Some mutants (in comments, or harmless) still compile: the IR path ran.
  CHECK(compiled > 0);
}
