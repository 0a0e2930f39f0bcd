#pragma once
// Random mutation of spec files and isolated runs, shared by the mutation
// tests of the front end and of the whole compile pipeline.
#include <functional>
#include <random>
#include <string>
#include <sys/wait.h>
#include <unistd.h>

namespace unroll::test {

inline const char *kFragments[] = {
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

inline std::string mutate(const std::string &src, std::mt19937 &rng) {
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

/// Runs `body` in a forked child and returns its wait status. A hang
/// becomes SIGALRM after 10 s; an escaping exception becomes exit code 3.
inline int runInChild(const std::function<int()> &body) {
  pid_t pid = fork();
  if (pid == 0) {
    alarm(10);
    int rc = 3;
    try {
      rc = body();
    } catch (...) {
    }
    _exit(rc);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return status;
}

/// Exited normally with status 0 or 1.
inline bool cleanExit(int status) {
  return WIFEXITED(status) &&
         (WEXITSTATUS(status) == 0 || WEXITSTATUS(status) == 1);
}

} // namespace unroll::test
