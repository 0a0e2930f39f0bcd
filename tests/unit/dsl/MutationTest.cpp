// Feeds thousands of mutated versions of the flagship specs and stdlib files
// to the front end, each in a forked child, and requires that every child
// exits with status 0 or 1: no crash, abort, assertion failure or hang.
#include "Mutation.h"
#include "TestUtil.h"

#include <catch2/catch.hpp>

using namespace unroll;

TEST_CASE("mutated specs never crash the front end", "[fuzz][mutation]") {
  std::vector<std::string> seeds;
  for (const char *f :
       {"examples/lista.unroll", "examples/glow_prox.unroll",
        "examples/surf.unroll", "examples/fista.unroll",
        "examples/box_ls.unroll", "examples/admm_tv.unroll",
        "stdlib/flows.unroll", "stdlib/graph.unroll", "stdlib/sets.unroll"})
    seeds.push_back(test::readFile(test::sourcePath(f)));
  for (auto &s : seeds)
    REQUIRE(!s.empty());

  std::mt19937 rng(12345);
  const int kRuns = 10000;
  int passed = 0, rejected = 0;
  for (int i = 0; i < kRuns; ++i) {
    std::string m = test::mutate(seeds[i % seeds.size()], rng);
    int status = test::runInChild([&] {
      bool ok = false;
      test::check(m, ok, "mutant.unroll");
      return ok ? 0 : 1;
    });
    if (!test::cleanExit(status)) {
      INFO("mutant " << i << " status " << status << " (signal "
                     << (WIFSIGNALED(status) ? WTERMSIG(status) : 0)
                     << ", exit "
                     << (WIFEXITED(status) ? WEXITSTATUS(status) : -1) << "):\n"
                     << m);
      FAIL();
    }
    (WEXITSTATUS(status) == 0 ? passed : rejected)++;
  }
  // Most mutants must be rejected; a few harmless edits (inside comments)
  // still pass.
  CHECK(rejected > kRuns / 2);
  CHECK(passed > 0);
}
