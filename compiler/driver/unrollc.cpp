// unrollc: the Unroll compiler driver.
//
//   unrollc check FILE...        parse and check specs
//   unrollc --emit=ast FILE      print a stage of the pipeline
//   unrollc train SPEC           compile and train into a run directory
//   unrollc compile SPEC -o DIR  compile a program and its kernel library
//                                for unroll-run (another machine, a GPU)
//   unrollc eval RUN_DIR         evaluate a run layer by layer
//   unrollc --version            print the toolchain this build links
#include "RuntimeLoader.h"
#include "Suggest.h"
#include "abi/PlanFormat.h"
#include "compiler/BuildInfo.h"
#include "compiler/IRGen/IRGen.h"
#include "compiler/Pipeline.h"
#include "compiler/export/Export.h"
#include "compiler/export/KernelLibrary.h"
#include "compiler/kernels/CudaKernels.h"
#include "compiler/kernels/HalideKernels.h"
#include "compiler/kernels/KernelJIT.h"
#include "compiler/plan/PlanLowering.h"

#include "dsl/Frontend.h"
#include "runtime/Cache.h"
#include "runtime/Plan.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/OperationSupport.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_ostream.h"

#include <CLI/CLI.hpp>

#include <nlohmann/json.hpp>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <unistd.h>

using namespace unroll;

