// unrollc: the Unroll compiler driver.
//
//   unrollc check FILE...        parse and check specs
//   unrollc --emit=ast FILE      print a stage of the pipeline
//   unrollc --version            print the toolchain this build links
#include "RuntimeLoader.h"
#include "compiler/BuildInfo.h"
#include "compiler/IRGen/IRGen.h"
#include "compiler/Pipeline.h"
#include "compiler/plan/PlanLowering.h"

#include "dsl/Frontend.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/OperationSupport.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_ostream.h"

#include <CLI/CLI.hpp>

#include <iostream>

using namespace unroll;

namespace {

std::vector<std::string> libraryPath(const std::vector<std::string> &extra) {
  std::vector<std::string> p = extra;
  for (auto &d : dsl::defaultLibraryPath())
    p.push_back(d);
  return p;
}

int checkFiles(const std::vector<std::string> &files,
               const std::vector<std::string> &includes, bool quiet) {
  int rc = 0;
  dsl::FrontendOptions opts;
  opts.libraryPath = libraryPath(includes);
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

int emit(const std::string &stage, const std::string &file,
         const std::vector<std::string> &includes, bool locations,
         bool printAfterAll) {
  if (stage == "kernels") {
    std::cerr << "error: --emit=kernels is not available yet; this build "
                 "supports --emit=ast, --emit=mlir, --emit=mlir-unrolled "
                 "and --emit=plan\n";
    return 1;
  }
  dsl::FrontendOptions opts;
  opts.libraryPath = libraryPath(includes);
  // The AST is what was parsed: printed even if it would not type-check.
  opts.parseOnly = stage == "ast";
  auto fe = dsl::runFrontend(file, nullptr, opts, std::cerr);
  if (!fe->ok())
    return 1;
  if (stage == "ast") {
    dsl::printAST(*fe->main->ast, std::cout);
    return 0;
  }
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
    return 1;
  if (stage == "mlir-unrolled" || stage == "plan")
    if (mlir::failed(compiler::runPipeline(*module, printAfterAll,
                                           /*fuse=*/stage == "plan")))
      return 1;
  if (stage == "plan") {
    auto plan = compiler::lowerToPlan(*module);
    if (mlir::failed(plan))
      return 1;
    std::cout << plan->dump(1) << "\n";
    return 0;
  }
  mlir::OpPrintingFlags flags;
  if (locations)
    flags.enableDebugInfo(/*enable=*/true, /*prettyForm=*/false);
  module->print(llvm::outs(), flags);
  llvm::outs() << "\n";
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
      ->check(
          CLI::IsMember({"ast", "mlir", "mlir-unrolled", "plan", "kernels"}));
  app.add_option("file", file, "spec file (with --emit)");
  bool locations = false;
  bool printAfterAll = false;
  app.add_flag("--print-ir-after-all", printAfterAll,
               "print the IR after every pass (to stderr)");
  app.add_flag("--locations", locations,
               "with --emit=mlir: print each op's DSL source location");
  app.add_flag("--version", version, "print the linked toolchain");

  auto *check = app.add_subcommand("check", "parse and check spec files");
  std::vector<std::string> checkFilesList;
  bool quiet = false;
  check->add_option("files", checkFilesList, "spec files")->required();
  check->add_flag("-q,--quiet", quiet, "print nothing on success");
  check->add_option("-I,--lib", includes,
                    "extra directory to search for imported libraries");

  try {
    app.parse(argc, argv);
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
  if (*check)
    return checkFiles(checkFilesList, includes, quiet);
  if (!stage.empty()) {
    if (file.empty()) {
      std::cerr << "error: --emit needs a spec file\n";
      return 1;
    }
    return emit(stage, file, includes, locations, printAfterAll);
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
