// The commands that run programs: `unrollc train`, `compile`, `eval`,
// `export` and `build`, through the runtime's C interface (loaded on
// demand) and the kernel cache.
#include "Commands.h"
#include "KernelCache.h"
#include "RuntimeLoader.h"

#include "abi/Files.h"
#include "abi/Plan.h"
#include "abi/PlanFormat.h"
#include "abi/PlanHash.h"
#include "abi/ProgramDir.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>
#include <unistd.h>

namespace unroll::driver {

namespace {

RuntimeLibrary *runtimeOrComplain() {
  std::string err;
  RuntimeLibrary *rt = RuntimeLibrary::get(err);
  if (!rt)
    std::cerr << "error: " << err << "\n";
  return rt;
}

/// Where a run goes when --out is not given: runs/<spec name>.
std::string defaultRunDir(const std::string &spec) {
  return (std::filesystem::path("runs") / std::filesystem::path(spec).stem())
      .string();
}

/// A run's plan.json, checked and typed; false after printing why it is
/// not a plan.
bool readRunPlan(const nlohmann::json &json, const std::string &runDir,
                 abi::Plan &plan) {
  try {
    plan = abi::readPlan(json);
    return true;
  } catch (const abi::PlanFormatError &e) {
    std::cerr << "error: '" << runDir
              << "/plan.json' is not a valid plan: " << e.what() << "\n";
    return false;
  }
}

/// A run's plan and trained parameters (as Halide buffers, which the
/// generated code embeds); false after printing why not.
bool loadRun(const std::string &runDir, abi::Plan &plan,
             std::map<std::string, Halide::Buffer<float>> &params) {
  std::ifstream planFile(std::filesystem::path(runDir) / "plan.json");
  if (!planFile) {
    std::cerr << "error: '" << runDir
              << "' is not a run directory (no plan.json)\n";
    return false;
  }
  const nlohmann::json json = nlohmann::json::parse(planFile, nullptr, false);
  if (json.is_discarded()) {
    std::cerr << "error: '" << runDir << "/plan.json' is not valid JSON\n";
    return false;
  }
  if (!readRunPlan(json, runDir, plan))
    return false;
  RuntimeLibrary *rt = runtimeOrComplain();
  if (!rt)
    return false;
  // The runtime reads and checks the checkpoint.
  auto collect = [](void *ctx, const char *name, int32_t rank,
                    const int64_t *sizes, const float *data) {
    auto &out =
        *static_cast<std::map<std::string, Halide::Buffer<float>> *>(ctx);
    std::vector<int> extents;
    for (int32_t k = rank - 1; k >= 0; --k)
      extents.push_back(static_cast<int>(sizes[k]));
    Halide::Buffer<float> b(extents);
    std::copy(data, data + b.number_of_elements(), b.data());
    out[name] = b;
  };
  std::string err;
  if (rt->readParams(runDir, collect, &params, err) != 0) {
    std::cerr << "error: " << err << "\n";
    return false;
  }
  return true;
}

/// The kernels for `planText` (kernelLibraryFor, with the GPUs the runtime
/// sees); false after printing why there are none.
bool kernelsFor(const std::string &planText, const std::string &backend,
                const std::string &device, const std::string &cacheDir,
                RuntimeLibrary &rt, std::string &library,
                std::unique_ptr<compiler::JitKernels> &jit) {
  try {
    library = kernelLibraryFor(planText, backend, device, cacheDir,
                               rt.cudaDevices(), jit);
    return true;
  } catch (const compiler::ExportError &e) {
    std::cerr << "error: " << e.what() << "\n";
    return false;
  }
}

} // namespace

int trainCommand(const std::string &spec, const DriverOptions &co,
                 std::string out, bool resume, const std::string &cacheDir,
                 const std::string &device, const std::string &backend) {
  std::string planText;
  if (!planTextOf(spec, co, planText))
    return 1;
  RuntimeLibrary *rt = runtimeOrComplain();
  if (!rt)
    return 1;
  std::unique_ptr<compiler::JitKernels> jit;
  std::string library;
  if (!kernelsFor(planText, backend, device, cacheDir, *rt, library, jit))
    return 1;
  if (out.empty())
    out = defaultRunDir(spec);
  nlohmann::json opts = {
      {"run_dir", out},        {"resume", resume},
      {"spec", spec},          {"settings", co.settings},
      {"cache_dir", cacheDir}, {"interactive", isatty(2) == 1},
      {"device", device},      {"kernel_library", library}};
  std::string err;
  int rc = rt->train(planText, opts.dump(), jit ? jit->abi() : nullptr, err);
  if (rc == 1)
    std::cerr << "error: " << err << "\n";
  return rc;
}

/// `unrollc compile`: the program and its kernel library into `outDir`
/// (abi/ProgramDir.h), for unroll-run.
int compileCommand(const std::string &spec, const DriverOptions &co,
                   const std::string &outDir,
                   const compiler::KernelLibraryOptions &ko,
                   const std::string &backend) {
  std::string planText;
  if (!planTextOf(spec, co, planText))
    return 1;
  namespace fs = std::filesystem;
  try {
    std::error_code ec;
    fs::create_directories(outDir, ec);
    if (ec)
      throw compiler::ExportError("cannot create '" + outDir +
                                  "': " + ec.message());
    fs::path dir(outDir);
    abi::ProgramInfo info;
    info.spec = fs::absolute(spec).string();
    info.settings = co.settings;
    info.planHash = abi::planHash(planText);
    info.unrollc = UNROLL_VERSION;
    // Nothing stale may stay behind: a library from an earlier compile
    // would be refused anyway (another plan hash).
    fs::remove(dir / abi::kProgramInfoFile, ec);
    const fs::path library = dir / abi::kProgramKernelsFile;
    if (backend == "compiled") {
      auto t0 = std::chrono::steady_clock::now();
      compiler::KernelLibrarySummary s = compiler::buildKernelLibrary(
          planText, library.string(), ko, std::cerr);
      double secs =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
              .count();
      std::cerr << "compile: " << s.kernels << " kernel(s), " << s.pipelines
                << " pipelines in " << std::fixed << std::setprecision(1)
                << secs << " s\n"
                << std::defaultfloat;
      info.kernels = abi::kProgramKernelsFile;
      info.target = ko.target;
      info.halideTarget = s.target;
    } else {
      fs::remove(library, ec);
    }
    abi::writeProgramDir(dir, planText, info);
    std::cerr << "compile: wrote " << (dir / abi::kProgramPlanFile).string()
              << (backend == "compiled" ? ", " + library.string()
                                        : std::string())
              << " and " << (dir / abi::kProgramInfoFile).string()
              << "; run it with `unroll-run train " << outDir << "`\n";
  } catch (const compiler::ExportError &e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  } catch (const abi::WriteError &e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}

int evalCommand(const std::string &runDir, const std::vector<double> &ood,
                const std::vector<double> &perturb, const std::string &baseline,
                const std::string &cacheDir, const std::string &device,
                const std::string &backend) {
  // The run's own program says which kernels it needs; a directory that is
  // not a run (or whose plan.json is not JSON) is left to the runtime to
  // report, a plan.json that is no plan is refused here, before anything
  // reads it.
  std::ifstream planFile(std::filesystem::path(runDir) / "plan.json");
  std::stringstream text;
  nlohmann::json plan;
  const bool havePlan = static_cast<bool>(planFile);
  if (havePlan) {
    text << planFile.rdbuf();
    plan = nlohmann::json::parse(text.str(), nullptr, false);
    abi::Plan typed;
    if (!plan.is_discarded() && !readRunPlan(plan, runDir, typed))
      return 1;
  }
  RuntimeLibrary *rt = runtimeOrComplain();
  if (!rt)
    return 1;
  std::unique_ptr<compiler::JitKernels> jit;
  std::string library;
  if (havePlan && !plan.is_discarded() &&
      !kernelsFor(text.str(), backend, device, cacheDir, *rt, library, jit))
    return 1;
  nlohmann::json opts = {{"run_dir", runDir},        {"ood", ood},
                         {"perturb", perturb},       {"baseline", baseline},
                         {"cache_dir", cacheDir},    {"device", device},
                         {"kernel_library", library}};
  std::string err;
  int rc = rt->eval(opts.dump(), jit ? jit->abi() : nullptr, err);
  if (rc == 1)
    std::cerr << "error: " << err << "\n";
  return rc;
}

int exportCommand(const std::string &runDir, compiler::ExportOptions opts,
                  const std::string &exe) {
  abi::Plan plan;
  std::map<std::string, Halide::Buffer<float>> params;
  if (!loadRun(runDir, plan, params))
    return 1;
  opts.runDir = runDir;
  try {
    if (exe.empty()) {
      compiler::ExportSummary m =
          compiler::exportModel(plan, params, opts, std::cerr);
      std::cerr << "export: wrote " << m.includeDir << "/" << m.name << ".h, "
                << m.staticLibrary << ", " << m.sharedLibrary << " and "
                << m.cmakeConfig << " (version " << opts.version << ")\n";
    } else
      compiler::buildExecutable(plan, params, exe, opts, std::cerr);
  } catch (const compiler::ExportError &e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}

} // namespace unroll::driver
