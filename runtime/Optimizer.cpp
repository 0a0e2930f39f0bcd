#include "runtime/Optimizer.h"

#include <c10/util/string_utils.h>

#include <cmath>
#include <type_traits>

namespace unroll::runtime {

using torch::Tensor;

namespace {

/// Adam's and AdamW's state of one parameter (their LibTorch states have
/// the same accessors).
template <typename State>
std::map<std::string, Tensor> adamState(const State &s) {
  return {{"exp_avg", s.exp_avg()},
          {"exp_avg_sq", s.exp_avg_sq()},
          {"step", torch::tensor(s.step(), torch::kInt64)}};
}

template <typename State>
std::unique_ptr<State> makeAdamState(const std::map<std::string, Tensor> &m,
                                     const Tensor &param) {
  auto s = std::make_unique<State>();
  s->step(m.at("step").item<int64_t>());
  s->exp_avg(m.at("exp_avg").to(param.device()).clone());
  s->exp_avg_sq(m.at("exp_avg_sq").to(param.device()).clone());
  return s;
}

/// One of LibTorch's optimizers, `Opt` with per-parameter `State`.
template <typename Opt, typename State>
class TorchOptimizer : public PrimalOptimizer {
public:
  template <typename Options>
  TorchOptimizer(Executor &ex, const Options &options) : ex_(ex) {
    std::vector<Tensor> params;
    for (auto &[id, p] : ex.params())
      params.push_back(p);
    opt_ = std::make_unique<Opt>(params, options);
  }

  void zeroGrad() override { opt_->zero_grad(); }
  void step() override { opt_->step(); }
  void setLr(double lr) override {
    for (auto &group : opt_->param_groups())
      group.options().set_lr(lr);
  }

  std::vector<std::string> stateNames() const override {
    if constexpr (std::is_same_v<State, torch::optim::SGDParamState>)
      return {"momentum_buffer"};
    else
      return {"exp_avg", "exp_avg_sq", "step"};
  }

  std::map<std::string, Tensor> state(int64_t id) const override {
    auto it = opt_->state().find(key(id));
    if (it == opt_->state().end())
      return {};
    auto &s = static_cast<State &>(*it->second);
    if constexpr (std::is_same_v<State, torch::optim::SGDParamState>)
      return {{"momentum_buffer", s.momentum_buffer()}};
    else
      return adamState(s);
  }

  void setState(int64_t id, const std::map<std::string, Tensor> &m) override {
    const Tensor &t = ex_.params().at(id);
    std::unique_ptr<State> s;
    if constexpr (std::is_same_v<State, torch::optim::SGDParamState>) {
      s = std::make_unique<State>();
      s->momentum_buffer(m.at("momentum_buffer").to(t.device()).clone());
    } else {
      s = makeAdamState<State>(m, t);
    }
    opt_->state()[key(id)] = std::move(s);
  }

private:
  /// LibTorch keys a parameter's state by its TensorImpl's address.
  std::string key(int64_t id) const {
    return c10::guts::to_string(ex_.params().at(id).unsafeGetTensorImpl());
  }

  Executor &ex_;
  std::unique_ptr<Opt> opt_;
};

/// One compiled kernel call per step over flat buffers of parameters,
/// gradients and moments; each parameter and its gradient is a view.
/// AdamW's decoupled decay shrinks the parameters before the kernel runs
/// Adam's update without decay, as LibTorch's AdamW does.
class FusedAdam : public PrimalOptimizer {
public:
  FusedAdam(Executor &ex, const PrimalSettings &s)
      : kernels_(*ex.kernels()), settings_(s), lr_(s.lr) {
    h_.beta1 = static_cast<float>(s.beta1);
    h_.beta2 = static_cast<float>(s.beta2);
    h_.eps = static_cast<float>(s.eps);
    h_.weight_decay = static_cast<float>(decoupled() ? 0 : s.weightDecay);
    h_.one_minus_beta1 = static_cast<float>(1 - s.beta1);
    h_.one_minus_beta2 = static_cast<float>(1 - s.beta2);
    int64_t n = 0;
    for (auto &[id, p] : ex.params()) {
      slots_[id] = {n, p.numel(), p.sizes().vec()};
      n += p.numel();
    }
    auto opts = torch::TensorOptions().dtype(torch::kFloat32);
    params_ = torch::empty({n}, opts);
    grads_ = torch::zeros({n}, opts);
    expAvg_ = torch::zeros({n}, opts);
    expAvgSq_ = torch::zeros({n}, opts);
    torch::NoGradGuard noGrad;
    for (auto &[id, slot] : slots_) {
      Tensor view = part(params_, id);
      view.copy_(ex.params().at(id));
      // detach(): a leaf that shares the buffer's memory.
      Tensor leaf = view.detach().requires_grad_(true);
      // A defined gradient is accumulated into in place, so backward
      // writes straight into grads_.
      leaf.mutable_grad() = part(grads_, id);
      ex.setParam(id, leaf);
    }
  }

