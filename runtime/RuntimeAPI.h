#pragma once
// The C entry points of the runtime shared library. The `unrollc` driver
// loads the library with dlopen only for commands that run programs, so that
// checking and compiling never pay LibTorch's start-up cost, and so that a
// machine without MLIR/Halide can build and use the runtime on its own.

#define UNROLL_RUNTIME_API __attribute__((visibility("default")))

#ifdef __cplusplus
extern "C" {
#endif

/// Version of this C interface; the driver refuses a library with another.
#define UNROLL_RUNTIME_ABI_VERSION 1
UNROLL_RUNTIME_API int unroll_runtime_abi_version(void);

/// Writes a NUL-terminated description of the LibTorch in use (after
/// exercising it once) into `buf` of `size` bytes; returns the length it
/// needed, excluding the NUL.
UNROLL_RUNTIME_API int unroll_runtime_describe(char *buf, int size);

#ifdef __cplusplus
}
#endif
