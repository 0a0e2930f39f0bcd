#pragma once
// The Halide kernels of a training step that do not come from a plan's
// fused ops: Adam's update over all parameters in one pass, elementwise
// over flat buffers; the JIT (KernelJIT.cpp) schedules and compiles it.

#include <Halide.h>

#include <cstdint>

namespace unroll::compiler {

/// Adam (LibTorch's update, without amsgrad) over rank-1 buffers of equal
/// length: `update` is Tuple(param, exp_avg, exp_avg_sq) after one step,
/// meant to be realized into the buffers it reads.
struct AdamKernel {
  AdamKernel();
  Halide::ImageParam param, grad, expAvg, expAvgSq;
  /// lr / (1 - beta1^t) and sqrt(1 - beta2^t) for step t.
  Halide::Param<float> stepSize, bias2Sqrt;
  Halide::Param<float> beta1, beta2, eps, weightDecay;
  /// 1 - beta1, 1 - beta2 (rounded from double by the caller).
  Halide::Param<float> oneMinusBeta1, oneMinusBeta2;
  Halide::Func update;
};

} // namespace unroll::compiler
