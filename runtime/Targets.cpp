#include "runtime/Targets.h"

#include "runtime/Executor.h"
#include "runtime/Run.h"
#include "runtime/Safetensors.h"
#include "runtime/Trainer.h"

#include <chrono>
#include <filesystem>
#include <iomanip>

namespace unroll::runtime {

using nlohmann::json;
using torch::Tensor;
namespace fs = std::filesystem;

std::map<std::string, Tensor> chunk(const Algorithm &alg, const Split &s,
                                    int64_t from, int64_t n) {
  std::map<std::string, Tensor> out;
  for (const abi::Input &in : alg.inputs) {
    const Tensor &t = s.inputs.at(in.name);
    out[in.name] = in.role == abi::Role::Data ? t.narrow(0, from, n) : t;
  }
  return out;
}

uint64_t hashTensor(uint64_t h, const Tensor &t0) {
  Tensor t = t0.to(torch::kCPU).to(torch::kFloat32).contiguous();
  for (int64_t s : t.sizes())
    h = fnv(h, &s, sizeof s);
  return fnv(h, t.data_ptr(), static_cast<size_t>(t.numel()) * 4);
}

Tensor targetsFor(const Algorithm &alg, const Split &split,
                  const std::string &cacheDir, torch::Device device,
                  std::ostream &log, const std::string &what) {
  if (alg.targets.empty())
    return Tensor();
  if (split.target.defined()) {
    log << "targets (" << what << "): " << split.size << " from the data\n";
    return split.target;
  }
  const abi::Target &target = alg.targets[0];
  const std::string &solver = target.solver;
  if (solver != "fista" && solver != "ista" && solver != "pgd" &&
      solver != "primal_dual")
    throw RunError("target solver '" + solver +
                   "' is not supported; use fista, ista, pgd or primal_dual");
  const double tol = target.tol.value_or(1e-6);
  const int64_t iters = target.iters.value_or(20000);
  // Keyed by the plan's text of the objective split and the target, as
  // a plan without a split writes JSON null.
  uint64_t h =
      hashString(kFnvBasis, alg.solver ? alg.solver->text : json().dump());
  h = hashString(h, target.text);
  // The variable's set changes the optimum too.
  if (const abi::Projection *p = alg.projectionOf(alg.states[0].name))
    h = hashString(h, p->text);
  for (auto &[name, t] : split.inputs) {
    h = hashString(h, name);
    h = hashTensor(h, t);
  }
  fs::path file =
      fs::path(cacheDir) / ("targets-" + hexHash(h) + ".safetensors");
  std::error_code ec;
  if (fs::exists(file, ec)) {
    try {
      TensorFile f = readSafetensors(file.string());
      auto it = f.tensors.find("ystar");
      if (it != f.tensors.end() && it->second.size(0) == split.size) {
        log << "targets (" << what << "): " << split.size << " cached in "
            << file.string() << "\n";
        return it->second;
      }
    } catch (const FileError &e) {
      log << "warning: ignoring a damaged target cache: " << e.what() << "\n";
    }
  }
  log << "targets (" << what << "): solving " << split.size
      << " instances with " << solver << " (tol " << tol << ")..."
      << std::flush;
  auto t0 = std::chrono::steady_clock::now();
  Executor ex(alg);
  ex.setDevice(device);
  std::vector<Tensor> parts;
  for (int64_t from = 0; from < split.size; from += kChunk) {
    int64_t n = std::min(kChunk, split.size - from);
    ex.bindInputs(chunk(alg, split, from, n));
    if (from == 0)
      ex.initParams(0);
    parts.push_back(solver == "primal_dual"
                        ? solvePrimalDual(ex, iters, tol)
                        : solveTargets(ex, iters, tol, solver == "fista"));
  }
  Tensor y = torch::cat(parts);
  double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
          .count();
  log << " " << std::fixed << std::setprecision(1) << secs << " s\n"
      << std::defaultfloat;
  try {
    fs::create_directories(cacheDir);
    writeSafetensors(file.string(), {{{"ystar", y}}, {{"key", hexHash(h)}}});
  } catch (const std::exception &e) {
    log << "warning: cannot cache targets: " << e.what() << "\n";
  }
  return y;
}

} // namespace unroll::runtime
