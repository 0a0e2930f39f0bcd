#pragma once
// `unrollc export RUN_DIR -o DIR`: the trained forward pass compiled ahead
// of time by Halide, with the weights inside, behind a small C interface:
//   DIR/include/NAME.h                  the C API (no Halide types)
//   DIR/lib/libNAME.a, DIR/lib/libNAME.so
//   DIR/lib/cmake/NAME/NAMEConfig.cmake  targets NAME::NAME, NAME::shared
// Neither LibTorch, MLIR nor Halide is needed to use it.

#include "compiler/kernels/InferenceLowering.h"

#include <nlohmann/json.hpp>

#include <map>
#include <ostream>
#include <string>

namespace unroll::compiler {

struct ExportOptions {
  std::string outDir;
  /// "host" (the machine's CPU); other targets are refused for now.
  std::string target = "host";
  /// C identifier prefix; default: the algorithm's name.
  std::string name;
  /// Where the run came from, written into the header's comment.
  std::string runDir;
};

/// Lowers, compiles and packages the trained algorithm of `plan` with
/// parameters `params` (checkpoint names). Needs a C compiler (`cc`) and
/// `ar` on the PATH. Throws ExportError.
void exportModel(const nlohmann::json &plan,
                 const std::map<std::string, Halide::Buffer<float>> &params,
                 const ExportOptions &opts, std::ostream &log);

} // namespace unroll::compiler
