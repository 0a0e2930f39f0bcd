// Mutated specs through the whole compile pipeline available so far (front
// end, then IR generation and the dialect's verifier): every run must end
// with status 0 (compiled), 1 (user error reported) or, never, anything
// else. IR generation's internal errors (exit 2) count as failures too.
#include "Mutation.h"
#include "TestUtil.h"

#include "compiler/IRGen/IRGen.h"

#include <catch2/catch.hpp>

using namespace unroll;

namespace {
int compile(const std::string &text) {
  std::ostringstream err;
  dsl::FrontendOptions opts;
  opts.libraryPath = {test::sourcePath("stdlib")};
  auto fe = dsl::runFrontend("mutant.unroll", &text, opts, err);
  if (!fe->ok())
    return 1;
  mlir::MLIRContext ctx;
  try {
    return compiler::generateIR(ctx, *fe) ? 0 : 1;
  } catch (const dsl::InternalError &) {
    return 2;
  }
}
} // namespace

TEST_CASE("the examples compile to verified IR", "[pipeline]") {
  CHECK(compile(test::readFile(test::sourcePath("examples/lista.unroll"))) ==
        0);
}

TEST_CASE("mutated specs never crash the pipeline", "[pipeline][mutation]") {
  std::string seed = test::readFile(test::sourcePath("examples/lista.unroll"));
  REQUIRE(!seed.empty());
  std::mt19937 rng(777);
  const int kRuns = 3000;
  int compiled = 0;
  for (int i = 0; i < kRuns; ++i) {
    std::string m = test::mutate(seed, rng);
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
