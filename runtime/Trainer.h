#pragma once
// Targets by a classical solver, and primal-dual training (Algorithm 1 of
// the constrained-unrolling paper) over a plan's algorithm.

#include "runtime/Executor.h"

#include <functional>

namespace unroll::runtime {

/// FISTA with backtracking on the plan's `solver` split f = g + w ||y||_1,
/// for every instance bound in `ex`; returns y* as [batch, shape...].
torch::Tensor solveTargets(Executor &ex, int64_t maxIters, double tol);

struct TrainOptions {
  int64_t epochs = 1;
  int64_t batch = 16;
  double primalLr = 1e-3;
  double dualLr = 1e-2;
  bool dualEveryEpoch = true; // false: after every batch
  bool constrained = true;    // false: the unconstrained baseline
  uint64_t seed = 0;
};

struct EpochStats {
  double loss = 0;
  std::vector<double> violation; // mean C_l per constrained layer
  std::vector<double> lambda;    // multipliers after the epoch
};

/// Trains the parameters of `ex` on `data` (data inputs with N instances;
/// given inputs shared) whose targets are `targets` ([N, shape...], bound to
/// the plan's first target). Reports each epoch through `progress`.
std::vector<EpochStats>
train(Executor &ex, const std::map<std::string, torch::Tensor> &data,
      const torch::Tensor &targets, const TrainOptions &opts,
      const std::function<void(int64_t, const EpochStats &)> &progress = {});

} // namespace unroll::runtime