  void zeroGrad() override { grads_.zero_(); }

  void step() override {
    ++step_;
    double t = static_cast<double>(step_);
    if (decoupled() && settings_.weightDecay != 0) {
      torch::NoGradGuard noGrad;
      params_.mul_(1 - lr_ * settings_.weightDecay);
    }
    h_.step_size = static_cast<float>(lr_ / (1 - std::pow(settings_.beta1, t)));
    h_.bias2_sqrt =
        static_cast<float>(std::sqrt(1 - std::pow(settings_.beta2, t)));
    unroll_tensor p = kernelView(params_), g = kernelView(grads_),
                  m = kernelView(expAvg_), v = kernelView(expAvgSq_);
    char err[1024] = {0};
    if (kernels_.adam(kernels_.ctx, &p, &g, &m, &v, &h_, err, sizeof err))
      throw PlanError(std::string("the compiled Adam step failed: ") + err);
  }

  void setLr(double lr) override { lr_ = lr; }

  std::vector<std::string> stateNames() const override {
    return {"exp_avg", "exp_avg_sq", "step"};
  }

  std::map<std::string, Tensor> state(int64_t id) const override {
    if (step_ == 0)
      return {};
    return {{"exp_avg", part(expAvg_, id)},
            {"exp_avg_sq", part(expAvgSq_, id)},
            {"step", torch::tensor(step_, torch::kInt64)}};
  }

  void setState(int64_t id, const std::map<std::string, Tensor> &m) override {
    torch::NoGradGuard noGrad;
    part(expAvg_, id).copy_(m.at("exp_avg"));
    part(expAvgSq_, id).copy_(m.at("exp_avg_sq"));
    // One step count for all: they are updated together.
    step_ = m.at("step").item<int64_t>();
  }

  Tensor allParams() const override { return params_; }

private:
  struct Slot {
    int64_t offset, numel;
    std::vector<int64_t> shape;
  };

  /// Parameter `id`'s part of a flat buffer, in the parameter's shape.
  Tensor part(const Tensor &flat, int64_t id) const {
    const Slot &s = slots_.at(id);
    return flat.narrow(0, s.offset, s.numel).view(s.shape);
  }

  bool decoupled() const {
    return settings_.kind == PrimalSettings::Kind::AdamW;
  }

  const unroll_kernels &kernels_;
  PrimalSettings settings_;
  double lr_;
  std::map<int64_t, Slot> slots_;
  Tensor params_, grads_, expAvg_, expAvgSq_;
  /// The kernel's constants; step() sets the step-dependent two.
  unroll_adam_step h_{};
  int64_t step_ = 0;
};

} // namespace

std::unique_ptr<PrimalOptimizer>
PrimalOptimizer::make(Executor &ex, const PrimalSettings &s) {
  using Kind = PrimalSettings::Kind;
  bool cpu = true;
  for (auto &[id, p] : ex.params())
    cpu &= p.device().is_cpu() && p.scalar_type() == torch::kFloat32;
  if (s.kind != Kind::Sgd && ex.kernels() && ex.kernels()->adam && cpu &&
      !ex.params().empty())
    return std::make_unique<FusedAdam>(ex, s);
  const auto betas = std::make_tuple(s.beta1, s.beta2);
  switch (s.kind) {
  case Kind::Adam:
    return std::make_unique<
        TorchOptimizer<torch::optim::Adam, torch::optim::AdamParamState>>(
        ex,
        torch::optim::AdamOptions(s.lr).betas(betas).eps(s.eps).weight_decay(
            s.weightDecay));
  case Kind::AdamW:
    return std::make_unique<
        TorchOptimizer<torch::optim::AdamW, torch::optim::AdamWParamState>>(
        ex,
        torch::optim::AdamWOptions(s.lr).betas(betas).eps(s.eps).weight_decay(
            s.weightDecay));
  case Kind::Sgd:
    return std::make_unique<
        TorchOptimizer<torch::optim::SGD, torch::optim::SGDParamState>>(
        ex, torch::optim::SGDOptions(s.lr)
                .momentum(s.momentum)
                .nesterov(s.nesterov)
                .weight_decay(s.weightDecay));
  }
  throw PlanError("unknown primal optimizer");
}

double PrimalSettings::lrAt(int64_t epoch, int64_t epochs) const {
  switch (schedule) {
  case Schedule::Constant:
    break;
  case Schedule::Step:
    return lr * std::pow(gamma, static_cast<double>(epoch / every));
  case Schedule::Cosine:
    return minLr + (lr - minLr) *
                       (1 + std::cos(M_PI * static_cast<double>(epoch) /
                                     static_cast<double>(epochs))) /
                       2;
  }
  return lr;
}

const char *PrimalSettings::name() const {
  switch (kind) {
  case Kind::Adam:
    return "adam";
  case Kind::AdamW:
    return "adamw";
  case Kind::Sgd:
    return "sgd";
  }
  return "adam";
}

} // namespace unroll::runtime
