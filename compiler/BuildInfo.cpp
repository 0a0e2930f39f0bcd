#include "compiler/BuildInfo.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "llvm/Config/llvm-config.h"

#include <Halide.h>

#include <sstream>

namespace unroll::compiler {

std::string describeToolchain() {
  mlir::MLIRContext ctx;
  mlir::OpBuilder b(&ctx);
  auto module = mlir::ModuleOp::create(b.getUnknownLoc());
  bool ok = module && module->getNumRegions() == 1;
  module->erase();
  std::ostringstream os;
  os << "MLIR " << LLVM_VERSION_STRING << (ok ? "" : " (BROKEN)") << "\n"
     << "Halide " << UNROLL_HALIDE_VERSION << " (host target "
     << Halide::get_host_target().to_string() << ")";
  return os.str();
}

} // namespace unroll::compiler
