#include "compiler/passes/FuseElementwise.h"

#include "compiler/dialect/UnrollDialect.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/Pass/PassRegistry.h"
#include "llvm/ADT/EquivalenceClasses.h"
#include "llvm/ADT/SetVector.h"

#include <map>
#include <string>

namespace unroll::compiler {

namespace {

using namespace mlir;

bool isElementwise(Operation *op) {
  return isa<ir::AddOp, ir::SubOp, ir::MulOp, ir::DivOp, ir::PowOp, ir::MaxOp,
             ir::MinOp, ir::UnaryOp>(op);
}

struct FuseElementwisePass
    : public PassWrapper<FuseElementwisePass, OperationPass<ModuleOp>> {
  MLIR_DEFINE_EXPLICIT_INTERNAL_INLINE_TYPE_ID(FuseElementwisePass)

  StringRef getArgument() const final { return "fuse-elementwise"; }
  StringRef getName() const final { return "FuseElementwise"; }
  StringRef getDescription() const final {
    return "Group elementwise chains into unroll.fused regions";
  }
  void getDependentDialects(DialectRegistry &registry) const override {
    registry.insert<ir::UnrollDialect>();
  }

  void runOnOperation() override {
    // Layer bodies are where the per-layer compute lives.
    SmallVector<Block *> blocks;
    getOperation().walk(
        [&](ir::LayerOp l) { blocks.push_back(&l.getBody().front()); });
    getOperation().walk(
        [&](ir::StepOp s) { blocks.push_back(&s.getBody().front()); });
    for (Block *b : blocks)
      fuse(*b, /*reductions=*/false);
    // Losses and descent constraints measure every instance: a chain that
    // ends in a reduction over all axes becomes one kernel, which spares
    // the per-element temporaries (over every layer's states at once, for
    // a constraint) and their nodes backward.
    SmallVector<Block *> measures;
    getOperation().walk(
        [&](ir::LossOp l) { measures.push_back(&l.getBody().front()); });
    getOperation().walk(
        [&](ir::ConstraintOp c) { measures.push_back(&c.getBody().front()); });
    for (Block *b : measures)
      fuse(*b, /*reductions=*/true);
    numberKernels();
  }

  /// A reduction over all axes, which may end a group (never join one).
  static bool isFullReduction(Operation *op) {
    auto r = dyn_cast<ir::ReduceOp>(op);
    return r && !r.getAxis();
  }

  /// Gives every fused region a `kernel` number; regions that compute the
  /// same ops on the same types share one (LISTA's ten layers use one
  /// kernel), so code generation compiles each once.
  void numberKernels() {
    std::map<std::string, int64_t> byKey;
    getOperation().walk([&](ir::FusedOp op) {
      auto [it, added] =
          byKey.emplace(regionKey(op), static_cast<int64_t>(byKey.size()));
      (void)added;
      op->setAttr(
          "kernel",
          IntegerAttr::get(IntegerType::get(op.getContext(), 64), it->second));
    });
  }

  /// What a region computes, independent of SSA names.
  static std::string regionKey(ir::FusedOp op) {
    std::string key;
    llvm::raw_string_ostream os(key);
    for (Type t : op.getInputs().getTypes())
      os << t << ";";
    llvm::DenseMap<Value, unsigned> number;
    Block &body = op.getBody().front();
    for (BlockArgument a : body.getArguments())
      number[a] = number.size();
    for (Operation &o : body) {
      os << o.getName() << o.getAttrDictionary() << "(";
      for (Value v : o.getOperands())
        os << number.lookup(v) << ",";
      os << ")";
      for (Value r : o.getResults()) {
        os << r.getType();
        number[r] = number.size();
      }
      os << ";";
    }
    return os.str();
  }

  void fuse(Block &block, bool reductions) {
    // A producer joins its users' group when all of its users are in that
    // one group (so its value is needed nowhere else). Walking backwards
    // lets a whole chain join in one sweep; repeat until nothing changes.
    auto member = [&](Operation *op) {
      return isElementwise(op) || (reductions && isFullReduction(op));
    };
    llvm::EquivalenceClasses<Operation *> groups;
    for (Operation &op : block)
      if (member(&op))
        groups.insert(&op);
    bool changed = true;
    while (changed) {
      changed = false;
      for (Operation &op : llvm::reverse(block)) {
        if (!isElementwise(&op) || op.use_empty())
          continue;
        Operation *leader = nullptr;
        bool joinable = true;
        for (Operation *user : op.getUsers()) {
          if (user->getBlock() != &block || !member(user)) {
            joinable = false;
            break;
          }
          Operation *l = groups.getLeaderValue(user);
          if (leader && l != leader) {
            joinable = false;
            break;
          }
          leader = l;
        }
        if (joinable && groups.getLeaderValue(&op) != leader) {
          groups.unionSets(&op, leader);
          changed = true;
        }
      }
    }
    for (auto it = groups.begin(); it != groups.end(); ++it) {
      if (!it->isLeader())
        continue;
      SmallVector<Operation *> members(groups.member_begin(it),
                                       groups.member_end());
      if (members.size() < 2)
        continue;
      llvm::sort(members, [](Operation *a, Operation *b) {
        return a->isBeforeInBlock(b);
      });
      outline(members);
    }
  }

  /// Moves `members` (in block order; the last one is the only one used
  /// outside) into an unroll.fused op placed where the last one was.
  void outline(ArrayRef<Operation *> members) {
    llvm::SmallPtrSet<Operation *, 16> inside(members.begin(), members.end());
    llvm::SetVector<Value> inputs;
    for (Operation *op : members)
      for (Value v : op->getOperands())
        if (!inside.contains(v.getDefiningOp()))
          inputs.insert(v);
    Operation *root = members.back();
    OpBuilder b(root);
    auto fused = b.create<ir::FusedOp>(
        root->getLoc(), root->getResult(0).getType(), inputs.getArrayRef());
    Block *body = new Block();
    fused.getBody().push_back(body);
    IRMapping map;
    for (Value v : inputs)
      map.map(v, body->addArgument(v.getType(), v.getLoc()));
    OpBuilder inner = OpBuilder::atBlockEnd(body);
    for (Operation *op : members)
      inner.clone(*op, map);
    inner.create<ir::YieldOp>(root->getLoc(),
                              ValueRange{map.lookup(root->getResult(0))});
    root->getResult(0).replaceAllUsesWith(fused.getResult());
    for (Operation *op : llvm::reverse(members))
      op->erase();
  }
};

} // namespace

std::unique_ptr<mlir::Pass> createFuseElementwisePass() {
  return std::make_unique<FuseElementwisePass>();
}

void registerFuseElementwisePass() {
  mlir::PassRegistration<FuseElementwisePass>();
}

} // namespace unroll::compiler
