// `unrollc check` and `unrollc --emit`: the stages of a spec, printed.
#include "Commands.h"

#include "compiler/Pipeline.h"
#include "compiler/kernels/CudaKernels.h"
#include "compiler/kernels/HalideKernels.h"

#include "dsl/AST.h"
#include "dsl/Frontend.h"

#include "mlir/IR/OperationSupport.h"
#include "llvm/Support/raw_ostream.h"

#include <iostream>

namespace unroll::driver {

namespace {

compiler::SpecOptions specOptions(const DriverOptions &o) {
  compiler::SpecOptions so;
  so.libraryPath = o.includes;
  for (auto &d : dsl::defaultLibraryPath())
    so.libraryPath.push_back(d);
  so.settings = o.settings;
  so.printAfterAll = o.printAfterAll;
  return so;
}

} // namespace

int checkCommand(const std::vector<std::string> &files,
                 const DriverOptions &options, bool quiet) {
  int rc = 0;
  // A spec is checked as it would train: with the --set values applied.
  const compiler::SpecOptions so = specOptions(options);
  for (const std::string &f : files) {
    if (!compiler::compileSpec(f, so, compiler::Stage::Checked, std::cerr)) {
      rc = 1;
      continue;
    }
    if (!quiet)
      std::cout << f << ": ok\n";
  }
  return rc;
}

int emitCommand(const std::string &stage, const std::string &file,
                const DriverOptions &options, bool locations) {
  compiler::SpecOptions so = specOptions(options);
  if (stage == "ast") {
    // The AST is what was parsed: printed even if it would not type-check.
    so.parseOnly = true;
    auto spec =
        compiler::compileSpec(file, so, compiler::Stage::Checked, std::cerr);
    if (!spec)
      return 1;
    dsl::printAST(*spec->frontend->main->ast, std::cout);
    return 0;
  }
  // Kernels are generated from the runtime program's fused ops.
  const compiler::Stage until = stage == "mlir" ? compiler::Stage::IR
                                : stage == "mlir-unrolled"
                                    ? compiler::Stage::Unrolled
                                    : compiler::Stage::Plan;
  auto spec = compiler::compileSpec(file, so, until, std::cerr);
  if (!spec)
    return 1;
  if (stage == "ptx") {
    compiler::printPtx(abi::readPlan(*spec->plan), std::cout);
  } else if (stage == "kernels") {
    compiler::printKernels(abi::readPlan(*spec->plan), std::cout);
  } else if (stage == "plan") {
    std::cout << spec->plan->dump(1) << "\n";
  } else {
    mlir::OpPrintingFlags flags;
    if (locations)
      flags.enableDebugInfo(/*enable=*/true, /*prettyForm=*/false);
    spec->module->print(llvm::outs(), flags);
    llvm::outs() << "\n";
  }
  return 0;
}

/// The plan of `spec` as text; false after printing diagnostics.
bool planTextOf(const std::string &spec, const DriverOptions &options,
                std::string &planText) {
  auto c = compiler::compileSpec(spec, specOptions(options),
                                 compiler::Stage::Plan, std::cerr);
  if (!c)
    return false;
  planText = c->plan->dump();
  return true;
}

} // namespace unroll::driver
