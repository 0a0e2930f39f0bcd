#pragma once
// `unrollc compile SPEC -o DIR`: the generated training kernels of a
// program compiled ahead of time by Halide into one shared library that
// the runtime loads (runtime/KernelLibrary.h), so that a machine without
// MLIR and Halide (a GPU machine with only LibTorch) runs them. The library
// exports UNROLL_KERNEL_LIBRARY_SYMBOL (abi/RuntimeAPI.h), stamped
// with the program's plan hash; Halide's runtime is inside it.

#include <nlohmann/json.hpp>

#include <ostream>
#include <string>

namespace unroll::compiler {

struct KernelLibraryOptions {
  /// "host" (the machine's CPU; with Adam's update) or "host-cuda" (every
  /// kernel on the GPU, reading and writing device memory, for compute
  /// capability `cudaCapability`).
  std::string target = "host";
  int cudaCapability = 75;
  /// The command the progress lines are prefixed with.
  std::string command = "compile";
};

/// What was compiled.
struct KernelLibrarySummary {
  size_t kernels = 0;   ///< fused kernels
  size_t pipelines = 0; ///< Halide pipelines (forward, adjoints, Adam, noise)
  std::string target;   ///< Halide's target string
};

/// Compiles every fused kernel of `planText` (forward, and all adjoints in
/// one pass) and, for the host, Adam's update, into the
/// shared library `soPath`, written atomically. Needs a C++ compiler
/// (`c++`) on the PATH. Throws ExportError for an unknown target or a
/// failing tool; InternalError if a CUDA pipeline would touch device data
/// on the host.
KernelLibrarySummary buildKernelLibrary(const std::string &planText,
                                        const std::string &soPath,
                                        const KernelLibraryOptions &opts,
                                        std::ostream &log);

} // namespace unroll::compiler
