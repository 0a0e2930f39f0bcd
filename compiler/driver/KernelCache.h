#pragma once
// The kernel cache: a program's generated kernels compiled once into a
// shared library under $UNROLL_CACHE_DIR/kernels, keyed by the program,
// the target and the unrollc binary, and loaded by the runtime.

#include "compiler/kernels/KernelJIT.h"

#include <memory>
#include <string>

namespace unroll::driver {

/// The kernels of `planText` for `device`: the path of a kernel library
/// for the host, or for CUDA where `device` asks for a GPU and `gpus` > 0,
/// built now unless the cache holds it. Empty for the eager backend, and
/// for CUDA without a GPU (the runtime refuses that device). Where no
/// library can be built for the host (no C++ compiler), the kernels are
/// JIT-compiled into `jit` instead, with a warning. Throws ExportError.
std::string kernelLibraryFor(const std::string &planText,
                             const std::string &backend,
                             const std::string &device,
                             const std::string &cacheDir, int gpus,
                             std::unique_ptr<compiler::JitKernels> &jit);

} // namespace unroll::driver
