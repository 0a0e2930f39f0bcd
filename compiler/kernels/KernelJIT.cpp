#include "compiler/kernels/KernelJIT.h"

#include <omp.h>

#include <atomic>
#include <climits>
#include <cstring>
#include <string>

namespace unroll::compiler {

namespace {

/// A Halide view of a runtime tensor (no copy); Halide's dimension 0 is
/// the innermost, so the axes are reversed.
Halide::Buffer<float> view(const unroll_tensor &t) {
  std::vector<halide_dimension_t> dims;
  for (int d = t.rank - 1; d >= 0; --d)
    dims.push_back({0, static_cast<int32_t>(t.sizes[d]),
                    static_cast<int32_t>(t.strides[d])});
  return Halide::Buffer<float>(t.data, t.rank, dims.data());
}

/// Halide's parallel loops on OpenMP's threads: LibTorch and OpenBLAS use
/// the same (libgomp) pool, and a second pool of spinning threads next to
/// it made a 12,800-element kernel five times slower on two cores.
int parallelFor(Halide::JITUserContext *ctx,
                int (*task)(Halide::JITUserContext *, int, uint8_t *), int min,
                int extent, uint8_t *closure) {
  std::atomic<int> status{0};
#pragma omp parallel for schedule(static) if (extent > 1 && !omp_in_parallel())
  for (int i = min; i < min + extent; ++i)
    if (int r = task(ctx, i, closure))
      status = r;
  return status;
}

void fail(const std::string &msg, char *err, int32_t size) {
  if (err && size > 0) {
    size_t n = std::min(msg.size(), static_cast<size_t>(size - 1));
    std::memcpy(err, msg.data(), n);
    err[n] = '\0';
  }
}

} // namespace

JitKernels::JitKernels(const abi::Plan &plan)
    : target_(Halide::get_jit_target_from_environment()) {
  // Two sets of Funcs: a Func scheduled for one pipeline cannot be
  // compiled into another.
  std::vector<FusedKernel> back = buildKernels(plan);
  size_t i = 0;
  for (FusedKernel &k : buildKernels(plan)) {
    scheduleForwardCpu(k, target_);
    k.forward.jit_handlers().custom_do_par_for = parallelFor;
    k.forward.compile_jit(target_);
    Halide::Func all = adjointsCpu(back[i++], target_);
    all.jit_handlers().custom_do_par_for = parallelFor;
    all.compile_jit(target_);
    int64_t id = k.id;
    adjoints_.emplace(id, all);
    backward_.emplace(id, std::move(back[i - 1]));
    kernels_.emplace(id, std::move(k));
  }
  // Compiled by their first realize: Adam's compile is a cost that `eval`,
  // which never updates parameters, need not pay, and a normal draw's only
  // where a spec draws (noise, a random initial state).
  scheduleAdamCpu(adam_, target_);
  adam_.update.jit_handlers().custom_do_par_for = parallelFor;
  scheduleNoiseCpu(noise_, target_);
  noise_.normal.jit_handlers().custom_do_par_for = parallelFor;
  noise_.uniform.jit_handlers().custom_do_par_for = parallelFor;
  abi_.run = &JitKernels::run;
  abi_.ctx = this;
  abi_.adam = &JitKernels::adam;
  abi_.noise = &JitKernels::noise;
  abi_.device = UNROLL_KERNELS_CPU;
}

namespace {

/// Whether `t` is a dense rank-1 tensor of `n` elements.
bool flat(const unroll_tensor &t, int64_t n) {
  return t.rank == 1 && t.sizes[0] == n && t.strides[0] == 1;
}

} // namespace

int JitKernels::adam(void *ctx, const unroll_tensor *param,
                     const unroll_tensor *grad, const unroll_tensor *expAvg,
                     const unroll_tensor *expAvgSq, const unroll_adam_step *h,
                     char *err, int32_t errSize) {
  auto *self = static_cast<JitKernels *>(ctx);
  const int64_t n = param->sizes[0];
  if (!flat(*param, n) || !flat(*grad, n) || !flat(*expAvg, n) ||
      !flat(*expAvgSq, n) || n > INT32_MAX) {
    fail("the Adam kernel takes dense rank-1 tensors of one length", err,
         errSize);
    return 1;
  }
  AdamKernel &k = self->adam_;
  try {
    k.param.set(view(*param));
    k.grad.set(view(*grad));
    k.expAvg.set(view(*expAvg));
    k.expAvgSq.set(view(*expAvgSq));
    k.stepSize.set(h->step_size);
    k.bias2Sqrt.set(h->bias2_sqrt);
    k.beta1.set(h->beta1);
    k.beta2.set(h->beta2);
    k.eps.set(h->eps);
    k.weightDecay.set(h->weight_decay);
    k.oneMinusBeta1.set(h->one_minus_beta1);
    k.oneMinusBeta2.set(h->one_minus_beta2);
    // In place: every element is read before it is written, by the same
    // lane.
    std::vector<Halide::Buffer<>> outs{view(*param), view(*expAvg),
                                       view(*expAvgSq)};
    Halide::Realization r(outs);
    k.update.realize(r, self->target_);
  } catch (const Halide::Error &e) {
    fail(std::string("the Adam kernel: ") + e.what(), err, errSize);
    return 1;
  }
  return 0;
}

int JitKernels::noise(void *ctx, const unroll_tensor *words,
                      const unroll_tensor *out, const unroll_noise_draw *h,
                      char *err, int32_t errSize) {
  auto *self = static_cast<JitKernels *>(ctx);
  const int64_t n = out->sizes[0];
  const int64_t need = unroll_noise_words(h->normal, n);
  if (!flat(*out, n) || !flat(*words, need) || n > INT32_MAX - 16 ||
      (h->normal && n < 16)) {
    fail("the noise kernel takes a dense rank-1 output (of at least 16 "
         "elements for a normal draw) and as many words as the draw takes",
         err, errSize);
    return 1;
  }
  NoiseKernel &k = self->noise_;
  try {
    k.words.set(view(*words));
    k.shift.set(h->shift);
    k.scale.set(h->scale);
    // The last need - n elements come from the words after the first n.
    k.tailStart.set(static_cast<int32_t>(n - (need - n)));
    Halide::Buffer<float> o = view(*out);
    (h->normal ? k.normal : k.uniform).realize(o, self->target_);
  } catch (const Halide::Error &e) {
    fail(std::string("the noise kernel: ") + e.what(), err, errSize);
    return 1;
  }
  return 0;
}

int JitKernels::run(void *ctx, int64_t kernel, int32_t operand,
                    const unroll_tensor *operands, int32_t nOperands,
                    const unroll_tensor *dresult, const unroll_tensor *out,
                    char *err, int32_t errSize) {
  auto *self = static_cast<JitKernels *>(ctx);
  auto it = self->kernels_.find(kernel);
  if (it == self->kernels_.end()) {
    fail("no kernel " + std::to_string(kernel), err, errSize);
    return 1;
  }
  FusedKernel &k = it->second;
  const int32_t nOut = operand == UNROLL_KERNEL_ALL_ADJOINTS ? nOperands : 1;
  bool outRanks = true;
  for (int32_t i = 0; i < nOut; ++i)
    outRanks &= out[i].rank ==
                (operand == UNROLL_KERNEL_VALUE ? k.rank : k.operandRank);
  if (nOperands != static_cast<int32_t>(k.inputs.size()) || !outRanks ||
      operand >= nOperands || operand < UNROLL_KERNEL_ALL_ADJOINTS ||
      (operand != UNROLL_KERNEL_VALUE && !dresult)) {
    fail("kernel " + k.name + " called with the wrong operands", err, errSize);
    return 1;
  }
  // The backward pipeline has Funcs and parameters of its own.
  FusedKernel &src =
      operand == UNROLL_KERNEL_VALUE ? k : self->backward_.at(kernel);
  try {
    for (int32_t i = 0; i < nOperands; ++i) {
      if (operands[i].rank != k.operandRank) {
        fail("kernel " + k.name + ": operand " + std::to_string(i) +
                 " has rank " + std::to_string(operands[i].rank) +
                 ", expected " + std::to_string(k.operandRank),
             err, errSize);
        return 1;
      }
      src.inputs[i].set(view(operands[i]));
    }
    if (operand == UNROLL_KERNEL_VALUE) {
      Halide::Buffer<float> o = view(*out);
      k.forward.realize(o, self->target_);
    } else {
      // One adjoint alone is computed with the others into scratch.
      std::vector<Halide::Buffer<>> outs;
      for (int32_t i = 0; i < nOperands; ++i) {
        if (operand == UNROLL_KERNEL_ALL_ADJOINTS)
          outs.push_back(view(out[i]));
        else if (i == operand)
          outs.push_back(view(*out));
        else
          outs.push_back(Halide::Buffer<float>::make_with_shape_of(view(*out)));
      }
      src.gradOutput.set(view(*dresult));
      Halide::Realization r(outs);
      self->adjoints_.at(kernel).realize(r, self->target_);
    }
  } catch (const Halide::Error &e) {
    fail("kernel " + k.name + ": " + e.what(), err, errSize);
    return 1;
  }
  return 0;
}

} // namespace unroll::compiler
