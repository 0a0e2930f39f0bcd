#pragma once
// The generated kernels of a program, JIT-compiled for the host by Halide
// and handed to the runtime through its C interface (abi/RuntimeAPI.h),
// so that `unrollc train --backend=compiled` runs every fused op with them.

#include "abi/RuntimeAPI.h"
#include "compiler/kernels/HalideKernels.h"
#include "compiler/kernels/TrainingKernels.h"

#include <map>

namespace unroll::compiler {

class JitKernels {
public:
  /// Builds, schedules and compiles every kernel of `plan` for the host.
  explicit JitKernels(const abi::Plan &plan);
  JitKernels(const JitKernels &) = delete;
  JitKernels &operator=(const JitKernels &) = delete;

  /// The runtime's view; valid while this object lives.
  const unroll_kernels *abi() const { return &abi_; }
  size_t size() const { return kernels_.size(); }

private:
  static int run(void *ctx, int64_t kernel, int32_t operand,
                 const unroll_tensor *operands, int32_t nOperands,
                 const unroll_tensor *dresult, const unroll_tensor *out,
                 char *err, int32_t errSize);

  static int adam(void *ctx, const unroll_tensor *param,
                  const unroll_tensor *grad, const unroll_tensor *expAvg,
                  const unroll_tensor *expAvgSq, const unroll_adam_step *h,
                  char *err, int32_t errSize);

  static int noise(void *ctx, const unroll_tensor *words,
                   const unroll_tensor *out, const unroll_noise_draw *h,
                   char *err, int32_t errSize);

  /// Passed to every call: without it each realize re-reads the host.
  Halide::Target target_;
  AdamKernel adam_;
  NoiseKernel noise_;
  std::map<int64_t, FusedKernel> kernels_;
  /// The same kernels again, whose Funcs the backward pipelines read.
  std::map<int64_t, FusedKernel> backward_;
  /// Per kernel, every operand's adjoint as one Tuple-valued Func.
  std::map<int64_t, Halide::Func> adjoints_;
  unroll_kernels abi_{};
};

} // namespace unroll::compiler
