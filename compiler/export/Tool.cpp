#include "compiler/export/Tool.h"

#include "abi/Files.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <spawn.h>
#include <sstream>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

namespace unroll::compiler {

namespace fs = std::filesystem;

namespace {

/// `s` as a shell would need it written, for messages only.
std::string shellWord(const std::string &s) {
  if (!s.empty() &&
      s.find_first_of(" \t\n'\"\\$`*?[]#~;&|<>(){}") == std::string::npos)
    return s;
  std::string q = "'";
  for (char c : s)
    q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

std::vector<std::string> fromEnvironment(const char *var, const char *dflt) {
  std::vector<std::string> words;
  if (const char *v = std::getenv(var)) {
    std::istringstream in(v);
    for (std::string w; in >> w;)
      words.push_back(w);
  }
  if (words.empty())
    words.push_back(dflt);
  return words;
}

} // namespace

std::vector<std::string> operator+(std::vector<std::string> base,
                                   const std::vector<std::string> &more) {
  base.insert(base.end(), more.begin(), more.end());
  return base;
}

void writeText(const fs::path &p, const std::string &text) {
  try {
    abi::writeFileAtomic(p.string(), text);
  } catch (const abi::WriteError &e) {
    throw ExportError(e.what());
  }
}

std::vector<std::string> cCompiler() { return fromEnvironment("CC", "cc"); }

std::vector<std::string> cxxCompiler() { return fromEnvironment("CXX", "c++"); }

void runTool(const std::vector<std::string> &argv, const fs::path &logFile,
             const fs::path &cwd) {
  if (argv.empty())
    throw ExportError("runTool: no command");
  std::string shown;
  for (const std::string &a : argv)
    shown += (shown.empty() ? "" : " ") + shellWord(a);
  std::vector<char *> args;
  for (const std::string &a : argv)
    args.push_back(const_cast<char *>(a.c_str()));
  args.push_back(nullptr);

  const int fd =
      ::open(logFile.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    throw ExportError("cannot write '" + logFile.string() +
                      "': " + std::strerror(errno));
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fd, STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, fd, STDERR_FILENO);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null",
                                   O_RDONLY, 0);
  if (!cwd.empty())
    posix_spawn_file_actions_addchdir_np(&actions, cwd.c_str());
  pid_t pid = 0;
  const int spawned =
      posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(fd);
  if (spawned != 0)
    throw ToolError(shown, "cannot run '" + argv[0] +
                               "': " + std::strerror(spawned) + "\n");
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0)
    if (errno != EINTR)
      throw ExportError("waiting for '" + shown + "': " + std::strerror(errno));
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
    return;
  std::ifstream in(logFile);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string output = ss.str();
  if (WIFSIGNALED(status))
    output += "(killed by signal " + std::to_string(WTERMSIG(status)) + ")\n";
  throw ToolError(shown, output);
}

} // namespace unroll::compiler
