#include "compiler/kernels/TrainingKernels.h"

#include "compiler/kernels/CudaKernels.h"

#include <cmath>

namespace unroll::compiler {

using Halide::Expr;

AdamKernel::AdamKernel()
    : param(Halide::Float(32), 1, "adam_param"),
      grad(Halide::Float(32), 1, "adam_grad"),
      expAvg(Halide::Float(32), 1, "adam_exp_avg"),
      expAvgSq(Halide::Float(32), 1, "adam_exp_avg_sq"),
      stepSize("adam_step_size"), bias2Sqrt("adam_bias2_sqrt"),
      beta1("adam_beta1"), beta2("adam_beta2"), eps("adam_eps"),
      weightDecay("adam_weight_decay"), oneMinusBeta1("adam_one_minus_beta1"),
      oneMinusBeta2("adam_one_minus_beta2"), update("adam_update") {
  Halide::Var i("i");
  // The order of LibTorch's in-place ops, so that both round alike:
  // m = m * b1 + (1 - b1) g; v = v * b2 + (1 - b2) g g;
  // p = p - step_size * m / (sqrt(v) / bias2_sqrt + eps).
  Expr g = grad(i) + weightDecay * param(i);
  Expr m = expAvg(i) * beta1 + oneMinusBeta1 * g;
  Expr v = expAvgSq(i) * beta2 + oneMinusBeta2 * (g * g);
  Expr denom = Halide::sqrt(v) / bias2Sqrt + eps;
  update(i) = Halide::Tuple(param(i) - stepSize * (m / denom), m, v);
}

namespace {

/// LibTorch's uniform float of a generator word: its low 24 bits times
/// 2^-24 (at::uniform_real_distribution<float>).
Expr uniformOf(Expr word) {
  return Halide::cast<float>(word & 0xffffff) * (1.0f / (1 << 24));
}

} // namespace

NoiseKernel::NoiseKernel()
    : words(Halide::Float(32), 1, "noise_words"), shift("noise_shift"),
      scale("noise_scale"), tailStart("noise_tail_start"),
      normal("noise_normal"), uniform("noise_uniform") {
  Halide::Var i("i");
  auto word = [&](Expr k) {
    return Halide::reinterpret(Halide::UInt(32), words(k));
  };
  uniform(i) = shift + scale * uniformOf(word(i));
  // torch::randn of a contiguous float tensor (normal_fill_16_AVX2): in
  // each group of 16 words, element j < 8 is r cos(t) and element j + 8 is
  // r sin(t), r = sqrt(-2 log(1 - u[j])), t = 2 pi u[j + 8]. The last 16
  // elements of a length that is no multiple of 16 are drawn again, from
  // 16 more words. Halide's fast log, sin and cos (the last 5 bits of the
  // mantissa off) vectorise; their draws are within 1e-6 of LibTorch's.
  Expr tail = i >= tailStart;
  Expr group = Halide::select(tail, words.dim(0).extent() - 16, i / 16 * 16);
  Expr j = Halide::select(tail, i - tailStart, i % 16);
  Expr lane = j % 8;
  Expr r = Halide::sqrt(-2.0f *
                        Halide::fast_log(1.0f - uniformOf(word(group + lane))));
  Expr t = static_cast<float>(2 * M_PI) * uniformOf(word(group + 8 + lane));
  normal(i) = shift + scale * (r * Halide::select(j < 8, Halide::fast_cos(t),
                                                  Halide::fast_sin(t)));
  // The words' extent bounds every read (clamped for bounds inference
  // only: the runtime passes as many as the draw takes).
  words.dim(0).set_min(0);
}

} // namespace unroll::compiler