namespace {

std::vector<std::string> libraryPath(const std::vector<std::string> &extra) {
  std::vector<std::string> p = extra;
  for (auto &d : dsl::defaultLibraryPath())
    p.push_back(d);
  return p;
}

int checkFiles(const std::vector<std::string> &files,
               const std::vector<std::string> &includes,
               const std::vector<std::string> &settings, bool quiet) {
  int rc = 0;
  dsl::FrontendOptions opts;
  opts.libraryPath = libraryPath(includes);
  // A spec is checked as it would train: with the --set values applied.
  opts.settings = settings;
  for (const std::string &f : files) {
    auto fe = dsl::runFrontend(f, nullptr, opts, std::cerr);
    if (!fe->ok()) {
      rc = 1;
      continue;
    }
    if (!quiet)
      std::cout << f << ": ok\n";
  }
  return rc;
}

/// What the driver compiles a spec for.
struct CompileOptions {
  std::vector<std::string> includes;
  std::vector<std::string> settings;
  bool printAfterAll = false;
};

/// Runs the pipeline up to `stage` (mlir, mlir-unrolled or plan), printing
/// diagnostics; calls `done` with the module (and the plan, for "plan").
/// Returns false on any error.
bool compile(
    const std::string &stage, const std::string &file, const CompileOptions &co,
    const std::function<void(mlir::ModuleOp, const nlohmann::json *)> &done) {
  dsl::FrontendOptions opts;
  opts.libraryPath = libraryPath(co.includes);
  opts.settings = co.settings;
  auto fe = dsl::runFrontend(file, nullptr, opts, std::cerr);
  if (!fe->ok())
    return false;
  mlir::MLIRContext ctx;
  // Users see their own source in diagnostics, not the IR op.
  ctx.printOpOnDiagnostic(false);
  // Errors from passes point at DSL source lines, printed like the front
  // end's: file:line:col, the line, a caret (and "called from" notes for
  // code inlined from a function).
  llvm::SourceMgr sourceMgr;
  for (uint32_t id = 1; id <= fe->sources.size(); ++id)
    sourceMgr.AddNewSourceBuffer(
        llvm::MemoryBuffer::getMemBufferCopy(fe->sources.text(id),
                                             fe->sources.path(id)),
        llvm::SMLoc());
  mlir::SourceMgrDiagnosticHandler diagHandler(sourceMgr, &ctx, llvm::errs());
  auto module = compiler::generateIR(ctx, *fe);
  if (!module)
    return false;
  if (stage == "mlir-unrolled" || stage == "plan")
    if (mlir::failed(compiler::runPipeline(*module, co.printAfterAll,
                                           /*fuse=*/stage == "plan")))
      return false;
  if (stage == "plan") {
    auto plan = compiler::lowerToPlan(*module);
    if (mlir::failed(plan))
      return false;
    done(*module, &*plan);
    return true;
  }
  done(*module, nullptr);
  return true;
}

int emit(const std::string &stage, const std::string &file,
         const CompileOptions &co, bool locations) {
  if (stage == "ast") {
    dsl::FrontendOptions opts;
    opts.libraryPath = libraryPath(co.includes);
    // The AST is what was parsed: printed even if it would not type-check.
    opts.parseOnly = true;
    auto fe = dsl::runFrontend(file, nullptr, opts, std::cerr);
    if (!fe->ok())
      return 1;
    dsl::printAST(*fe->main->ast, std::cout);
    return 0;
  }
  // Kernels are generated from the runtime program's fused ops.
  bool fromPlan = stage == "kernels" || stage == "ptx";
  bool ok = compile(fromPlan ? "plan" : stage, file, co,
                    [&](mlir::ModuleOp module, const nlohmann::json *plan) {
                      if (plan && stage == "ptx") {
                        compiler::printPtx(*plan, std::cout);
                        return;
                      }
                      if (plan && stage == "kernels") {
                        compiler::printKernels(*plan, std::cout);
                        return;
                      }
                      if (plan) {
                        std::cout << plan->dump(1) << "\n";
                        return;
                      }
                      mlir::OpPrintingFlags flags;
                      if (locations)
                        flags.enableDebugInfo(/*enable=*/true,
                                              /*prettyForm=*/false);
                      module.print(llvm::outs(), flags);
                      llvm::outs() << "\n";
                    });
  return ok ? 0 : 1;
}

driver::RuntimeLibrary *runtimeOrComplain() {
  std::string err;
  driver::RuntimeLibrary *rt = driver::RuntimeLibrary::get(err);
  if (!rt)
    std::cerr << "error: " << err << "\n";
  return rt;
}

/// Where a run goes when --out is not given: runs/<spec name>.
std::string defaultRunDir(const std::string &spec) {
  return (std::filesystem::path("runs") / std::filesystem::path(spec).stem())
      .string();
}

/// Compiles `spec` to its plan's text; false after printing diagnostics.
bool planTextOf(const std::string &spec, const CompileOptions &co,
                std::string &planText) {
  return compile("plan", spec, co,
                 [&](mlir::ModuleOp, const nlohmann::json *plan) {
                   planText = plan->dump();
                 });
}

/// Before `name` (PLAN-TARGET-BUILD.so) is built into the kernel cache
/// `dir`: the libraries an earlier unrollc build made for the same program
/// and target go (they would never be loaded again), and so do the scratch
/// folders and temporary files of compiles whose process has died.
void pruneKernelCache(const std::filesystem::path &dir,
                      const std::string &name) {
  namespace fs = std::filesystem;
  const std::string same = name.substr(0, name.rfind('-') + 1);
  std::error_code ec;
  for (const fs::directory_entry &e : fs::directory_iterator(dir, ec)) {
    const std::string f = e.path().filename().string();
    // ".unroll-kernels-PID" and "X.so.tmpPID" name the process that made them.
    size_t at = f.rfind(".tmp");
    std::string pid = f.rfind(".unroll-kernels-", 0) == 0 ? f.substr(16)
                      : at != std::string::npos           ? f.substr(at + 4)
                                                          : "";
    bool dead = !pid.empty() &&
                pid.find_first_not_of("0123456789") == std::string::npos &&
                ::kill(static_cast<pid_t>(std::stol(pid)), 0) != 0 &&
                errno == ESRCH;
    bool stale = f != name && f.rfind(same, 0) == 0 && f.size() > 3 &&
                 f.compare(f.size() - 3, 3, ".so") == 0;
    if (dead || stale)
      fs::remove_all(e.path(), ec);
  }
}

/// The kernels of `plan` for `device`: a kernel library for the host, or
/// for CUDA where `device` asks for a GPU and the runtime has one, built
/// once and kept in the cache (keyed by the plan, the target and this
/// compiler binary, so a rebuilt unrollc compiles again). Empty for the
/// eager backend. Where no library can be built (no C++ compiler), the
/// host kernels are JIT-compiled into `jit` instead.
std::string kernelLibraryFor(const std::string &planText,
                             const std::string &backend,
                             const std::string &device,
                             const std::string &cacheDir,
                             driver::RuntimeLibrary &rt,
                             std::unique_ptr<compiler::JitKernels> &jit) {
  namespace fs = std::filesystem;
  if (backend != "compiled")
    return "";
  const bool cuda = device.rfind("cuda", 0) == 0;
  // Without a GPU the runtime refuses --device cuda: no kernels to build.
  if (cuda && rt.describe().find("CUDA available") == std::string::npos)
    return "";
  compiler::KernelLibraryOptions ko;
  ko.target = cuda ? "host-cuda" : "host";
  ko.command = "kernels";
  std::error_code ec;
  fs::path self = fs::read_symlink("/proc/self/exe", ec);
  uint64_t id = runtime::hashString(runtime::kFnvBasis, self.string());
  if (!ec) {
    auto size = fs::file_size(self, ec);
    auto time = fs::last_write_time(self, ec).time_since_epoch().count();
    id = runtime::fnv(id, &size, sizeof size);
    id = runtime::fnv(id, &time, sizeof time);
  }
  fs::path dir = fs::path(runtime::cacheDirectory(cacheDir)) / "kernels";
  fs::path lib = dir / (runtime::planHash(planText) + "-" + ko.target + "-" +
                        runtime::hexHash(id) + ".so");
  if (fs::exists(lib, ec)) {
    std::cerr << "kernels: " << lib.string() << " (compiled earlier for the "
              << (cuda ? "GPU" : "host") << ")\n";
    return lib.string();
  }
  auto t0 = std::chrono::steady_clock::now();
  try {
    fs::create_directories(dir, ec);
    pruneKernelCache(dir, lib.filename().string());
    compiler::KernelLibrarySummary s =
        compiler::buildKernelLibrary(planText, lib.string(), ko, std::cerr);
    double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
            .count();
    std::cerr << "kernels: " << s.kernels << " compiled with Halide for the "
              << (cuda ? "GPU" : "host") << " in " << std::fixed
              << std::setprecision(1) << secs << " s, kept in " << lib.string()
              << "\n"
              << std::defaultfloat;
    return lib.string();
  } catch (const compiler::ExportError &e) {
    if (cuda)
      throw;
    // The tool's output, not its long command line.
    const auto *tool = dynamic_cast<const compiler::ToolError *>(&e);
    std::string why =
        tool ? "the C++ compiler failed: " + tool->output : e.what();
    while (!why.empty() && why.back() == '\n')
      why.pop_back();
    std::cerr << "warning: no kernel library (" << why
              << "); compiling the kernels in process\n";
  }
  t0 = std::chrono::steady_clock::now();
  jit = std::make_unique<compiler::JitKernels>(nlohmann::json::parse(planText));
  double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
          .count();
  std::cerr << "kernels: " << jit->size() << " compiled with Halide for the "
            << "host in " << std::fixed << std::setprecision(1) << secs
            << " s\n"
            << std::defaultfloat;
  return "";
}

int trainCommand(const std::string &spec, const CompileOptions &co,
                 std::string out, bool resume, const std::string &cacheDir,
                 const std::string &device, const std::string &backend) {
  std::string planText;
  if (!planTextOf(spec, co, planText))
    return 1;
  driver::RuntimeLibrary *rt = runtimeOrComplain();
  if (!rt)
    return 1;
  std::unique_ptr<compiler::JitKernels> jit;
  std::string library;
  try {
    library = kernelLibraryFor(planText, backend, device, cacheDir, *rt, jit);
  } catch (const compiler::ExportError &e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
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

/// Writes `text` to `path` through a temporary file and a rename.
void writeAtomic(const std::filesystem::path &path, const std::string &text) {
  std::filesystem::path tmp = path;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary);
    out << text;
    if (!out.flush())
      throw compiler::ExportError("cannot write '" + tmp.string() + "'");
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec)
    throw compiler::ExportError("cannot write '" + path.string() +
                                "': " + ec.message());
}

/// `unrollc compile`: the program and its kernel library into `outDir`,
/// for unroll-run. program.json is written last: it names the plan's hash,
/// so a directory left half-written by a crash is refused, not misread.
int compileCommand(const std::string &spec, const CompileOptions &co,
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
    nlohmann::json info = {{"spec", fs::absolute(spec).string()},
                           {"settings", co.settings},
                           {"plan_hash", runtime::planHash(planText)},
                           {"unrollc", UNROLL_VERSION}};
    // Nothing stale may stay behind: a library from an earlier compile
    // would be refused anyway (another plan hash).
    fs::remove(dir / "program.json", ec);
    if (backend == "compiled") {
      auto t0 = std::chrono::steady_clock::now();
      compiler::KernelLibrarySummary s = compiler::buildKernelLibrary(
          planText, (dir / "kernels.so").string(), ko, std::cerr);
      double secs =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
              .count();
      std::cerr << "compile: " << s.kernels << " kernel(s), " << s.pipelines
                << " pipelines in " << std::fixed << std::setprecision(1)
                << secs << " s\n"
                << std::defaultfloat;
      info["kernels"] = "kernels.so";
      info["target"] = ko.target;
      info["halide_target"] = s.target;
    } else {
      fs::remove(dir / "kernels.so", ec);
    }
    writeAtomic(dir / "plan.json", planText);
    writeAtomic(dir / "program.json", info.dump(2) + "\n");
    std::cerr << "compile: wrote " << (dir / "plan.json").string()
              << (backend == "compiled" ? ", " + (dir / "kernels.so").string()
                                        : std::string())
              << " and " << (dir / "program.json").string()
              << "; run it with `unroll-run train " << outDir << "`\n";
  } catch (const compiler::ExportError &e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}

/// Whether a run's plan.json has the structure of a plan (every reader
/// after this may index it freely); prints why not.
bool validPlan(const nlohmann::json &plan, const std::string &runDir) {
  try {
    abi::checkPlan(plan);
    return true;
  } catch (const abi::PlanFormatError &e) {
    std::cerr << "error: '" << runDir
              << "/plan.json' is not a valid plan: " << e.what() << "\n";
    return false;
  }
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
    if (!plan.is_discarded() && !validPlan(plan, runDir))
      return 1;
  }
  driver::RuntimeLibrary *rt = runtimeOrComplain();
  if (!rt)
    return 1;
  std::unique_ptr<compiler::JitKernels> jit;
  std::string library;
  if (havePlan && backend == "compiled") {
    if (!plan.is_discarded()) {
      try {
        library =
            kernelLibraryFor(text.str(), backend, device, cacheDir, *rt, jit);
      } catch (const compiler::ExportError &e) {
        std::cerr << "error: " << e.what() << "\n";
        return 1;
      }
    }
  }
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

/// A run's plan and trained parameters (as Halide buffers, which the
/// generated code embeds); false after printing why not.
bool loadRun(const std::string &runDir, nlohmann::json &plan,
             std::map<std::string, Halide::Buffer<float>> &params) {
  std::ifstream planFile(std::filesystem::path(runDir) / "plan.json");
  if (!planFile) {
    std::cerr << "error: '" << runDir
              << "' is not a run directory (no plan.json)\n";
    return false;
  }
  plan = nlohmann::json::parse(planFile, nullptr, false);
  if (plan.is_discarded()) {
    std::cerr << "error: '" << runDir << "/plan.json' is not valid JSON\n";
    return false;
  }
  if (!validPlan(plan, runDir))
    return false;
  driver::RuntimeLibrary *rt = runtimeOrComplain();
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

int exportCommand(const std::string &runDir, compiler::ExportOptions opts,
                  const std::string &exe) {
  nlohmann::json plan;
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

int run(int argc, char **argv) {
  CLI::App app{"unrollc: compile, train and export unrolled optimizers"};
  app.require_subcommand(0, 1);
  std::vector<std::string> includes;
  std::string stage;
  std::string file;
  bool version = false;
  app.add_option("-I,--lib", includes,
                 "extra directory to search for imported libraries");
  app.add_option("--emit", stage, "print one stage and stop")
      ->check(CLI::IsMember(
          {"ast", "mlir", "mlir-unrolled", "plan", "kernels", "ptx"}));
  app.add_option("file", file, "spec file (with --emit)");
  bool locations = false;
  bool printAfterAll = false;
  app.add_flag("--print-ir-after-all", printAfterAll,
               "print the IR after every pass (to stderr)");
  app.add_flag("--locations", locations,
               "with --emit=mlir: print each op's DSL source location");
  app.add_flag("--version", version, "print the linked toolchain");
  CompileOptions co;
  // One value per --set (and --ood, --perturb): the spec file after them
  // must stay a positional argument.
  app.add_option("--set", co.settings,
                 "change a spec setting, key=value (e.g. layers=5)")
      ->allow_extra_args(false);

  auto *check = app.add_subcommand("check", "parse and check spec files");
  std::vector<std::string> checkFilesList;
  bool quiet = false;
  check->add_option("files", checkFilesList, "spec files")->required();
  check->add_flag("-q,--quiet", quiet, "print nothing on success");
  check
      ->add_option("--set", co.settings,
                   "check with a spec setting changed, key=value")
      ->allow_extra_args(false);
  check->add_option("-I,--lib", includes,
                    "extra directory to search for imported libraries");

  auto *train = app.add_subcommand("train", "compile a spec and train it");
  std::string trainSpec, out, cacheDir;
  bool resume = false;
  train->add_option("spec", trainSpec, "spec file")->required();
  train
      ->add_option("--set", co.settings,
                   "change a spec setting, key=value: layers, problem "
                   "sizes, epochs, batch, seed, data.KEY, primal.lr, "
                   "dual.lr, dual.every, descend=off, noise=off")
      ->allow_extra_args(false);
  train->add_option("--out", out, "run directory (default: runs/<spec>)");
  train->add_flag("--resume", resume,
                  "continue the run in --out from its last checkpoint");
  train->add_option("--cache-dir", cacheDir,
                    "where solved targets are cached (default: "
                    "$UNROLL_CACHE_DIR or ~/.cache/unroll)");
  std::string device = "auto", backend = "compiled";
  train->add_option("--device", device,
                    "cpu, cuda, cuda:N or auto (CUDA when LibTorch has it)");
  train
      ->add_option("--backend", backend,
                   "compiled: fused ops run as generated Halide kernels; "
                   "eager: as LibTorch ops")
      ->check(CLI::IsMember({"compiled", "eager"}));
  train->add_option("-I,--lib", includes,
                    "extra directory to search for imported libraries");

  auto *comp = app.add_subcommand(
      "compile", "compile a spec into a program directory (plan and kernel "
                 "library) that unroll-run trains without the compiler");
  std::string compileSpec, compileOut, compileBackend = "compiled";
  compiler::KernelLibraryOptions kernelOpts;
  comp->add_option("spec", compileSpec, "spec file")->required();
  comp->add_option("-o,--out", compileOut, "output directory")->required();
  comp->add_option("--target", kernelOpts.target,
                   "host (the default) or host-cuda (kernels on the GPU)")
      ->check(CLI::IsMember({"host", "host-cuda"}));
  comp->add_option("--backend", compileBackend,
                   "compiled (the default): with a kernel library; eager: "
                   "the plan alone")
      ->check(CLI::IsMember({"compiled", "eager"}));
  comp->add_option("--set", co.settings, "change a spec setting, key=value")
      ->allow_extra_args(false);
  comp->add_option("-I,--lib", includes,
                   "extra directory to search for imported libraries");

  auto *eval = app.add_subcommand("eval", "evaluate a run layer by layer");
  std::string runDir, baseline;
  std::vector<double> ood, perturb;
  eval->add_option("run_dir", runDir, "run directory")->required();
  eval->add_option("--ood", ood,
                   "input shifts p: x + N(0, p^2), comma-separated")
      ->delimiter(',')
      ->allow_extra_args(false);
  eval->add_option("--perturb", perturb,
                   "noise s added at every layer, comma-separated")
      ->delimiter(',')
      ->allow_extra_args(false);
  eval->add_option("--baseline", baseline,
                   "a run to compare with in the report (e.g. one trained "
                   "with --set descend=off)");
  eval->add_option("--cache-dir", cacheDir, "where solved targets are cached");
  eval->add_option("--device", device, "cpu, cuda, cuda:N or auto");
  eval->add_option("--backend", backend, "compiled or eager")
      ->check(CLI::IsMember({"compiled", "eager"}));

  auto *exp = app.add_subcommand(
      "export", "compile a trained run into a C library (header, static and "
                "shared library, CMake package)");
  std::string exportRun;
  compiler::ExportOptions exportOpts;
  exp->add_option("run_dir", exportRun, "run directory")->required();
  exp->add_option("-o,--out", exportOpts.outDir, "output directory")
      ->required();
  exp->add_option("--target", exportOpts.target,
                  "host (the default) or host-cuda (layers as CUDA kernels)");
  exp->add_option("--model-version", exportOpts.version,
                  "the model's version MAJOR.MINOR.PATCH (default 1.0.0): "
                  "the CMake package's, and libNAME.so.MAJOR");
  exp->add_option("--name", exportOpts.name,
                  "C prefix of the API (default: the algorithm's name)");
  // How export and build compile the layers.
  auto addCompileOptions = [](CLI::App *cmd, compiler::ExportOptions &o) {
    cmd->add_option("--split", o.split,
                    "auto: a Halide pipeline per layer when the layers hold "
                    "more than " +
                        std::to_string(compiler::kSplitOps) +
                        " ops (compile time grows with the square of a "
                        "pipeline's size); none: one pipeline for all layers "
                        "(the fastest at small batches); layers: one per layer")
        ->check(CLI::IsMember({"auto", "none", "layers"}));
    cmd->add_option("-j,--jobs", o.jobs,
                    "threads compiling layers at once when split (0, the "
                    "default: one per core)")
        ->check(CLI::Range(0, 1024));
  };
  addCompileOptions(exp, exportOpts);

  auto *build = app.add_subcommand(
      "build", "compile a trained run into a standalone program that reads "
               "and writes .npy files");
  std::string buildRun, buildExe;
  compiler::ExportOptions buildOpts;
  build->add_option("run_dir", buildRun, "run directory")->required();
  build->add_option("-o,--out", buildExe, "the executable to write")
      ->required();
  build->add_option("--target", buildOpts.target, "host (the default)");
  build->add_option("--name", buildOpts.name,
                    "C prefix of the model inside (default: the algorithm's "
                    "name)");
  addCompileOptions(build, buildOpts);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ExtrasError &e) {
    // "not expected: SPEC" says little: name what was probably meant.
    const std::string fix =
        driver::suggestFix(app, std::vector<std::string>(argv + 1, argv + argc),
                           {"epochs", "batch", "seed", "layers"});
    if (fix.empty())
      return app.exit(e) == 0 ? 0 : 1;
    std::cerr << "error: " << fix << "\n";
    return 1;
  } catch (const CLI::ParseError &e) {
    return app.exit(e) == 0 ? 0 : 1;
  }
  if (version) {
    std::cout << "unrollc " << UNROLL_VERSION << "\n"
              << compiler::describeToolchain() << "\n";
    std::string err;
    driver::RuntimeLibrary *rt = driver::RuntimeLibrary::get(err);
    if (!rt) {
      std::cerr << "error: " << err << "\n";
      return 1;
    }
    std::cout << rt->describe() << "\n";
    return 0;
  }
  co.includes = includes;
  co.printAfterAll = printAfterAll;
  if (*check)
    return checkFiles(checkFilesList, includes, co.settings, quiet);
  if (*train)
    return trainCommand(trainSpec, co, out, resume, cacheDir, device, backend);
  if (*comp)
    return compileCommand(compileSpec, co, compileOut, kernelOpts,
                          compileBackend);
  if (*exp)
    return exportCommand(exportRun, exportOpts, "");
  if (*build)
    return exportCommand(buildRun, buildOpts, buildExe);
  if (*eval)
    return evalCommand(runDir, ood, perturb, baseline, cacheDir, device,
                       backend);
  if (!stage.empty()) {
    if (file.empty()) {
      std::cerr << "error: --emit needs a spec file\n";
      return 1;
    }
    return emit(stage, file, co, locations);
  }
  std::cerr << app.help();
  return 1;
}

} // namespace

int main(int argc, char **argv) {
  try {
    return run(argc, argv);
  } catch (const dsl::UserError &e) {
    // Stages that fail on input outside a spec (files, settings) end here.
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  } catch (const dsl::InternalError &e) {
    std::cerr << "internal compiler error: " << e.what()
              << "\nplease report this with the spec that caused it\n";
  } catch (const std::exception &e) {
    std::cerr << "internal compiler error: unexpected exception: " << e.what()
              << "\n";
  }
  return 2;
}
