#pragma once
// The primal step of training: Adam, AdamW or SGD (with momentum and
// Nesterov's variant) from LibTorch, with a learning-rate schedule; or,
// for Adam and AdamW where the program's compiled kernels provide one, a
// single Adam kernel over every parameter held in one flat buffer
// (LibTorch's runs about eight small ops per parameter tensor, which at
// LISTA's default size cost more than the update itself).

#include "runtime/Executor.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace unroll::runtime {

/// The primal optimizer: its kind, hyper-parameters and learning-rate
/// schedule.
struct PrimalSettings {
  enum class Kind { Adam, AdamW, Sgd };
  /// How the learning rate changes from epoch to epoch.
  enum class Schedule { Constant, Step, Cosine };

  Kind kind = Kind::Adam;
  double lr = 1e-3;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8; ///< Adam's and AdamW's
  /// In the gradient (Adam, SGD), or decoupled from it (AdamW).
  double weightDecay = 0;
  double momentum = 0;   ///< SGD's
  bool nesterov = false; ///< SGD's
  Schedule schedule = Schedule::Constant;
  int64_t every = 1;  ///< step: epochs between decays
  double gamma = 0.1; ///< step: the factor of each decay
  double minLr = 0;   ///< cosine: the rate at the end of the run

  /// The learning rate of epoch `epoch` (0-based) of a run of `epochs`:
  /// lr, lr * gamma^floor(epoch / every), or minLr + (lr - minLr)(1 +
  /// cos(pi epoch / epochs)) / 2.
  double lrAt(int64_t epoch, int64_t epochs) const;
  /// The optimizer's name in specs and checkpoints ("adam", "adamw", "sgd").
  const char *name() const;
};

class PrimalOptimizer {
public:
  virtual ~PrimalOptimizer() = default;

  /// The optimizer `s` asks for over the parameters of `ex` (initialised
  /// already). Adam and AdamW use the compiled kernel where `ex` has
  /// kernels with one and its parameters are on the CPU: it moves the
  /// parameters into one buffer and gives them gradients that are views of
  /// another; ex.params() then holds the new tensors.
  static std::unique_ptr<PrimalOptimizer> make(Executor &ex,
                                               const PrimalSettings &s);

  /// Zeroes every parameter's gradient.
  virtual void zeroGrad() = 0;
  /// One update from the gradients. Throws PlanError if a kernel fails.
  virtual void step() = 0;
  /// Sets the learning rate of the steps that follow.
  virtual void setLr(double lr) = 0;
  /// The names of a parameter's state tensors (Adam: exp_avg, exp_avg_sq,
  /// step; SGD with momentum: momentum_buffer; plain SGD: none).
  virtual std::vector<std::string> stateNames() const = 0;
  /// The state of parameter `id` (a plan id) by name, or empty before its
  /// first step.
  virtual std::map<std::string, torch::Tensor> state(int64_t id) const = 0;
  /// Replaces the state of parameter `id`: every name of stateNames().
  virtual void setState(int64_t id,
                        const std::map<std::string, torch::Tensor> &s) = 0;
  /// Every parameter in one tensor where they share one (so that one
  /// check covers them all); undefined otherwise.
  virtual torch::Tensor allParams() const { return {}; }
};

} // namespace unroll::runtime
