#pragma once
// Targets by a classical solver, and primal-dual training (Algorithm 1 of
// the constrained-unrolling paper) over a plan's algorithm.

#include "runtime/Data.h"
#include "runtime/Executor.h"
#include "runtime/Optimizer.h"
#include "runtime/Safetensors.h"

#include <functional>
#include <memory>
#include <optional>

namespace unroll::runtime {

/// `v` ([batch, shape...]) projected onto a variable's set by the plan's
/// projection `p`.
torch::Tensor project(Executor &ex, const abi::Projection &p,
                      const torch::Tensor &v);

/// FISTA (or ISTA, without `accelerated`) with backtracking on the plan's
/// `solver` split f = g + h: a gradient step on g, then the prox of h by
/// the plan's `proximal` where f has a non-smooth part, then the
/// projection onto y's set where the plan has one (projected gradient),
/// for every instance bound in `ex`;
/// stops when no entry moves more than `tol`. Returns y* as
/// [batch, shape...].
torch::Tensor solveTargets(Executor &ex, int64_t maxIters, double tol,
                           bool accelerated = true);

/// The primal-dual method of Condat and Vu on the plan's `solver` split
/// f = g + h + sum_k c_k h_k(A_k y + b_k): a gradient step on g and the
/// dual terms' A_k^T z_k, the prox of h and y's projection (as in
/// solveTargets), then for every composed term a step on its dual z_k by
/// the Moreau identity and h_k's prox. The steps come from the Lipschitz
/// constant L of grad g and ||K||^2 of the stacked maps, both estimated by
/// power iteration; L doubles where the descent lemma fails. Stops when
/// every entry of the primal and dual residuals of the optimality
/// conditions is below `tol`. Returns y* as [batch, shape...].
torch::Tensor solvePrimalDual(Executor &ex, int64_t maxIters, double tol);

/// ||v||_2 per instance of the minimum-norm subgradient of f = g + w||y||_1
/// at y ([batch, shape...]), from the plan's solver split; for a variable
/// with a set or a non-smooth part other than an l1 term, of the
/// prox-gradient residual y - P(prox_h(y - grad g(y))).
torch::Tensor subgradientNorm(Executor &ex, const torch::Tensor &y);

/// One descent constraint at every layer it covers, per instance.
struct ConstraintValues {
  int64_t firstLayer = 1; // the layer of row 0 (1..L)
  torch::Tensor values;   // C_l as [layers, batch]
};

/// Constraint `c` of the plan at every layer for a forward pass;
/// constraints on step results start at layer 2 (layer 1 has no
/// predecessor to compare with).
ConstraintValues constraintValues(Executor &ex, const ForwardResult &fw,
                                  size_t c);

/// Numerical training went wrong (NaN or Inf); the message names the layer
/// or parameter and the step.
class DivergedError : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

struct TrainOptions {
  int64_t epochs = 1;
  int64_t batch = 16;
  PrimalSettings primal;
  double dualLr = 1e-2;
  bool dualEveryEpoch = true; // false: after every batch
  bool constrained = true;    // false: the unconstrained baseline
  uint64_t seed = 0;
};

struct EpochStats {
  double loss = 0;               // mean primal loss over the batches
  double lr = 0;                 // the primal learning rate of the epoch
  std::vector<double> violation; // mean C_l per constraint and layer
  std::vector<double> lambda;    // multipliers after the epoch
};

/// Where training is within an epoch, for progress output.
struct BatchProgress {
  int64_t epoch = 0, batch = 0, batches = 0;
  uint64_t step = 0;
  double loss = 0;
};

/// Algorithm 1: the primal optimizer (Adam by default) on the parameters
/// of `ex` against the
/// Lagrangian loss + sum_l lambda_l mean(C_l), projected ascent on the
/// multipliers. Epoch `e` depends only on the seed, `e` and the state at
/// its start, so a run resumed from a checkpoint continues exactly as the
/// uninterrupted run would have.
class PrimalDual {
public:
  PrimalDual(Executor &ex, const TrainOptions &opts);
  ~PrimalDual();

  /// Trains one epoch on `data` with targets `targets` ([n, shape...], bound
  /// to the plan's first target). `onBatch` runs after every batch; when it
  /// returns false the epoch stops early and nullopt is returned (the
  /// parameters then hold a partial epoch). Throws DivergedError.
  std::optional<EpochStats>
  epoch(int64_t e, const Split &data, const torch::Tensor &targets,
        const std::function<bool(const BatchProgress &)> &onBatch = {});

  /// Multipliers, [constraint][layer - 1].
  const std::vector<std::vector<double>> &lambda() const { return lambda_; }

  /// Parameters, multipliers and the optimizer's state as named tensors
  /// ("adam.param.W.exp_avg", "sgd.param.W.momentum_buffer").
  void save(TensorFile &f) const;
  /// Restores what save wrote; throws FileError naming what does not match
  /// this program (a checkpoint of another spec).
  void load(const TensorFile &f);

  /// Checkpoint name of a plan parameter ("param.Wu.3", "param.D").
  static std::string paramKey(const abi::Param &param);

private:
  Executor &ex_;
  TrainOptions opts_;
  std::unique_ptr<PrimalOptimizer> primal_;
  std::vector<std::vector<double>> lambda_;
};

/// Trains for opts.epochs epochs from the current parameters (a
/// convenience over PrimalDual for tests and tools).
std::vector<EpochStats>
train(Executor &ex, const std::map<std::string, torch::Tensor> &data,
      const torch::Tensor &targets, const TrainOptions &opts,
      const std::function<void(int64_t, const EpochStats &)> &progress = {});

} // namespace unroll::runtime
