#pragma once
// unrollc's commands, one function each; unrollc.cpp parses the command
// line and calls them. Each prints its diagnostics and returns the exit
// status (0 done, 1 a user error, 130 interrupted).

#include "compiler/export/Export.h"
#include "compiler/export/KernelLibrary.h"

#include <string>
#include <vector>

namespace unroll::driver {

/// What every command that compiles a spec takes from the command line.
struct DriverOptions {
  /// -I: library folders, searched after the spec's own.
  std::vector<std::string> includes;
  /// --set key=value.
  std::vector<std::string> settings;
  /// --print-ir-after-all.
  bool printAfterAll = false;
};

/// `unrollc check FILE...`: each spec checked, with the settings applied.
int checkCommand(const std::vector<std::string> &files,
                 const DriverOptions &options, bool quiet);

/// `unrollc --emit=STAGE FILE`: ast, mlir, mlir-unrolled, plan, kernels or
/// ptx to stdout; `locations` prints the IR's DSL locations.
int emitCommand(const std::string &stage, const std::string &file,
                const DriverOptions &options, bool locations);

/// `unrollc train SPEC`: compiles the spec and its kernels, then trains
/// into `out` (default runs/<spec name>).
int trainCommand(const std::string &spec, const DriverOptions &options,
                 std::string out, bool resume, const std::string &cacheDir,
                 const std::string &device, const std::string &backend);

/// `unrollc compile SPEC -o DIR`: a program directory for unroll-run.
int compileCommand(const std::string &spec, const DriverOptions &options,
                   const std::string &outDir,
                   const compiler::KernelLibraryOptions &kernels,
                   const std::string &backend);

/// `unrollc eval RUN_DIR`: the runtime's evaluation, with the run's
/// kernels.
int evalCommand(const std::string &runDir, const std::vector<double> &ood,
                const std::vector<double> &perturb, const std::string &baseline,
                const std::string &cacheDir, const std::string &device,
                const std::string &backend);

/// `unrollc export RUN_DIR -o DIR`, or with `exe` `unrollc build RUN_DIR -o
/// EXE`.
int exportCommand(const std::string &runDir, compiler::ExportOptions options,
                  const std::string &exe);

/// The plan of `spec` as JSON text; false after printing diagnostics.
bool planTextOf(const std::string &spec, const DriverOptions &options,
                std::string &planText);

} // namespace unroll::driver
