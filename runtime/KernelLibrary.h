#pragma once
// Kernel libraries written by `unrollc compile` (compiler/export/
// KernelLibrary.h): the generated kernels of one program as a shared
// object, loaded here so that a runtime built without MLIR and Halide runs
// them (`unroll-run`).

#include "abi/RuntimeAPI.h"

#include <memory>
#include <string>

namespace unroll::runtime {

/// A loaded kernel library. It stays mapped for the life of the process
/// (never closed): OpenMP's and CUDA's threads and handlers may outlive
/// this object.
class KernelLibrary {
public:
  /// Loads `path` and checks that it was compiled for this runtime's
  /// interface and from the program `planText`. Throws RunError saying
  /// what to do otherwise.
  static std::unique_ptr<KernelLibrary> open(const std::string &path,
                                             const std::string &planText);

  const unroll_kernels *kernels() const { return &library_->kernels; }
  /// The Halide target it was compiled for.
  std::string target() const { return library_->target; }
  const std::string &path() const { return path_; }

private:
  KernelLibrary(std::string path, const unroll_kernel_library *library)
      : path_(std::move(path)), library_(library) {}
  std::string path_;
  const unroll_kernel_library *library_;
};

} // namespace unroll::runtime
