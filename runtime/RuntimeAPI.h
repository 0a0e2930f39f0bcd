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
#define UNROLL_RUNTIME_ABI_VERSION 2
UNROLL_RUNTIME_API int unroll_runtime_abi_version(void);

/// Writes a NUL-terminated description of the LibTorch in use (after
/// exercising it once) into `buf` of `size` bytes; returns the length it
/// needed, excluding the NUL.
UNROLL_RUNTIME_API int unroll_runtime_describe(char *buf, int size);

/// `unrollc train`: trains the plan (JSON text) into a run directory.
/// `options_json` holds run_dir, resume, spec, settings, cache_dir,
/// interactive and device (see runtime/Run.h). Progress goes to stderr. Returns
/// the exit status: 0 done, 1 error (message in `err`, NUL-terminated,
/// truncated to `err_size`), 130 interrupted with the last checkpoint kept.
UNROLL_RUNTIME_API int unroll_runtime_train(const char *plan_json,
                                            const char *options_json, char *err,
                                            int err_size);

/// `unrollc eval`: `options_json` holds run_dir, ood, perturb, baseline,
/// cache_dir and device. Same conventions as unroll_runtime_train.
UNROLL_RUNTIME_API int unroll_runtime_eval(const char *options_json, char *err,
                                           int err_size);

#ifdef __cplusplus
}
#endif
