#include "compiler/kernels/TrainingKernels.h"

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

} // namespace unroll::compiler
