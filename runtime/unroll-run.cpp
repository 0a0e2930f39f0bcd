// unroll-run: trains and evaluates programs compiled elsewhere, on a
// machine that has the runtime (LibTorch) but not the compiler (MLIR,
// Halide), e.g. a GPU machine:
//
//   unrollc compile SPEC -o DIR [--target host|host-cuda]   (compiler box)
//   unroll-run train DIR [--out RUN] [--device cuda]        (anywhere)
//   unroll-run eval RUN
//
// DIR holds plan.json, program.json and the kernel library kernels.so
// (abi/ProgramDir.h).
#include "abi/Files.h"
#include "abi/ProgramDir.h"
#include "abi/RuntimeAPI.h"
#include "runtime/BuildInfo.h"
#include "runtime/KernelLibrary.h"
#include "runtime/Plan.h"
#include "runtime/Run.h"

#include <CLI/CLI.hpp>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <iostream>
#include <optional>
#include <unistd.h>

using namespace unroll::runtime;
namespace abi = unroll::abi;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string readFile(const fs::path &p, const std::string &what) {
  std::optional<std::string> text = abi::readFile(p.string());
  if (!text)
    throw RunError("'" + p.parent_path().string() + "' is not " + what +
                   " (no " + p.filename().string() + ")");
  return *text;
}

/// The program directory `dir` (abi/ProgramDir.h); throws RunError.
abi::ProgramDir readProgram(const std::string &dir) {
  try {
    return abi::readProgramDir(dir);
  } catch (const abi::ProgramDirError &e) {
    throw RunError(e.what());
  }
}

/// The kernel library for `backend` ("compiled", "eager" or "auto": the
/// library where there is one), checked against `planText`.
std::unique_ptr<KernelLibrary> kernelsFor(const std::string &backend,
                                          const fs::path &library,
                                          const std::string &planText) {
  if (backend == "eager" || (backend == "auto" && library.empty()))
    return nullptr;
  std::error_code ec;
  if (backend == "auto" && !fs::exists(library, ec)) {
    // A run whose library has since gone (a cleared cache): eagerly.
    std::cerr << "kernels: " << library.string()
              << " no longer exists; running the fused ops eagerly\n";
    return nullptr;
  }
  if (library.empty())
    throw RunError("--backend=compiled: the program was compiled without "
                   "kernels (unrollc compile --backend=eager)");
  auto lib = KernelLibrary::open(library.string(), planText);
  std::cerr << "kernels: " << library.string() << " ("
            << (lib->kernels()->device == UNROLL_KERNELS_CUDA ? "CUDA" : "host")
            << ", " << lib->target() << ")\n";
  return lib;
}

int run(int argc, char **argv) {
  CLI::App app{"unroll-run: train and evaluate programs compiled by "
               "`unrollc compile`, without the compiler"};
  app.require_subcommand(0, 1);
  bool version = false;
  app.add_flag("--version", version, "print the LibTorch in use");

  std::string device = "auto", backend = "auto", cacheDir;
  auto *train = app.add_subcommand("train", "train a compiled program");
  std::string programDir, out;
  bool resume = false;
  train->add_option("program", programDir, "directory from unrollc compile")
      ->required();
  train->add_option("--out", out, "run directory (default: runs/<program>)");
  train->add_flag("--resume", resume,
                  "continue the run in --out from its last checkpoint");
  train->add_option("--device", device, "cpu, cuda, cuda:N or auto");
  train
      ->add_option("--backend", backend,
                   "compiled: the program's kernel library; eager: LibTorch "
                   "ops; auto (default): the library where there is one")
      ->check(CLI::IsMember({"auto", "compiled", "eager"}));
  train->add_option("--cache-dir", cacheDir, "where solved targets are cached");

  auto *eval = app.add_subcommand("eval", "evaluate a run layer by layer");
  std::string runDir, baseline, kernelsDir;
  std::vector<double> ood, perturb;
  eval->add_option("run_dir", runDir, "run directory")->required();
  eval->add_option("--kernels", kernelsDir,
                   "a compiled program whose kernel library to use (default: "
                   "the one the run was trained with)");
  eval->add_option("--ood", ood, "input shifts p, comma-separated")
      ->delimiter(',')
      ->allow_extra_args(false);
  eval->add_option("--perturb", perturb,
                   "noise s added at every layer, comma-separated")
      ->delimiter(',')
      ->allow_extra_args(false);
  eval->add_option("--baseline", baseline, "a run to compare with");
  eval->add_option("--device", device, "cpu, cuda, cuda:N or auto");
  eval->add_option("--backend", backend, "auto, compiled or eager")
      ->check(CLI::IsMember({"auto", "compiled", "eager"}));
  eval->add_option("--cache-dir", cacheDir, "where solved targets are cached");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError &e) {
    return app.exit(e) == 0 ? 0 : 1;
  }
  if (version) {
    std::cout << "unroll-run (runtime interface " << UNROLL_RUNTIME_ABI_VERSION
              << ")\n"
              << describeTorch() << "\n";
    return 0;
  }
  // Through the C entry points, as unrollc: the same options and errors.
  std::string err;
  auto finish = [&](int rc) {
    if (rc == 1)
      std::cerr << "error: " << err << "\n";
    return rc;
  };
  char buf[4096] = {0};
  if (*train) {
    const abi::ProgramDir p = readProgram(programDir);
    auto lib = kernelsFor(backend, p.kernels, p.planText);
    json opts = {
        {"run_dir",
         out.empty()
             ? (fs::path("runs") / fs::absolute(programDir).filename()).string()
             : out},
        {"resume", resume},
        {"spec", p.info.spec},
        {"settings", p.info.settings},
        {"cache_dir", cacheDir},
        {"interactive", isatty(2) == 1},
        {"device", device},
        {"kernel_library", lib ? lib->path() : ""},
        {"tool", "unroll-run"}};
    int rc =
        unroll_runtime_train(p.planText.c_str(), opts.dump().c_str(),
                             lib ? lib->kernels() : nullptr, buf, sizeof buf);
    err = buf;
    return finish(rc);
  }
  if (*eval) {
    const std::string planText =
        readFile(fs::path(runDir) / "plan.json", "a run directory");
    fs::path library;
    if (!kernelsDir.empty())
      library = readProgram(kernelsDir).kernels;
    else {
      json config = json::parse(
          readFile(fs::path(runDir) / "config.json", "a run directory"),
          nullptr, false);
      if (!config.is_discarded())
        library = config.value("kernel_library", "");
    }
    auto lib = kernelsFor(backend, library, planText);
    json opts = {{"run_dir", runDir},     {"ood", ood},
                 {"perturb", perturb},    {"baseline", baseline},
                 {"cache_dir", cacheDir}, {"device", device}};
    int rc = unroll_runtime_eval(
        opts.dump().c_str(), lib ? lib->kernels() : nullptr, buf, sizeof buf);
    err = buf;
    return finish(rc);
  }
  std::cerr << app.help();
  return 1;
}

} // namespace

int main(int argc, char **argv) {
  try {
    return run(argc, argv);
  } catch (const RunError &e) {
    std::cerr << "error: " << e.what() << "\n";
  } catch (const PlanError &e) {
    std::cerr << "error: " << e.what() << "\n";
  } catch (const c10::Error &e) {
    std::cerr << "error: LibTorch: " << e.what_without_backtrace() << "\n";
  } catch (const std::exception &e) {
    std::cerr << "error: " << e.what() << "\n";
  }
  return 1;
}
