#include "runtime/Optimizer.h"

#include <c10/util/string_utils.h>

#include <cmath>

namespace unroll::runtime {

using torch::Tensor;

namespace {

/// LibTorch's Adam.
class TorchAdam : public PrimalAdam {
public:
  TorchAdam(Executor &ex, const AdamSettings &s) : ex_(ex) {
    std::vector<Tensor> params;
    for (auto &[id, p] : ex.params())
      params.push_back(p);
    adam_ = std::make_unique<torch::optim::Adam>(
        params, torch::optim::AdamOptions(s.lr)
                    .betas({s.beta1, s.beta2})
                    .eps(s.eps)
                    .weight_decay(s.weightDecay));
  }

  void zeroGrad() override { adam_->zero_grad(); }
  void step() override { adam_->step(); }

  std::optional<AdamMoments> moments(int64_t id) const override {
    auto it = adam_->state().find(key(id));
    if (it == adam_->state().end())
      return std::nullopt;
    auto &s = static_cast<torch::optim::AdamParamState &>(*it->second);
    return AdamMoments{s.exp_avg(), s.exp_avg_sq(), s.step()};
  }

  void setMoments(int64_t id, const AdamMoments &m) override {
    const Tensor &t = ex_.params().at(id);
    auto s = std::make_unique<torch::optim::AdamParamState>();
    s->step(m.step);
    s->exp_avg(m.expAvg.to(t.device()).clone());
    s->exp_avg_sq(m.expAvgSq.to(t.device()).clone());
    adam_->state()[key(id)] = std::move(s);
  }

private:
  /// LibTorch keys a parameter's state by its TensorImpl's address.
  std::string key(int64_t id) const {
    return c10::guts::to_string(ex_.params().at(id).unsafeGetTensorImpl());
  }

  Executor &ex_;
  std::unique_ptr<torch::optim::Adam> adam_;
};

/// One compiled kernel call per step over flat buffers of parameters,
/// gradients and moments; each parameter and its gradient is a view.
class FusedAdam : public PrimalAdam {
public:
  FusedAdam(Executor &ex, const AdamSettings &s)
      : kernels_(*ex.kernels()), settings_(s) {
    h_.beta1 = static_cast<float>(s.beta1);
    h_.beta2 = static_cast<float>(s.beta2);
    h_.eps = static_cast<float>(s.eps);
    h_.weight_decay = static_cast<float>(s.weightDecay);
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
    h_.step_size =
        static_cast<float>(settings_.lr / (1 - std::pow(settings_.beta1, t)));
    h_.bias2_sqrt =
        static_cast<float>(std::sqrt(1 - std::pow(settings_.beta2, t)));
    unroll_tensor p = kernelView(params_), g = kernelView(grads_),
                  m = kernelView(expAvg_), v = kernelView(expAvgSq_);
    char err[1024] = {0};
    if (kernels_.adam(kernels_.ctx, &p, &g, &m, &v, &h_, err, sizeof err))
      throw PlanError(std::string("the compiled Adam step failed: ") + err);
  }

  std::optional<AdamMoments> moments(int64_t id) const override {
    if (step_ == 0)
      return std::nullopt;
    return AdamMoments{part(expAvg_, id), part(expAvgSq_, id), step_};
  }

  void setMoments(int64_t id, const AdamMoments &m) override {
    torch::NoGradGuard noGrad;
    part(expAvg_, id).copy_(m.expAvg);
    part(expAvgSq_, id).copy_(m.expAvgSq);
    step_ = m.step; // one step count for all: they are updated together
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

  const unroll_kernels &kernels_;
  AdamSettings settings_;
  std::map<int64_t, Slot> slots_;
  Tensor params_, grads_, expAvg_, expAvgSq_;
  /// The kernel's constants; step() sets the step-dependent two.
  unroll_adam_step h_{};
  int64_t step_ = 0;
};

} // namespace

std::unique_ptr<PrimalAdam> PrimalAdam::make(Executor &ex,
                                             const AdamSettings &s) {
  bool cpu = true;
  for (auto &[id, p] : ex.params())
    cpu &= p.device().is_cpu() && p.scalar_type() == torch::kFloat32;
  if (ex.kernels() && ex.kernels()->adam && cpu && !ex.params().empty())
    return std::make_unique<FusedAdam>(ex, s);
  return std::make_unique<TorchAdam>(ex, s);
}

} // namespace unroll::runtime
