#pragma once
// `unrollc export RUN_DIR -o DIR`: the trained forward pass compiled ahead
// of time by Halide, with the weights inside, behind a small C interface:
//   DIR/include/NAME.h                  the C API (no Halide types)
//   DIR/lib/libNAME.a, DIR/lib/libNAME.so.MAJOR (and libNAME.so, a link)
//   DIR/lib/cmake/NAME/NAMEConfig.cmake  targets NAME::NAME, NAME::shared
//   DIR/lib/cmake/NAME/NAMEConfigVersion.cmake
// Neither LibTorch, MLIR nor Halide is needed to use it.

#include "compiler/export/InferenceLowering.h"
#include "compiler/export/Tool.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <map>
#include <ostream>
#include <string>
#include <vector>

namespace unroll::compiler {

struct ExportOptions {
  std::string outDir;
  /// "host" (the machine's CPU) or "host-cuda" (layers as CUDA kernels,
  /// PTX for compute capability 7.5; arrays stay in host memory).
  std::string target = "host";
  /// C identifier prefix; default: the algorithm's name.
  std::string name;
  /// Where the run came from, written into the header's comment.
  std::string runDir;
  /// The command the progress lines are prefixed with.
  std::string command = "export";
  /// How the layers are compiled: "none", one Halide pipeline for all of
  /// them (the fastest at small batches); "layers", a pipeline per layer
  /// (Halide's compile time grows with the square of a pipeline's size);
  /// "auto", per layer when the layers hold more than kSplitOps ops.
  std::string split = "auto";
  /// Threads compiling the layers' pipelines at once (split per layer);
  /// 0: one per core.
  int jobs = 0;
  /// The model's version, MAJOR.MINOR.PATCH: the CMake package's version
  /// and, its major number, the shared library's SONAME (libNAME.so.MAJOR).
  std::string version = "1.0.0";
};

/// Whether `v` is MAJOR.MINOR.PATCH, each a number.
bool validVersion(const std::string &v);

/// The major number of a version MAJOR.MINOR.PATCH.
std::string majorOf(const std::string &version);

/// The shared library's file name and SONAME: libNAME.so.MAJOR.
std::string sharedLibraryName(const std::string &name,
                              const std::string &version);

/// Ops in all layers (with those of fused regions) above which `--split
/// auto` compiles a pipeline per layer. Halide's compile time grows with
/// the square of a pipeline's size, so big programs (GLOW-Prox, SURF)
/// split; small ones (LISTA) stay whole, which runs them faster at large
/// batches (docs/performance.md has the figures).
constexpr int64_t kSplitOps = 200;

/// What an export produced: enough to write a program against it.
struct ExportSummary {
  std::string name; ///< the C prefix
  struct Input {
    std::string name, identifier;
    std::vector<int64_t> shape; ///< per instance when batched
    bool batched = false;
    std::string note; ///< what the caller supplies, if not a spec input
  };
  std::vector<Input> inputs; ///< in the order of NAME_run's arguments
  struct State {
    std::string name;
    std::string out, layers;    ///< NAME_run's argument names for it
    std::string macro;          ///< NAME_..._OUTPUT_SIZE
    std::vector<int64_t> shape; ///< per instance
  };
  /// The state variables, in the order of NAME_run's outputs: `out` and
  /// `layers` for one; `<state>_out` ... for more.
  std::vector<State> states;
  int64_t layers = 0;
  std::string includeDir, staticLibrary, sharedLibrary, cmakeConfig;
};

/// Lowers, compiles and packages the trained algorithm of `plan` with
/// parameters `params` (checkpoint names). Needs a C compiler (`cc`) and
/// `ar` on the PATH. Throws ExportError.
ExportSummary
exportModel(const abi::Plan &plan,
            const std::map<std::string, Halide::Buffer<float>> &params,
            const ExportOptions &opts, std::ostream &log);

/// `unrollc build RUN_DIR -o EXE`: exports into a scratch directory and
/// links a standalone executable against the static library. It reads
/// the inputs from .npy files (float32 or float64, C order, batch first
/// for per-instance inputs) and writes the final state, and optionally
/// every layer's, as float32 .npy; it needs no LibTorch, MLIR or Halide.
/// Throws ExportError.
void buildExecutable(const abi::Plan &plan,
                     const std::map<std::string, Halide::Buffer<float>> &params,
                     const std::string &exePath, const ExportOptions &opts,
                     std::ostream &log);

} // namespace unroll::compiler
