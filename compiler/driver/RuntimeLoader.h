#pragma once
#include "abi/RuntimeAPI.h"

#include <string>

namespace unroll::driver {

/// The runtime shared library, loaded with dlopen on first use.
class RuntimeLibrary {
public:
  /// Loads it from $UNROLL_RUNTIME_LIB, else next to the driver
  /// (build/lib/ or ../lib/). Returns null and sets `err` on failure.
  static RuntimeLibrary *get(std::string &err);

  /// LibTorch's description, from unroll_runtime_describe.
  std::string describe() const;

  /// CUDA devices the runtime can use (unroll_runtime_cuda_devices).
  int cudaDevices() const;

  /// unroll_runtime_train / unroll_runtime_eval: the exit status; `err`
  /// receives the message of a failure.
  /// `kernels` null: eager execution of fused ops.
  int train(const std::string &plan, const std::string &options,
            const unroll_kernels *kernels, std::string &err) const;
  int eval(const std::string &options, const unroll_kernels *kernels,
           std::string &err) const;

  /// unroll_runtime_read_params: `fn` gets every parameter of the run's
  /// best checkpoint.
  int readParams(const std::string &runDir, unroll_param_fn fn, void *ctx,
                 std::string &err) const;

private:
  void *handle_ = nullptr;
  int (*readParams_)(const char *, unroll_param_fn, void *, char *,
                     int) = nullptr;
  int (*describe_)(char *, int) = nullptr;
  int (*train_)(const char *, const char *, const unroll_kernels *, char *,
                int) = nullptr;
  int (*eval_)(const char *, const unroll_kernels *, char *, int) = nullptr;
  int (*cudaDevices_)() = nullptr;
};

} // namespace unroll::driver
