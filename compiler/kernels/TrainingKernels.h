#pragma once
// The Halide kernels of a training step that do not come from a plan's
// fused ops (Adam's update over all parameters in one pass, elementwise
// over flat buffers), and the schedules of every training kernel for the
// CPU and for CUDA, shared by the JIT (KernelJIT.cpp), the ahead-of-time
// kernel libraries (KernelLibrary.cpp) and the PTX printer.

#include "compiler/kernels/HalideKernels.h"

#include <Halide.h>

#include <cstdint>

namespace unroll::compiler {

/// Which adjoints a kernel's backward pipeline computes: every operand's
/// (one Tuple-valued Func) or one operand's.
constexpr int kAllAdjoints = -1;

/// Schedules a fused kernel's forward pipeline for the CPU of `target`
/// (with a reduction's per-instance sum, parallel and vectorised).
void scheduleForwardCpu(FusedKernel &k, const Halide::Target &target);

/// The output Func of a fused kernel's backward pipeline on the CPU: the
/// adjoint of operand `which`, or with kAllAdjoints all of them as one
/// Tuple (one pass over the data). Scheduled for `target`. Call on a
/// kernel whose forward pipeline is not compiled in the same Halide
/// pipeline (buildKernels gives fresh Funcs each time).
Halide::Func adjointsCpu(FusedKernel &k, const Halide::Target &target,
                         int which = kAllAdjoints);

/// Schedules a fused kernel's forward pipeline one GPU thread per element
/// (a reduction's sum one thread per instance, in a kernel of its own).
void scheduleForwardGpu(FusedKernel &k);

/// As adjointsCpu, one GPU thread per element.
Halide::Func adjointsGpu(FusedKernel &k, int which = kAllAdjoints);

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

/// Schedules Adam's update for the CPU: blocks among the threads,
/// vectorised within.
void scheduleAdamCpu(AdamKernel &k, const Halide::Target &target);

/// A draw of training noise from LibTorch's CPU generator's words (see
/// unroll_noise_fn in abi/RuntimeAPI.h): `normal` and `uniform` are
/// shift + scale * z over the output's extent, z made of `words` as
/// torch::randn and torch::rand make it. The words' bits come as floats
/// (the kernels' one element type) and are reinterpreted, never converted.
struct NoiseKernel {
  NoiseKernel();
  Halide::ImageParam words;
  Halide::Param<float> shift, scale;
  /// The first element of the normal draw's last group of 16 when the
  /// length n is not a multiple of 16 (n - 16: those come from words n to
  /// n + 15), else n.
  Halide::Param<int32_t> tailStart;
  Halide::Func normal, uniform;
};

/// Schedules both draws for the CPU: blocks among the threads, vectorised
/// within.
void scheduleNoiseCpu(NoiseKernel &k, const Halide::Target &target);

} // namespace unroll::compiler