namespace unroll::compiler {

namespace {

/// Vectorised along the innermost axis, parallel along the batch.
void schedule(Halide::Func f, const Halide::Target &target) {
  std::vector<Halide::Var> v = f.args();
  f.vectorize(v[0], target.natural_vector_size<float>(),
              Halide::TailStrategy::GuardWithIf);
  if (v.size() > 1)
    f.parallel(v.back());
}

/// Whether every one of `params` is dense along its innermost axis. The
/// kernels' inputs may be broadcast along it (stride 0), so Halide cannot
/// assume it; where they are not, a specialisation reads them with vector
/// loads instead of gathers.
Expr innerDense(const std::vector<Halide::ImageParam> &params) {
  Expr dense = Halide::Internal::const_true();
  for (const Halide::ImageParam &p : params)
    dense = dense && p.dim(0).stride() == 1;
  return dense;
}

/// The backward pipeline's output: adjoint `which` of `k`, or all as one
/// Tuple. Funcs of adjoints with update definitions (accumulated over
/// several uses) cannot be inlined: `placeAccumulators` puts them.
Halide::Func adjointOutput(FusedKernel &k, int which) {
  Halide::Func out(k.name + (which == kAllAdjoints
                                 ? std::string("_adjoints")
                                 : "_adjoint" + std::to_string(which)));
  std::vector<Halide::Var> vars = k.domainVars;
  std::vector<Expr> at(vars.begin(), vars.end()), parts;
  for (size_t i = 0; i < k.gradInputs.size(); ++i)
    if (which == kAllAdjoints || static_cast<int>(i) == which)
      parts.push_back(k.gradInputs[i](at));
  if (parts.size() == 1)
    out(vars) = parts[0];
  else
    out(vars) = Halide::Tuple(parts);
  return out;
}

void placeAccumulators(FusedKernel &k, int which, Halide::Func out,
                       Halide::Var at) {
  for (size_t i = 0; i < k.gradInputs.size(); ++i)
    if ((which == kAllAdjoints || static_cast<int>(i) == which) &&
        k.gradInputs[i].has_update_definition())
      k.gradInputs[i].compute_at(out, at);
}

} // namespace

namespace {

void scheduleTotalCpu(FusedKernel &k, const Halide::Target &target) {
  // A reduction's per-instance sum first, once, in both directions:
  // parallel over the instances, each sum vectorised along the innermost
  // axis (partial sums per lane, added up at the end).
  if (k.reduces) {
    const int vec = target.natural_vector_size<float>();
    Halide::Var b = k.total.args()[0];
    k.total.compute_root();
    k.total.update().parallel(b, 8, Halide::TailStrategy::GuardWithIf);
    if (!k.domainShape.empty() && k.domainShape.back() % vec == 0) {
      Halide::RVar ro("ro"), ri("ri");
      Halide::Var lane("lane");
      Halide::Func partial =
          k.total.update().split(k.sumDomain.x, ro, ri, vec).rfactor(ri, lane);
      partial.compute_at(k.total, b).vectorize(lane);
      partial.update().vectorize(lane);
      // Operands may be broadcast (stride 0); where all are dense, the
      // lanes read them with vector loads instead of gathers.
      partial.update().specialize(innerDense(k.inputs));
    }
  }
}

} // namespace

void scheduleForwardCpu(FusedKernel &k, const Halide::Target &target) {
  scheduleTotalCpu(k, target);
  schedule(k.forward, target);
  // After scheduling: a specialisation starts from the schedule so far.
  k.forward.specialize(innerDense(k.inputs));
}

Halide::Func adjointsCpu(FusedKernel &k, const Halide::Target &target,
                         int which) {
  scheduleTotalCpu(k, target);
  Halide::Func out = adjointOutput(k, which);
  placeAccumulators(k, which, out, k.domainVars.back());
  schedule(out, target);
  std::vector<Halide::ImageParam> read = k.inputs;
  read.push_back(k.gradOutput);
  out.specialize(innerDense(read));
  return out;
}

namespace {

/// A reduction's sum per instance: one GPU thread per instance sums its
/// domain (instances are many, domains small), in a kernel of its own
/// before the values that read it.
void scheduleTotalGpu(FusedKernel &k) {
  if (!k.reduces)
    return;
  Halide::Var b = k.total.args()[0], block("block"), thread("thread");
  k.total.compute_root().gpu_tile(b, block, thread, 64,
                                  Halide::TailStrategy::GuardWithIf);
  k.total.update().gpu_tile(b, block, thread, 64,
                            Halide::TailStrategy::GuardWithIf);
}

} // namespace

void scheduleForwardGpu(FusedKernel &k) {
  scheduleTotalGpu(k);
  scheduleForGpu(k.forward);
}

Halide::Func adjointsGpu(FusedKernel &k, int which) {
  scheduleTotalGpu(k);
  Halide::Func out = adjointOutput(k, which);
  // An accumulated adjoint per element, inside the thread that reads it.
  placeAccumulators(k, which, out, scheduleForGpu(out));
  return out;
}

void scheduleAdamCpu(AdamKernel &k, const Halide::Target &target) {
  Halide::Var i = k.update.args()[0], block("block"), within("within");
  k.update.split(i, block, within, 8192, Halide::TailStrategy::GuardWithIf)
      .vectorize(within, target.natural_vector_size<float>())
      .parallel(block);
}

void scheduleNoiseCpu(NoiseKernel &k, const Halide::Target &target) {
  for (Halide::Func f : {k.normal, k.uniform}) {
    Halide::Var i = f.args()[0], block("block"), within("within");
    f.split(i, block, within, 4096, Halide::TailStrategy::GuardWithIf)
        .vectorize(within, target.natural_vector_size<float>())
        .parallel(block);
  }
}

} // namespace unroll::compiler
