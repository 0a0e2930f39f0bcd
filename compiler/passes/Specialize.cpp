#include "compiler/passes/Specialize.h"

#include "compiler/dialect/UnrollDialect.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Pass/PassRegistry.h"
#include "llvm/ADT/DenseSet.h"

namespace unroll::compiler {

namespace {

using namespace mlir;

struct SpecializePass
    : public PassWrapper<SpecializePass, OperationPass<ModuleOp>> {
  MLIR_DEFINE_EXPLICIT_INTERNAL_INLINE_TYPE_ID(SpecializePass)

  StringRef getArgument() const final { return "specialize"; }
  StringRef getName() const final { return "Specialize"; }
  StringRef getDescription() const final {
    return "Inline DSL function calls into the algorithms, specialising "
           "their generic bodies to each call site";
  }
  void getDependentDialects(DialectRegistry &registry) const override {
    registry.insert<ir::UnrollDialect, func::FuncDialect>();
  }

  void runOnOperation() override {
    ModuleOp module = getOperation();
    SymbolTable symbols(module);
    // A function's body may call others: inline until no call is left. The
    // DSL has no recursion; the bound only stops IR that has some.
    for (int round = 0;; ++round) {
      SmallVector<ir::CallOp> calls;
      module.walk([&](ir::AlgorithmOp alg) {
        alg.walk([&](ir::CallOp c) { calls.push_back(c); });
      });
      if (calls.empty())
        break;
      if (round == kMaxDepth) {
        calls.front().emitError("specialize: calls nest deeper than ")
            << kMaxDepth << " (a recursive function?)";
        return signalPassFailure();
      }
      for (ir::CallOp call : calls)
        if (failed(inlineCall(call, symbols)))
          return signalPassFailure();
    }
    // Every call was inlined: private functions that nothing outside the
    // private functions refers to go, all of them after one walk (a use
    // query per function would walk the module once each).
    llvm::DenseSet<StringAttr> used;
    for (Operation &top : module.getBody()->getOperations()) {
      auto f = dyn_cast<func::FuncOp>(top);
      if (f && f.isPrivate())
        continue;
      if (auto uses = SymbolTable::getSymbolUses(&top))
        for (const SymbolTable::SymbolUse &u : *uses)
          used.insert(u.getSymbolRef().getRootReference());
    }
    for (auto f : llvm::make_early_inc_range(module.getOps<func::FuncOp>()))
      if (f.isPrivate() && !used.contains(f.getSymNameAttr()))
        f.erase();
  }

  static constexpr int kMaxDepth = 256;

  LogicalResult inlineCall(ir::CallOp call, SymbolTable &symbols) {
    auto callee = symbols.lookup<func::FuncOp>(call.getCallee());
    if (!callee || callee.isExternal())
      return call.emitError("specialize: no body for function @")
             << call.getCallee();
    Block &body = callee.getBody().front();
    if (body.getNumArguments() != call.getNumOperands())
      return call.emitError("specialize: @")
             << call.getCallee() << " takes " << body.getNumArguments()
             << " arguments, the call passes " << call.getNumOperands();
    IRMapping map;
    for (auto [arg, v] : llvm::zip(body.getArguments(), call.getOperands()))
      map.map(arg, v);
    OpBuilder b(call);
    Location site = call.getLoc();
    for (Operation &op : body.without_terminator()) {
      Operation *c = b.clone(op, map);
      c->walk([&](Operation *nested) {
        nested->setLoc(CallSiteLoc::get(nested->getLoc(), site));
      });
    }
    auto ret = cast<func::ReturnOp>(body.getTerminator());
    if (ret.getNumOperands() != call->getNumResults())
      return call.emitError("specialize: @")
             << call.getCallee() << " returns " << ret.getNumOperands()
             << " values, the call expects " << call->getNumResults();
    for (auto [r, v] : llvm::zip(call->getResults(), ret.getOperands()))
      r.replaceAllUsesWith(map.lookupOrDefault(v));
    call.erase();
    return success();
  }
};

} // namespace

std::unique_ptr<mlir::Pass> createSpecializePass() {
  return std::make_unique<SpecializePass>();
}

void registerSpecializePass() { mlir::PassRegistration<SpecializePass>(); }

} // namespace unroll::compiler
