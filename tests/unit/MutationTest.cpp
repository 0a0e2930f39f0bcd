// Feeds thousands of mutated versions of the flagship specs and stdlib files
// to the front end, each in a forked child, and requires that every child
// exits with status 0 or 1: no crash, abort, assertion failure or hang.
#include "TestUtil.h"

#include <catch2/catch.hpp>

#include <random>
#include <sys/wait.h>
#include <unistd.h>

using namespace unroll;

namespace {

const char *kFragments[] = {
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ",",
    "=",
    "+=",
    "@",
    "'",
    "..",
    "~",
    "|",
    "-",
    "*",
    "/",
    "^",
    "0",
    "1e309",
    "x",
    "y",
    "L",
    "l",
    "f",
    "vec[",
    "mat[p, ",
    "tensor[",
    "param ",
    "per layer",
    "shared",
    "repeat ",
    "step {",
    "init ",
    "let ",
    "fn ",
    "return ",
    "problem ",
    "unrolled ",
    "train ",
    "module ",
    "import prox\n",
    "import nosuch\n",
    "descend ",
    "noise ",
    "where ",
    "by ",
    "grad(",
    "glow(",
    "\n",
    "\"",
    "/*",
    "//",
    "99999999999999999999",
    "0",
    "-1",
    "#",
    "\t",
    "layers = 0",
    "solves ",
    "minimize ",
    "data ",
    "given ",
    "var ",
};

std::string mutate(const std::string &src, std::mt19937 &rng) {
  std::string s = src;
  int edits = 1 + static_cast<int>(rng() % 4);
  for (int e = 0; e < edits && !s.empty(); ++e) {
    size_t pos = rng() % s.size();
    switch (rng() % 6) {
    case 0: // delete a span
      s.erase(pos, 1 + rng() % 12);
      break;
    case 1: // insert a fragment
      s.insert(
          pos,
          kFragments[rng() % (sizeof(kFragments) / sizeof(kFragments[0]))]);
      break;
    case 2: // overwrite with a random byte
      s[pos] = static_cast<char>(rng() % 256);
      break;
    case 3: { // duplicate a span elsewhere
      std::string span = s.substr(pos, 1 + rng() % 40);
      s.insert(rng() % s.size(), span);
      break;
    }
    case 4: // truncate
      s.resize(pos);
      break;
    default: { // swap two lines' worth of text
      size_t other = rng() % s.size();
      std::swap(s[pos], s[other]);
      break;
    }
    }
  }
  return s;
}

/// Runs the checker on `text` in a child process; returns its wait status.
int checkInChild(const std::string &text) {
  pid_t pid = fork();
  if (pid == 0) {
    alarm(10); // a hang becomes SIGALRM, which the parent reports
    int rc = 2;
    try {
      bool ok = false;
      test::check(text, ok, "mutant.unroll");
      rc = ok ? 0 : 1;
    } catch (...) {
      rc = 3;
    }
    _exit(rc);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return status;
}

} // namespace

TEST_CASE("mutated specs never crash the front end", "[fuzz][mutation]") {
  std::vector<std::string> seeds;
  for (const char *f :
       {"examples/lista.unroll", "examples/glow_prox.unroll",
        "examples/surf.unroll", "stdlib/flows.unroll", "stdlib/graph.unroll"})
    seeds.push_back(test::readFile(test::sourcePath(f)));
  for (auto &s : seeds)
    REQUIRE(!s.empty());

  std::mt19937 rng(12345);
  const int kRuns = 10000;
  int passed = 0, rejected = 0;
  for (int i = 0; i < kRuns; ++i) {
    std::string m = mutate(seeds[i % seeds.size()], rng);
    int status = checkInChild(m);
    bool clean = WIFEXITED(status) &&
                 (WEXITSTATUS(status) == 0 || WEXITSTATUS(status) == 1);
    if (!clean) {
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
