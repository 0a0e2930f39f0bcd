#pragma once
// Running the external tools an export needs (the C and C++ compilers,
// ar): an argument vector, no shell, the tool's output into a log file;
// and writing the files they read.

#include "compiler/export/InferenceLowering.h"

#include <filesystem>
#include <string>
#include <vector>

namespace unroll::compiler {

/// A tool that could not be started or exited with a failure.
class ToolError : public ExportError {
public:
  ToolError(const std::string &command, const std::string &output)
      : ExportError("'" + command + "' failed:\n" + output), command(command),
        output(output) {}
  /// The command line, as a shell would show it.
  std::string command;
  /// What the tool printed (stdout and stderr), or why it did not start.
  std::string output;
};

/// Runs `argv` (argv[0] looked up on the PATH) in directory `cwd` (empty:
/// the current one), its stdout and stderr into `logFile`. Throws
/// ToolError when the tool cannot be started or exits with a non-zero
/// status, ExportError when the log cannot be written.
void runTool(const std::vector<std::string> &argv,
             const std::filesystem::path &logFile,
             const std::filesystem::path &cwd = {});

/// The C compiler as an argument vector: $CC split on blanks ("ccache
/// cc"), else `cc`.
std::vector<std::string> cCompiler();

/// The C++ compiler: $CXX split on blanks, else `c++`.
std::vector<std::string> cxxCompiler();

/// Writes `text` to `p` atomically (abi::writeFileAtomic); ExportError
/// when it cannot.
void writeText(const std::filesystem::path &p, const std::string &text);

/// `base` followed by `more`.
std::vector<std::string> operator+(std::vector<std::string> base,
                                   const std::vector<std::string> &more);

} // namespace unroll::compiler
