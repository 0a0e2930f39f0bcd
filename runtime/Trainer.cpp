#include "runtime/Trainer.h"

namespace unroll::runtime {

using nlohmann::json;
using torch::Tensor;

namespace {

/// Sums every axis but the first.
Tensor perInstanceSum(const Tensor &t) {
  return t.dim() == 1 ? t : t.flatten(1).sum(1);
}

Tensor softThreshold(const Tensor &v, const Tensor &t) {
  return v.sign() * torch::relu(v.abs() - t);
}

} // namespace

Tensor solveTargets(Executor &ex, int64_t maxIters, double tol) {
  const json &alg = ex.algorithm().json;
  if (!alg.contains("solver"))
    throw PlanError("the plan has no objective split for a classical solver "
                    "(problems with one variable have one)");
  const json &solver = alg["solver"]["body"];
  if (ex.algorithm().json["states"].size() != 1)
    throw PlanError("targets need a problem with one variable");
  torch::NoGradGuard noGrad;
  std::vector<int64_t> shape =
      alg["states"][0]["shape"].get<std::vector<int64_t>>();
  std::vector<int64_t> full{ex.batchSize()};
  full.insert(full.end(), shape.begin(), shape.end());
  auto eval = [&](const Tensor &y) {
    return ex.body(solver, {RValue{y, true}});
  };
  Tensor y = torch::zeros(full), z = y;
  double t = 1, L = 1;
  for (int64_t it = 0; it < maxIters; ++it) {
    auto at = eval(z);
    Tensor g = at[0].t, grad = at[1].t, w = at[2].t;
    if (!at[1].batched)
      grad = grad.expand(full);
    Tensor next;
    // Backtracking: grow L until the quadratic model bounds g.
    for (int k = 0; k < 60; ++k) {
      next = softThreshold(z - grad / L, w / L);
      Tensor d = next - z;
      Tensor model =
          g + perInstanceSum(grad * d) + 0.5 * L * perInstanceSum(d * d);
      Tensor gNext = eval(next)[0].t;
      // float32: allow rounding-sized excess, or L would grow without end.
      Tensor slack = 1e-6 * (1 + g.abs());
      if ((gNext <= model + slack).all().item<bool>())
        break;
      L *= 2;
    }
    double tNext = (1 + std::sqrt(1 + 4 * t * t)) / 2;
    Tensor change = (next - y).abs().max();
    z = next + ((t - 1) / tNext) * (next - y);
    y = next;
    t = tNext;
    if (change.item<double>() < tol)
      break;
  }
  return y;
}

std::vector<EpochStats>
train(Executor &ex, const std::map<std::string, Tensor> &data,
      const Tensor &targets, const TrainOptions &opts,
      const std::function<void(int64_t, const EpochStats &)> &progress) {
  const json &alg = ex.algorithm().json;
  if (!alg.contains("loss"))
    throw PlanError("the plan has no loss to train");
  const json &constraints = alg["constraints"];
  const int64_t L = ex.algorithm().layerCount;
  int64_t n = -1;
  for (const json &in : alg["inputs"])
    if (in["role"] == "data")
      n = data.at(in["name"].get<std::string>()).size(0);
  if (n <= 0)
    throw PlanError("no training data");

  std::vector<Tensor> params;
  for (auto &[id, p] : ex.params())
    params.push_back(p);
  torch::optim::Adam adam(params, torch::optim::AdamOptions(opts.primalLr));
  // One multiplier per constraint and layer (layers 1..L).
  std::vector<std::vector<double>> lambda(constraints.size(),
                                          std::vector<double>(L, 0.0));
  torch::Generator gen = at::make_generator<at::CPUGeneratorImpl>(opts.seed);
  std::vector<EpochStats> history;
  uint64_t step = 0;
  for (int64_t epoch = 0; epoch < opts.epochs; ++epoch) {
    Tensor order = torch::randperm(n, gen);
    EpochStats st;
    std::vector<std::vector<double>> violSum(constraints.size(),
                                             std::vector<double>(L, 0.0));
    int64_t batches = 0;
    for (int64_t start = 0; start < n; start += opts.batch) {
      Tensor idx = order.narrow(0, start, std::min(opts.batch, n - start));
      std::map<std::string, Tensor> batch;
      for (const json &in : alg["inputs"]) {
        const std::string name = in["name"];
        batch[name] = in["role"] == "data" ? data.at(name).index_select(0, idx)
                                           : data.at(name);
      }
      ex.bindInputs(batch);
      Tensor ystar = targets.index_select(0, idx);
      if (!alg["targets"].empty())
        ex.bind(alg["targets"][0]["id"].get<int64_t>(), RValue{ystar, true});
      ForwardResult fw = ex.forward(opts.seed * 1000003 + step++,
                                    /*noise=*/true);
      std::vector<RValue> finals;
      for (const Tensor &s : fw.states.back())
        finals.push_back(RValue{s, true});
      Tensor lagrangian = ex.body(alg["loss"], finals)[0].t.mean();
      st.loss += lagrangian.item<double>();
      for (size_t c = 0; c < constraints.size(); ++c) {
        const json &con = constraints[c];
        const std::string on = con["on"];
        double eps = con["eps"].get<double>();
        bool ratio = con["mode"] == "ratio";
        // The constrained quantity at every layer: a state or a probe.
        std::vector<Tensor> q;
        size_t si = 0;
        bool isState = false;
        for (size_t i = 0; i < alg["states"].size(); ++i)
          if (alg["states"][i]["name"] == on) {
            si = i;
            isState = true;
          }
        if (isState)
          for (auto &layerStates : fw.states)
            q.push_back(layerStates[si]);
        else
          q = fw.probes.at(on); // layers 1..L only
        std::vector<Tensor> m;
        for (size_t l = 0; l < q.size(); ++l) {
          ex.setLayerIndex(static_cast<double>(isState ? l : l + 1));
          m.push_back(ex.body(con["body"], {RValue{q[l], true}})[0].t);
        }
        for (size_t l = 1; l < m.size(); ++l) {
          Tensor cl = ratio ? m[l] / (m[l - 1] + 1e-12) - (1 - eps)
                            : m[l] - (1 - eps) * m[l - 1];
          size_t layer = isState ? l : l + 1; // probes start at layer 1
          double mean = cl.mean().item<double>();
          violSum[c][layer - 1] += mean;
          if (opts.constrained)
            lagrangian = lagrangian + lambda[c][layer - 1] * cl.mean();
          if (opts.constrained && !opts.dualEveryEpoch)
            lambda[c][layer - 1] =
                std::max(0.0, lambda[c][layer - 1] + opts.dualLr * mean);
        }
      }
      adam.zero_grad();
      lagrangian.backward();
      adam.step();
      ++batches;
    }
    st.loss /= static_cast<double>(batches);
    for (size_t c = 0; c < constraints.size(); ++c)
      for (int64_t l = 0; l < L; ++l) {
        double mean = violSum[c][l] / static_cast<double>(batches);
        st.violation.push_back(mean);
        if (opts.constrained && opts.dualEveryEpoch)
          lambda[c][l] = std::max(0.0, lambda[c][l] + opts.dualLr * mean);
        st.lambda.push_back(lambda[c][l]);
      }
    if (progress)
      progress(epoch, st);
    history.push_back(st);
  }
  return history;
}

} // namespace unroll::runtime
