#pragma once
// Adam as the primal step of training: LibTorch's optimizer, or, where the
// program's compiled kernels provide one, a single Adam kernel over every
// parameter held in one flat buffer (LibTorch's runs about eight small ops
// per parameter tensor, which at LISTA's default size cost more than the
// update itself).

#include "runtime/Executor.h"

#include <memory>
#include <optional>

namespace unroll::runtime {

/// Adam's hyper-parameters (LibTorch's defaults for eps).
struct AdamSettings {
  double lr = 1e-3;
  double beta1 = 0.9, beta2 = 0.999;
  double eps = 1e-8;
  double weightDecay = 0;
};

/// One parameter's Adam state.
struct AdamMoments {
  torch::Tensor expAvg, expAvgSq;
  int64_t step = 0;
};

class PrimalAdam {
public:
  virtual ~PrimalAdam() = default;

  /// Adam over the parameters of `ex` (initialised already): the compiled
  /// kernel where `ex` has kernels with one and its parameters are on the
  /// CPU, LibTorch's optimizer otherwise. The compiled one moves the
  /// parameters into one buffer and gives them gradients that are views
  /// of another; ex.params() then holds the new tensors.
  static std::unique_ptr<PrimalAdam> make(Executor &ex, const AdamSettings &s);

  /// Zeroes every parameter's gradient.
  virtual void zeroGrad() = 0;
  /// One update from the gradients. Throws PlanError if a kernel fails.
  virtual void step() = 0;
  /// The state of parameter `id` (a plan id), or nullopt before its first
  /// step.
  virtual std::optional<AdamMoments> moments(int64_t id) const = 0;
  /// Replaces the state of parameter `id` (moments of its shape).
  virtual void setMoments(int64_t id, const AdamMoments &m) = 0;
  /// Every parameter in one tensor where they share one (so that one
  /// check covers them all); undefined otherwise.
  virtual torch::Tensor allParams() const { return {}; }
};

} // namespace unroll::runtime
