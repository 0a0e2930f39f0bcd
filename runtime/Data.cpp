#include "runtime/Data.h"

#include "runtime/Plan.h"

namespace unroll::runtime {

SparseCodingData syntheticSparse(int64_t n, int64_t p, int64_t d,
                                 double density, double noise, uint64_t seed) {
  if (n < 1 || p < 1 || d < 1)
    throw PlanError("synthetic_sparse needs positive sizes");
  if (density < 0 || density > 1)
    throw PlanError("synthetic_sparse: density must be in [0, 1], got " +
                    std::to_string(density));
  if (noise < 0)
    throw PlanError("synthetic_sparse: noise must be non-negative");
  torch::NoGradGuard noGrad;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  SparseCodingData out;
  out.D = torch::randn({p, d}, gen);
  out.D = out.D / out.D.norm(2, {0}, /*keepdim=*/true);
  torch::Tensor support = torch::rand({n, d}, gen) < density;
  out.codes = torch::randn({n, d}, gen) * support;
  out.x = out.codes.matmul(out.D.t()) + noise * torch::randn({n, p}, gen);
  return out;
}

} // namespace unroll::runtime
