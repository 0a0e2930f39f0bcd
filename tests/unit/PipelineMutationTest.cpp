// Mutated specs through the whole compile pipeline available so far (front
// end, IR generation, the dialect's verifier, the middle-end passes): every
// run must end
// with status 0 (compiled), 1 (user error reported) or, never, anything
// else. IR generation's internal errors (exit 2) count as failures too.
#include "CompilerTestUtil.h"
#include "Mutation.h"

#include <catch2/catch.hpp>

using namespace unroll;

namespace {
int compile(const std::string &text) {
  std::ostringstream err;
  mlir::MLIRContext ctx;
  try {
    return test::compileSpec(text, ctx, err, /*pipeline=*/true) ? 0 : 1;
  } catch (const dsl::InternalError &) {
    return 2;
  }
}
} // namespace

TEST_CASE("the examples compile to verified, unrolled IR", "[pipeline]") {
  for (const char *f : {"examples/lista.unroll", "examples/glow_prox.unroll",
                        "examples/surf.unroll"}) {
    INFO(f);
    CHECK(compile(test::readFile(test::sourcePath(f))) == 0);
  }
}

TEST_CASE("mutated specs never crash the pipeline", "[pipeline][mutation]") {
  std::vector<std::string> seeds;
  for (const char *f : {"examples/lista.unroll", "examples/glow_prox.unroll",
                        "examples/surf.unroll"})
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
