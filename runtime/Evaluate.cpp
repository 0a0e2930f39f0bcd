// `eval` of a run directory: the best checkpoint on the test split, layer
// by layer (distance to the target, objective, gradient norm, l1 norm,
// constraint satisfaction), under shifted data and perturbed states, with a
// baseline run beside it.
#include "runtime/Evaluate.h"

#include "runtime/BuildInfo.h"
#include "runtime/Checkpoint.h"
#include "runtime/Executor.h"
#include "runtime/KernelLibrary.h"
#include "runtime/Memory.h"
#include "runtime/Report.h"
#include "runtime/Run.h"
#include "runtime/RunSetup.h"
#include "runtime/RunText.h"
#include "runtime/Targets.h"
#include "runtime/Trainer.h"

#include "abi/Cache.h"
#include "abi/Files.h"

#include <filesystem>
#include <ostream>

namespace unroll::runtime {

using nlohmann::json;
using torch::Tensor;
namespace fs = std::filesystem;

SplitEval evaluateSplit(Executor &ex, const Split &split, const Tensor &ystar,
                        uint64_t seed, double perturb, bool full) {
  const Algorithm &alg = ex.algorithm();
  const int64_t L = alg.layerCount;
  // The subgradient of a term of a linear map needs the dual variable,
  // which a layer's output does not carry: no gradient norm there.
  const bool hasSolver = alg.solver && alg.solver->composed.empty();
  torch::NoGradGuard noGrad;
  std::vector<std::vector<Tensor>> dist(L + 1), obj(L + 1), grad(L + 1),
      l1(L + 1);
  const size_t np = alg.projections.size();
  std::vector<std::vector<std::vector<Tensor>>> sets(
      np, std::vector<std::vector<Tensor>>(L + 1));
  const size_t nc = alg.constraints.size();
  std::vector<std::vector<std::vector<Tensor>>> cons(
      nc, std::vector<std::vector<Tensor>>(L));
  double lossSum = 0;
  for (int64_t from = 0; from < split.size; from += kChunk) {
    int64_t n = std::min(kChunk, split.size - from);
    ex.bindInputs(chunk(alg, split, from, n));
    Tensor target;
    if (ystar.defined()) {
      target = ystar.narrow(0, from, n).to(ex.device());
      ex.bind(alg.targets[0].id, RValue{target, true});
    }
    ForwardResult fw =
        ex.forward(seed + static_cast<uint64_t>(from), false, perturb);
    std::vector<RValue> finals;
    for (const Tensor &s : fw.states.back())
      finals.push_back(RValue{s, true});
    if (alg.loss)
      lossSum += ex.body(*alg.loss, finals)[0].t.mean().item<double>() *
                 static_cast<double>(n);
    for (int64_t l = 0; l <= L; ++l) {
      const Tensor &y = fw.states[l][0];
      if (target.defined() && target.sizes() == y.sizes())
        dist[l].push_back((y - target).flatten(1).norm(2, {1}));
      if (!full)
        continue;
      // The objective takes the problem's variables only.
      std::vector<RValue> st;
      for (size_t i = 0; i < alg.variableCount(); ++i)
        st.push_back(RValue{fw.states[l][i], true});
      if (alg.objective) {
        RValue f = ex.body(*alg.objective, st)[0];
        obj[l].push_back(f.batched ? f.t.reshape({n})
                                   : f.t.reshape({1}).expand({n}));
      }
      if (hasSolver)
        grad[l].push_back(subgradientNorm(ex, y));
      l1[l].push_back(y.flatten(1).abs().sum(1));
      for (size_t k = 0; k < np; ++k) {
        const abi::Projection &p = alg.projections[k];
        size_t i = 0;
        while (alg.states[i].name != p.on)
          ++i;
        const Tensor &v = fw.states[l][i];
        sets[k][l].push_back((v - project(ex, p, v)).flatten(1).norm(2, {1}));
      }
    }
    if (full)
      for (size_t c = 0; c < nc; ++c) {
        ConstraintValues cv = constraintValues(ex, fw, c);
        for (int64_t l = 0; l < cv.values.size(0); ++l)
          cons[c][cv.firstLayer + l - 1].push_back(cv.values[l]);
      }
  }
  auto cat = [](std::vector<std::vector<Tensor>> &v) {
    std::vector<Tensor> out;
    for (auto &parts : v)
      out.push_back(parts.empty() ? Tensor() : torch::cat(parts));
    return out;
  };
  SplitEval out;
  out.loss = lossSum / static_cast<double>(split.size);
  out.distance = cat(dist);
  out.objective = cat(obj);
  out.gradNorm = cat(grad);
  out.l1 = cat(l1);
  for (auto &c : cons)
    out.constraints.push_back(cat(c));
  for (auto &k : sets)
    out.setDistance.push_back(cat(k));
  return out;
}

/// Mean of each layer's values; null where a layer has none.
json means(const std::vector<Tensor> &v) {
  json out = json::array();
  for (const Tensor &t : v)
    out.push_back(t.defined() ? json(t.mean().item<double>()) : json());
  return out;
}

namespace {

/// Prints the per-layer summary of an evaluation (`what` names the model).
void printSummary(const json &ev, const std::string &what,
                  std::ostream &results) {
  // Without a target (SURF's classification), the objective says how the
  // layers progress.
  bool anyDistance = false;
  for (auto &d : ev["distance"])
    anyDistance |= !d.is_null();
  const char *key = anyDistance ? "distance" : "objective";
  for (const json &o : ev.value("ood", json::array()))
    results << what << "ood p=" << fmt(o["p"].get<double>())
            << ": final distance " << o["final"] << "\n";
  for (const json &o : ev.value("perturb", json::array()))
    results << what << "perturb s=" << fmt(o["s"].get<double>())
            << ": final distance " << o["final"] << "\n";
  auto row = [&](const json &values) {
    for (auto &d : values)
      results << " " << (d.is_null() ? "-" : fmt(d.get<double>()));
    results << "\n";
  };
  for (const json &s : ev.value("sets", json::array())) {
    results << what << "per-layer distance of " << s["on"].get<std::string>()
            << " to set " << s["set"].get<std::string>() << ":";
    row(s["distance"]);
  }
  results << what << "per-layer "
          << (anyDistance ? "distance to the optimum" : "objective") << ":";
  row(ev.value(key, json::array()));
  results << std::flush;
}

/// The evaluation of `opts.runDir` as eval.json holds it; writes nothing.
json evaluateRun(const EvalRunOptions &opts, std::ostream &log) {
  useAllCores();
  retainFreedMemory();
  fs::path dir(opts.runDir);
  std::error_code ec;
  if (!fs::exists(dir / "plan.json", ec))
    throw RunError("'" + dir.string() +
                   "' is not a run directory (no plan.json); create one with "
                   "unrollc train SPEC --out " +
                   dir.string());
  std::string planText = readText(dir / "plan.json");
  std::vector<Algorithm> algs = parsePlan(planText);
  const Algorithm &alg = trainedAlgorithm(algs);
  TrainOptions to = resolveOptions(*alg.train);
  const std::string hash = planHash(planText);
  std::unique_ptr<KernelLibrary> library;
  const unroll_kernels *kernels =
      openKernels(opts.kernels, opts.kernelLibrary, planText, library);
  fs::path ckpt = dir / "best.safetensors";
  if (!fs::exists(ckpt, ec))
    throw RunError("'" + dir.string() +
                   "' has no finished epoch yet (no best.safetensors)");
  TensorFile f = readCheckpoint(ckpt, hash);
  const torch::Device device = pickDevice(opts.device, kernels, log);
  const std::string cache = abi::cacheDirectory(opts.cacheDir);
  Dataset data = loadDataset(alg, to.seed);
  // The model was trained with the run's given values, whatever the
  // source holds now.
  useRecordedGivenValues(dir.string(), alg, data, log);
  if (data.test.size < 1)
    throw RunError("the data source gives no test instances to evaluate on");
  Tensor yTest = targetsFor(alg, data.test, cache, device, log, "test");
  Executor ex(alg);
  PrimalDual pd = startModel(ex, to, device, kernels, data.train);
  restore(pd, f);
  log << "evaluating " << dir.string() << " (epoch " << f.metadata["epoch"]
      << ") on " << data.test.size << " test instances\n";
  const uint64_t seed = to.seed * 131 + 7;
  SplitEval ev = evaluateSplit(ex, data.test, yTest, seed, 0, true);
  const int64_t L = alg.layerCount;
  json out = {{"run", dir.string()},
              {"epoch", std::stoll(f.metadata["epoch"])},
              {"test_size", data.test.size},
              {"loss", ev.loss},
              {"layers", L},
              {"distance", means(ev.distance)},
              {"objective", means(ev.objective)},
              {"gradient_norm", means(ev.gradNorm)},
              {"l1_norm", means(ev.l1)}};
  // Share of test instances satisfying each constraint at each layer.
  json sat = json::array();
  for (size_t c = 0; c < ev.constraints.size(); ++c) {
    json layers = json::array();
    for (const Tensor &t : ev.constraints[c])
      layers.push_back(
          t.defined() ? json((t <= 0).to(torch::kFloat64).mean().item<double>())
                      : json());
    sat.push_back({{"form", abi::spelling(alg.constraints[c].form)},
                   {"on", alg.constraints[c].on},
                   {"satisfied", layers}});
  }
  out["constraints"] = sat;
  // Each constrained variable's distance to its set, and the share of test
  // instances inside it (to float rounding), per layer.
  json sets = json::array();
  for (size_t k = 0; k < ev.setDistance.size(); ++k) {
    json inside = json::array();
    for (const Tensor &t : ev.setDistance[k])
      inside.push_back(
          t.defined()
              ? json((t <= 1e-5).to(torch::kFloat64).mean().item<double>())
              : json());
    sets.push_back({{"set", alg.projections[k].set},
                    {"on", alg.projections[k].on},
                    {"distance", means(ev.setDistance[k])},
                    {"feasible", inside}});
  }
  out["sets"] = sets;
  // l1-norm histograms over a common range, so layers compare directly.
  double hi = 0;
  for (const Tensor &t : ev.l1)
    if (t.defined())
      hi = std::max(hi, t.max().item<double>());
  const int bins = 20;
  json hist = {{"min", 0.0}, {"max", hi}, {"counts", json::array()}};
  for (const Tensor &t : ev.l1) {
    if (!t.defined())
      continue;
    Tensor h = torch::histc(t.to(torch::kFloat64), bins, 0, hi > 0 ? hi : 1)
                   .to(torch::kInt64)
                   .contiguous();
    hist["counts"].push_back(std::vector<int64_t>(
        h.data_ptr<int64_t>(), h.data_ptr<int64_t>() + h.numel()));
  }
  out["l1_histogram"] = hist;
  // OOD: shift the data inputs, recompute y* for the shifted problem.
  json ood = json::array();
  for (double p : opts.ood) {
    if (!(p >= 0))
      throw RunError("--ood values must be non-negative");
    Split shifted = data.test;
    auto gen = at::make_generator<at::CPUGeneratorImpl>(
        seed + static_cast<uint64_t>(p * 1e6));
    for (const abi::Input &in : alg.inputs)
      if (in.role == abi::Role::Data) {
        Tensor &x = shifted.inputs[in.name];
        x = x + p * torch::randn(x.sizes(), gen);
      }
    Tensor ys = targetsFor(alg, shifted, cache, device, log, "ood " + fmt(p));
    SplitEval e = evaluateSplit(ex, shifted, ys, seed, 0, false);
    json d = means(e.distance);
    ood.push_back({{"p", p}, {"distance", d}, {"final", d.back()}});
  }
  out["ood"] = ood;
  json perturb = json::array();
  for (double s : opts.perturb) {
    if (!(s >= 0))
      throw RunError("--perturb values must be non-negative");
    SplitEval e = evaluateSplit(ex, data.test, yTest, seed, s, false);
    json d = means(e.distance);
    perturb.push_back({{"s", s}, {"distance", d}, {"final", d.back()}});
  }
  out["perturb"] = perturb;
  if (!opts.baseline.empty()) {
    fs::path base(opts.baseline);
    if (fs::equivalent(base, dir, ec))
      throw RunError("--baseline names the run itself");
    EvalRunOptions bo = opts;
    bo.runDir = opts.baseline;
    bo.baseline.clear();
    // The kernels were generated for this run's program, not the
    // baseline's: it runs eagerly.
    bo.kernels = nullptr;
    bo.kernelLibrary.clear();
    log << "baseline:\n";
    // The baseline is read, never written: its evaluation goes into this
    // run's eval.json.
    out["baseline"] = fs::absolute(base).string();
    out["baseline_eval"] = evaluateRun(bo, log);
  }
  return out;
}

} // namespace

int evalRun(const EvalRunOptions &opts, std::ostream &log,
            std::ostream &results) {
  fs::path dir(opts.runDir);
  const json out = evaluateRun(opts, log);
  writeFileAtomic((dir / "eval.json").string(), out.dump(1) + "\n");
  printSummary(out, "", results);
  if (out.contains("baseline_eval"))
    printSummary(out["baseline_eval"], "baseline ", results);
  writeReport(dir.string(), log);
  log << "wrote " << (dir / "eval.json").string() << " and "
      << (dir / "report.html").string() << "\n";
  return 0;
}

} // namespace unroll::runtime
