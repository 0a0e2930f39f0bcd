#include "runtime/Trainer.h"

#include <functional>

namespace unroll::runtime {

using torch::Tensor;

namespace {

/// Sums every axis but the first.
Tensor perInstanceSum(const Tensor &t) {
  return t.dim() == 1 ? t : t.flatten(1).sum(1);
}

/// A body's result for a batch of `sizes` ([batch, shape...]): a shared
/// value broadcast to every instance.
Tensor perInstance(const RValue &r, at::IntArrayRef sizes) {
  return r.batched ? r.t : r.t.expand(sizes);
}

/// The prox of t h plus the indicator of y's set at v, for the objective's
/// non-smooth part h (if any, by the plan's `proximal`) and y's set (if
/// any): the prox, then the projection (the compiler admits both only
/// where this is exact: both act entry by entry).
Tensor proxStep(Executor &ex, const Tensor &v, double t) {
  const Algorithm &alg = ex.algorithm();
  Tensor u = v;
  if (const auto &proximal = alg.solver->proximal) {
    RValue r = ex.body(
        proximal->body,
        {RValue{v, true},
         RValue{torch::tensor(static_cast<float>(t), v.options()), false}})[0];
    u = perInstance(r, v.sizes());
  }
  const abi::Projection *set = alg.projectionOf(alg.states[0].name);
  return set ? project(ex, *set, u) : u;
}

/// Whether a body (or a fused op inside it) reads the layer index.
bool usesLayerIndex(const Body &body) {
  bool uses = false;
  abi::forEachOp(body,
                 [&](const Op &op) { uses |= op.code == OpCode::LayerIndex; });
  return uses;
}

} // namespace

Tensor project(Executor &ex, const abi::Projection &p, const Tensor &v) {
  return perInstance(ex.body(p.body, {RValue{v, true}})[0], v.sizes());
}

Tensor solveTargets(Executor &ex, int64_t maxIters, double tol,
                    bool accelerated) {
  const Algorithm &alg = ex.algorithm();
  if (!alg.solver)
    throw PlanError("the plan has no objective split for a classical solver "
                    "(problems with one variable have one)");
  const Body &solver = alg.solver->body;
  if (alg.variableCount() != 1)
    throw PlanError("targets need a problem with one variable");
  if (!alg.solver->composed.empty())
    throw PlanError("the objective has non-smooth terms of linear maps, "
                    "which proximal gradient cannot step through; the "
                    "target needs primal_dual");
  torch::NoGradGuard noGrad;
  const std::vector<int64_t> &shape = alg.states[0].shape;
  std::vector<int64_t> full{ex.batchSize()};
  full.insert(full.end(), shape.begin(), shape.end());
  auto eval = [&](const Tensor &y) {
    return ex.body(solver, {RValue{y, true}});
  };
  Tensor y = torch::zeros(full, torch::TensorOptions().device(ex.device())),
         z = y;
  double t = 1, L = 1;
  for (int64_t it = 0; it < maxIters; ++it) {
    auto at = eval(z);
    Tensor g = at[0].t, grad = at[1].t;
    if (!at[1].batched)
      grad = grad.expand(full);
    Tensor next;
    // Backtracking: grow L until the quadratic model bounds g.
    for (int k = 0; k < 60; ++k) {
      next = proxStep(ex, z - grad / L, 1 / L);
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
    z = accelerated ? next + ((t - 1) / tNext) * (next - y) : next;
    y = next;
    t = tNext;
    if (change.item<double>() < tol)
      break;
  }
  return y.cpu();
}

Tensor solvePrimalDual(Executor &ex, int64_t maxIters, double tol) {
  const Algorithm &alg = ex.algorithm();
  if (!alg.solver)
    throw PlanError("the plan has no objective split for a classical solver "
                    "(problems with one variable have one)");
  if (alg.variableCount() != 1)
    throw PlanError("targets need a problem with one variable");
  const abi::Solver &split = *alg.solver;
  torch::NoGradGuard noGrad;
  const std::vector<int64_t> &shape = alg.states[0].shape;
  std::vector<int64_t> full{ex.batchSize()};
  full.insert(full.end(), shape.begin(), shape.end());
  auto opts = torch::TensorOptions().device(ex.device());
  auto smooth = [&](const Tensor &y) {
    auto at = ex.body(split.body, {RValue{y, true}});
    return std::make_pair(perInstance(at[0], {full[0]}),
                          perInstance(at[1], y.sizes()));
  };
  // e_k(y) = A_k y + b_k, and A_k^T z.
  auto map = [&](size_t k, const Tensor &y) {
    const RValue r = ex.body(split.composed[k].map, {RValue{y, true}})[0];
    if (r.batched)
      return r.t;
    std::vector<int64_t> s{full[0]};
    s.insert(s.end(), r.t.sizes().begin(), r.t.sizes().end());
    return r.t.unsqueeze(0).expand(s);
  };
  auto adjoint = [&](size_t k, const Tensor &y, const Tensor &z) {
    return perInstance(ex.body(split.composed[k].adjoint,
                               {RValue{y, true}, RValue{z, true}})[0],
                       y.sizes());
  };
  auto maxPerInstance = [](const Tensor &t) {
    return t.flatten(1).norm(2, {1}).max().item<double>();
  };
  const size_t K = split.composed.size();
  Tensor y = torch::zeros(full, opts);
  std::vector<Tensor> e0(K); // e_k(0) = b_k
  for (size_t k = 0; k < K; ++k)
    e0[k] = map(k, y);
  // Power iterations from a fixed start, so that the same data gives the
  // same targets: L, the largest curvature of g at 0 (exact for a
  // quadratic g; the descent lemma corrects it below), and ||K||^2, the
  // largest eigenvalue of sum_k A_k^T A_k.
  auto gen = at::make_generator<at::CPUGeneratorImpl>(0);
  auto unit = [](const Tensor &v) {
    Tensor n = v.flatten(1).norm(2, {1}).clamp_min(1e-30);
    std::vector<int64_t> s(v.dim(), 1);
    s[0] = v.size(0);
    return v / n.reshape(s);
  };
  const Tensor start = unit(torch::randn(full, gen).to(ex.device()));
  // The largest per-instance gain of the linear map `op`, the largest over
  // the batch.
  auto largestEigenvalue =
      [&](const std::function<Tensor(const Tensor &)> &op) {
        Tensor v = start;
        double lambda = 0;
        for (int i = 0; i < 50; ++i) {
          Tensor w = op(v);
          lambda = maxPerInstance(w);
          if (lambda == 0)
            break;
          v = unit(w);
        }
        return lambda;
      };
  const Tensor grad0 = smooth(y).second;
  double L = largestEigenvalue(
      [&](const Tensor &v) { return smooth(v).second - grad0; });
  double K2 = K == 0 ? 0 : largestEigenvalue([&](const Tensor &v) {
    Tensor kv = torch::zeros_like(v);
    for (size_t k = 0; k < K; ++k)
      kv = kv + adjoint(k, y, map(k, v) - e0[k]);
    return kv;
  });
  // Power iteration approaches the largest eigenvalue from below.
  L = std::max(1.1 * L, 1e-12);
  K2 *= 1.1;
  std::vector<Tensor> z(K), ey(K);
  for (size_t k = 0; k < K; ++k) {
    z[k] = torch::zeros_like(e0[k]);
    ey[k] = e0[k];
  }
  auto [g, grad] = smooth(y);
  for (int64_t it = 0; it < maxIters; ++it) {
    // 1/tau - sigma ||K||^2 = L / 1.9 > L / 2 (Condat's condition); with
    // maps that are constant (K = 0) any sigma will do.
    const double tau = 0.95 / L;
    const double sigma = K2 > 0 ? 1 / (2 * tau * K2) : 1 / tau;
    Tensor dir = grad;
    for (size_t k = 0; k < K; ++k)
      dir = dir + adjoint(k, y, z[k]);
    Tensor next = proxStep(ex, y - tau * dir, tau);
    Tensor d = next - y;
    Tensor model =
        g + perInstanceSum(grad * d) + 0.5 * L * perInstanceSum(d * d);
    Tensor slack = 1e-6 * (1 + g.abs());
    auto [gNext, gradNext] = smooth(next);
    if (!(gNext <= model + slack).all().item<bool>()) {
      L *= 2;
      continue;
    }
    // The residuals of the optimality conditions at (y+, z+) (Goldstein,
    // Esser and Baraniuk's for primal-dual hybrid gradient):
    //   p = (y - y+) / tau + grad g(y+) - grad g(y) + sum_k A_k^T (z_k+ - z_k)
    //     lies in the subdifferential of f at y+ given z+;
    //   d_k = (z_k - z_k+) / sigma + A_k (y+ - y) in that of the conjugate.
    Tensor primal = gradNext - grad - d / tau;
    double dual = 0;
    for (size_t k = 0; k < K; ++k) {
      Tensor eNext = map(k, next);
      // z + sigma e(2 y+ - y), e affine; then the prox of the conjugate
      // of c h by Moreau: w - sigma prox_{c h / sigma}(w / sigma).
      Tensor w = z[k] + sigma * (2 * eNext - ey[k]);
      RValue p = ex.body(
          split.composed[k].prox,
          {RValue{w / sigma, true},
           RValue{torch::tensor(static_cast<float>(1 / sigma), w.options()),
                  false}})[0];
      Tensor zNext = w - sigma * perInstance(p, w.sizes());
      primal = primal + adjoint(k, next, zNext - z[k]);
      dual = std::max(dual, ((z[k] - zNext) / sigma + (eNext - ey[k]))
                                .abs()
                                .max()
                                .item<double>());
      z[k] = zNext;
      ey[k] = eNext;
    }
    y = next;
    g = gNext;
    grad = gradNext;
    if (primal.abs().max().item<double>() < tol && dual < tol)
      break;
  }
  return y.cpu();
}

Tensor subgradientNorm(Executor &ex, const Tensor &y) {
  const Algorithm &alg = ex.algorithm();
  if (!alg.solver || !alg.solver->composed.empty())
    throw PlanError("the plan has no objective split to measure gradients "
                    "(a problem of one variable without non-smooth terms "
                    "of linear maps has one)");
  torch::NoGradGuard noGrad;
  auto at = ex.body(alg.solver->body, {RValue{y, true}});
  Tensor grad = perInstance(at[1], y.sizes());
  Tensor w = at[2].t;
  if (at[2].batched)
    while (w.dim() < y.dim())
      w = w.unsqueeze(-1);
  // With a set or a non-smooth part other than an l1 term, the
  // prox-gradient residual (zero exactly at the optimum).
  if (alg.projectionOf(alg.states[0].name) ||
      (alg.solver->proximal && alg.solver->prox != abi::Prox::L1))
    return (y - proxStep(ex, y - grad, 1)).flatten(1).norm(2, {1});
  // Off zero the l1 term is differentiable; at zero the subgradient of
  // least norm shrinks the smooth gradient by w.
  Tensor off = grad + w * y.sign();
  Tensor at0 = grad.sign() * torch::relu(grad.abs() - w);
  Tensor g = torch::where(y != 0, off, at0);
  return g.flatten(1).norm(2, {1});
}

ConstraintValues constraintValues(Executor &ex, const ForwardResult &fw,
                                  size_t c) {
  const Algorithm &alg = ex.algorithm();
  const abi::Constraint &con = alg.constraints[c];
  const std::string &on = con.on;
  const double eps = con.eps;
  const bool ratio = con.mode == abi::ConstraintMode::Ratio;
  // The constrained quantity at every layer: a state (layers 0..L) or a
  // step result (layers 1..L).
  std::vector<Tensor> q;
  int64_t first = 1;
  for (size_t i = 0; i < alg.states.size(); ++i)
    if (alg.states[i].name == on) {
      for (auto &layerStates : fw.states)
        q.push_back(layerStates[i]);
      first = 0;
    }
  if (q.empty())
    q = fw.probes.at(on);
  const int64_t n = static_cast<int64_t>(q.size());
  const int64_t batch = q[0].size(0);
  // The body's value for `rows` layers as [rows, batch] (a shared value
  // is the same for every instance).
  auto perLayer = [&](const RValue &v, int64_t rows) {
    return v.batched ? v.t.reshape({rows, batch})
                     : v.t.reshape({1, 1}).expand({rows, batch});
  };
  Tensor m; // [n, batch]
  if (!usesLayerIndex(con.body)) {
    // One run of the body over every layer's instances at once: a few
    // ops instead of a few per layer (each is an autograd node backward).
    m = perLayer(ex.bodyOverLayers(con.body, q)[0], n);
  } else {
    std::vector<Tensor> rows;
    for (int64_t l = 0; l < n; ++l) {
      ex.setLayerIndex(static_cast<double>(first + l));
      rows.push_back(perLayer(ex.body(con.body, {RValue{q[l], true}})[0], 1));
    }
    m = torch::cat(rows);
  }
  Tensor now = m.narrow(0, 1, n - 1), before = m.narrow(0, 0, n - 1);
  return {first + 1, ratio ? now / (before + 1e-12) - (1 - eps)
                           : now - (1 - eps) * before};
}

std::string PrimalDual::paramKey(const abi::Param &param) {
  std::string key = "param." + param.name;
  if (param.layer)
    key += "." + std::to_string(*param.layer);
  return key;
}

PrimalDual::PrimalDual(Executor &ex, const TrainOptions &opts)
    : ex_(ex), opts_(opts) {
  const Algorithm &alg = ex.algorithm();
  if (!alg.loss)
    throw PlanError("the plan has no loss to train");
  primal_ = PrimalOptimizer::make(ex, opts.primal);
  lambda_.assign(alg.constraints.size(),
                 std::vector<double>(ex.algorithm().layerCount, 0.0));
}

PrimalDual::~PrimalDual() = default;

namespace {

/// Whether every tensor is finite, in one synchronisation: a NaN or Inf
/// anywhere makes its sum non-finite. A sum can also overflow from finite
/// values, so a "no" is confirmed tensor by tensor.
bool allFinite(const std::vector<Tensor> &ts) {
  if (ts.empty())
    return true;
  torch::NoGradGuard noGrad;
  std::vector<Tensor> sums;
  for (const Tensor &t : ts)
    sums.push_back(t.sum());
  if (torch::isfinite(torch::stack(sums)).all().item<bool>())
    return true;
  for (const Tensor &t : ts)
    if (!torch::isfinite(t).all().item<bool>())
      return false;
  return true;
}

/// Names the first layer whose state is not finite, if any.
void checkFinite(const Algorithm &alg, const ForwardResult &fw, uint64_t step,
                 int64_t epoch, int64_t batch) {
  std::vector<Tensor> all;
  for (size_t l = 1; l < fw.states.size(); ++l)
    all.insert(all.end(), fw.states[l].begin(), fw.states[l].end());
  if (allFinite(all))
    return;
  for (size_t l = 1; l < fw.states.size(); ++l)
    for (size_t i = 0; i < fw.states[l].size(); ++i)
      if (!allFinite({fw.states[l][i]}))
        throw DivergedError(
            "layer " + std::to_string(l) + " produced NaN or Inf in state '" +
            alg.states[i].name + "' at step " + std::to_string(step) +
            " (epoch " + std::to_string(epoch + 1) + ", batch " +
            std::to_string(batch + 1) + ")");
}

} // namespace

std::optional<EpochStats>
PrimalDual::epoch(int64_t e, const Split &data, const Tensor &targets,
                  const std::function<bool(const BatchProgress &)> &onBatch) {
  const Algorithm &alg = ex_.algorithm();
  const size_t nc = alg.constraints.size();
  const int64_t L = ex_.algorithm().layerCount;
  const int64_t n = data.size;
  if (n <= 0)
    throw PlanError("no training data");
  const int64_t batches = (n + opts_.batch - 1) / opts_.batch;
  // Seeds derived from (seed, epoch, batch) alone: resuming at an epoch
  // boundary replays exactly the same shuffles and noise.
  torch::Generator gen =
      at::make_generator<at::CPUGeneratorImpl>(opts_.seed * 7919 + e);
  Tensor order = torch::randperm(n, gen);
  EpochStats st;
  // The schedule's rate depends on the epoch alone, so a resumed run
  // steps as the uninterrupted one would.
  st.lr = opts_.primal.lrAt(e, opts_.epochs);
  primal_->setLr(st.lr);
  std::vector<std::vector<double>> violSum(nc, std::vector<double>(L, 0.0));
  for (int64_t b = 0; b < batches; ++b) {
    const uint64_t step = static_cast<uint64_t>(e * batches + b);
    int64_t start = b * opts_.batch;
    Tensor idx = order.narrow(0, start, std::min(opts_.batch, n - start));
    std::map<std::string, Tensor> batch;
    for (const abi::Input &in : alg.inputs) {
      const Tensor &t = data.inputs.at(in.name);
      batch[in.name] = in.role == abi::Role::Data ? t.index_select(0, idx) : t;
    }
    ex_.bindInputs(batch);
    if (!alg.targets.empty())
      ex_.bind(alg.targets[0].id, RValue{targets.index_select(0, idx), true});
    ForwardResult fw = ex_.forward(opts_.seed * 1000003 + step, /*noise=*/true);
    checkFinite(alg, fw, step, e, b);
    std::vector<RValue> finals;
    for (const Tensor &s : fw.states.back())
      finals.push_back(RValue{s, true});
    Tensor loss = ex_.body(*alg.loss, finals)[0].t.mean();
    double lossValue = loss.item<double>();
    if (!std::isfinite(lossValue))
      throw DivergedError("the loss is " + std::to_string(lossValue) +
                          " at step " + std::to_string(step) + " (epoch " +
                          std::to_string(e + 1) + ", batch " +
                          std::to_string(b + 1) + ")");
    st.loss += lossValue;
    // Every constraint's mean over the batch at every layer, read back in
    // one transfer.
    std::vector<std::pair<size_t, int64_t>> where;
    std::vector<Tensor> means;
    for (size_t c = 0; c < nc; ++c) {
      ConstraintValues cv = constraintValues(ex_, fw, c);
      for (int64_t l = 0; l < cv.values.size(0); ++l)
        where.emplace_back(c, cv.firstLayer + l - 1);
      means.push_back(cv.values.mean(1));
    }
    Tensor lagrangian = loss;
    if (!means.empty()) {
      Tensor stacked = means.size() == 1 ? means[0] : torch::cat(means);
      Tensor host =
          stacked.detach().to(torch::kCPU, torch::kFloat64).contiguous();
      const double *hostMeans = host.data_ptr<double>();
      std::vector<double> lams;
      for (size_t i = 0; i < where.size(); ++i) {
        auto [c, l] = where[i];
        double m = hostMeans[i];
        violSum[c][l] += m;
        lams.push_back(lambda_[c][l]);
        if (opts_.constrained && !opts_.dualEveryEpoch)
          lambda_[c][l] = std::max(0.0, lambda_[c][l] + opts_.dualLr * m);
      }
      // lambda as it was before this step's dual update weighs the step.
      if (opts_.constrained)
        lagrangian = lagrangian +
                     (torch::tensor(lams, stacked.options()) * stacked).sum();
    }
    primal_->zeroGrad();
    lagrangian.backward();
    primal_->step();
    std::vector<Tensor> params;
    if (Tensor all = primal_->allParams(); all.defined())
      params.push_back(all);
    else
      for (const abi::Param &p : alg.params)
        params.push_back(ex_.params().at(p.id));
    if (!allFinite(params))
      for (const abi::Param &p : alg.params)
        if (!allFinite({ex_.params().at(p.id)}))
          throw DivergedError("parameter '" + p.name + "'" +
                              (p.layer ? " of layer " + std::to_string(*p.layer)
                                       : std::string()) +
                              " became NaN or Inf at step " +
                              std::to_string(step) + " (epoch " +
                              std::to_string(e + 1) + ", batch " +
                              std::to_string(b + 1) + ")");
    if (onBatch && !onBatch({e, b, batches, step, lossValue}))
      return std::nullopt;
  }
  st.loss /= static_cast<double>(batches);
  for (size_t c = 0; c < nc; ++c)
    for (int64_t l = 0; l < L; ++l) {
      double mean = violSum[c][l] / static_cast<double>(batches);
      st.violation.push_back(mean);
      if (opts_.constrained && opts_.dualEveryEpoch)
        lambda_[c][l] = std::max(0.0, lambda_[c][l] + opts_.dualLr * mean);
      st.lambda.push_back(lambda_[c][l]);
    }
  return st;
}

void PrimalDual::save(TensorFile &f) const {
  for (const abi::Param &p : ex_.algorithm().params) {
    std::string key = paramKey(p);
    const Tensor &t = ex_.params().at(p.id);
    f.tensors[key] = t.detach().clone();
    const std::string prefix = std::string(opts_.primal.name()) + "." + key;
    for (auto &[name, v] : primal_->state(p.id))
      f.tensors[prefix + "." + name] = v.detach().clone();
  }
  for (size_t c = 0; c < lambda_.size(); ++c)
    f.tensors["dual.lambda." + std::to_string(c)] =
        torch::tensor(lambda_[c], torch::kFloat64);
}

void PrimalDual::load(const TensorFile &f) {
  auto need = [&](const std::string &key,
                  const std::vector<int64_t> &shape) -> const Tensor & {
    auto it = f.tensors.find(key);
    if (it == f.tensors.end())
      throw FileError("the checkpoint has no '" + key +
                      "': it was not written for this spec");
    if (it->second.sizes().vec() != shape)
      throw FileError("the checkpoint's '" + key + "' has shape " +
                      c10::str(it->second.sizes()) + ", the spec expects " +
                      c10::str(c10::IntArrayRef(shape)) +
                      ": it was not written for this spec");
    return it->second;
  };
  torch::NoGradGuard noGrad;
  const std::string optimizer = opts_.primal.name();
  const std::vector<std::string> names = primal_->stateNames();
  // Another optimizer's state (OPTIMIZER.param.NAME...) would be dropped
  // without a word.
  for (const auto &[name, t] : f.tensors) {
    const size_t dot = name.find('.');
    const std::string owner = name.substr(0, dot);
    if (dot != std::string::npos && owner != "param" && owner != "dual" &&
        owner != optimizer && name.compare(dot + 1, 6, "param.") == 0)
      throw FileError("the checkpoint holds the state of optimizer '" + owner +
                      "', but this run uses '" + optimizer + "'");
  }
  for (const abi::Param &p : ex_.algorithm().params) {
    std::string key = paramKey(p);
    Tensor &t = ex_.params().at(p.id);
    t.copy_(need(key, t.sizes().vec()));
    const std::string prefix = optimizer + "." + key + ".";
    if (names.empty() || !f.tensors.count(prefix + names[0]))
      continue;
    std::map<std::string, Tensor> state;
    for (const std::string &n : names)
      state[n] = need(prefix + n,
                      n == "step" ? std::vector<int64_t>{} : t.sizes().vec());
    primal_->setState(p.id, state);
  }
  for (size_t c = 0; c < lambda_.size(); ++c) {
    const Tensor &l = need("dual.lambda." + std::to_string(c),
                           {static_cast<int64_t>(lambda_[c].size())});
    for (size_t i = 0; i < lambda_[c].size(); ++i)
      lambda_[c][i] = l[static_cast<int64_t>(i)].item<double>();
  }
}

std::vector<EpochStats>
train(Executor &ex, const std::map<std::string, Tensor> &data,
      const Tensor &targets, const TrainOptions &opts,
      const std::function<void(int64_t, const EpochStats &)> &progress) {
  Split split;
  split.inputs = data;
  for (const abi::Input &in : ex.algorithm().inputs)
    if (in.role == abi::Role::Data)
      split.size = data.at(in.name).size(0);
  PrimalDual pd(ex, opts);
  std::vector<EpochStats> history;
  for (int64_t e = 0; e < opts.epochs; ++e) {
    EpochStats st = *pd.epoch(e, split, targets);
    if (progress)
      progress(e, st);
    history.push_back(st);
  }
  return history;
}

} // namespace unroll::runtime
