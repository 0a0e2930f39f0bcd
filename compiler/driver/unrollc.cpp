// unrollc: the Unroll compiler driver.
//
//   unrollc check FILE...        parse and check specs
//   unrollc --emit=ast FILE      print a stage of the pipeline
//   unrollc train SPEC           compile and train into a run directory
//   unrollc compile SPEC -o DIR  compile a program and its kernel library
//                                for unroll-run (another machine, a GPU)
//   unrollc eval RUN_DIR         evaluate a run layer by layer
//   unrollc export RUN_DIR -o DIR  a trained run as a C library
//   unrollc build RUN_DIR -o EXE   a trained run as a program on .npy files
//   unrollc --version            print the toolchain this build links
//
// This file parses the command line; Commands.h has the commands.
#include "Commands.h"
#include "RuntimeLoader.h"
#include "Suggest.h"
#include "compiler/BuildInfo.h"

#include "dsl/Diagnostics.h"

#include <CLI/CLI.hpp>

#include <iostream>
#include <string>
#include <vector>

using namespace unroll;

namespace {

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
  driver::DriverOptions co;
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
    return driver::checkCommand(checkFilesList, co, quiet);
  if (*train)
    return driver::trainCommand(trainSpec, co, out, resume, cacheDir, device,
                                backend);
  if (*comp)
    return driver::compileCommand(compileSpec, co, compileOut, kernelOpts,
                                  compileBackend);
  if (*exp)
    return driver::exportCommand(exportRun, exportOpts, "");
  if (*build)
    return driver::exportCommand(buildRun, buildOpts, buildExe);
  if (*eval)
    return driver::evalCommand(runDir, ood, perturb, baseline, cacheDir, device,
                               backend);
  if (!stage.empty()) {
    if (file.empty()) {
      std::cerr << "error: --emit needs a spec file\n";
      return 1;
    }
    return driver::emitCommand(stage, file, co, locations);
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
