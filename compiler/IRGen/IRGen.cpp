#include "compiler/IRGen/IRGen.h"
#include "compiler/IRGen/ObjectiveSplit.h"

#include "compiler/dialect/UnrollDialect.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Transforms/RegionUtils.h"

#include "llvm/ADT/SetVector.h"
#include <algorithm>
#include <cassert>
#include <deque>
#include <filesystem>
#include <functional>
#include <optional>
#include <set>
#include <tuple>

namespace unroll::compiler {

using namespace unroll::dsl;
using mlir::Value;

namespace {

/// Raised after a diagnostic for a construct IR generation cannot handle;
/// unwinds to generateIR, which returns null.
struct Unsupported {};

struct ModuleVal;

/// A value during generation: a tensor, a compile-time integer (sizes,
/// axis numbers) that becomes a tensor only when used as one, or a module
/// instance.
struct GenValue {
  Value v;
  std::optional<long long> integer;
  ModuleVal *module = nullptr;
  std::vector<Value> tuple; // several results (minibatch)
};

/// A module instance: its parameters, lets and members by name. A member
/// declared with `repeat n` is a ModuleVal holding its n copies.
struct ModuleVal {
  const ModuleDecl *decl = nullptr;
  std::map<std::string, GenValue> env;
  std::vector<ModuleVal *> copies; // non-empty: a repeated member
};

/// Whether `v` is computed from constants and the layer index alone (no
/// state, parameter or input reaches it), so that no gradient could flow
/// through it.
bool constantValue(Value v) {
  mlir::Operation *d = v.getDefiningOp();
  if (!d)
    return false; // a block argument: the state
  if (mlir::isa<ir::ConstantOp, ir::LayerIndexOp>(d))
    return true;
  if (d->getNumOperands() == 0 || d->getNumRegions() != 0)
    return false; // inputs, parameters, lets with bodies
  return llvm::all_of(d->getOperands(), constantValue);
}

class IRGen {
public:
  IRGen(mlir::MLIRContext &ctx, const Frontend &fe)
      : ctx_(ctx), fe_(fe), b_(&ctx) {}

  mlir::OwningOpRef<mlir::ModuleOp> run() {
    auto module = mlir::ModuleOp::create(loc(SourceLoc{}));
    module_ = module;
    b_.setInsertionPointToEnd(module.getBody());
    for (auto &u : fe_.main->ast->unrolleds) {
      // Functions capture the algorithm's values: one set per algorithm.
      outlined_.clear();
      genUnrolled(*u);
    }
    return module;
  }

  [[noreturn]] void fail(SourceLoc at, const std::string &msg) {
    fe_.diag->error(at, msg);
    throw Unsupported();
  }

private:
  /// The op's DSL location; inside an inlined function, a call-site
  /// location chain ending at the user's own line.
  mlir::Location loc(SourceLoc l) {
    if (!l.valid())
      return mlir::UnknownLoc::get(&ctx_);
    mlir::Location r = mlir::FileLineColLoc::get(
        &ctx_, fe_.sources.path(l.file), l.line, l.col);
    // The innermost call site already carries the outer ones.
    if (!callSites_.empty())
      r = mlir::CallSiteLoc::get(r, callSites_.back());
    return r;
  }
  std::vector<mlir::Location> callSites_;

  //===------------------------------------------------------------------===//
  // Environments: name -> value, innermost last.
  //===------------------------------------------------------------------===//
  std::vector<std::map<std::string, GenValue>> env_;
  struct Frame {
    IRGen &g;
    explicit Frame(IRGen &g) : g(g) { g.env_.emplace_back(); }
    ~Frame() { g.env_.pop_back(); }
  };
  void bind(const std::string &n, GenValue v) { env_.back()[n] = v; }
  const GenValue *lookup(const std::string &n) const {
    for (auto it = env_.rbegin(); it != env_.rend(); ++it) {
      auto f = it->find(n);
      if (f != it->end())
        return &f->second;
    }
    return nullptr;
  }

  //===------------------------------------------------------------------===//
  // Types
  //===------------------------------------------------------------------===//
  long long staticDim(const Expr &e) {
    switch (e.kind) {
    case Expr::Kind::Number:
      return static_cast<long long>(static_cast<const NumberExpr &>(e).value);
    case Expr::Kind::Name: {
      const GenValue *v = lookup(static_cast<const NameExpr &>(e).name);
      if (v && v->integer)
        return *v->integer;
      fail(e.loc, "size '" + exprToString(e) + "' is not known here");
    }
    case Expr::Kind::Binary: {
      auto &bin = static_cast<const BinaryExpr &>(e);
      long long l = staticDim(*bin.lhs), r = staticDim(*bin.rhs);
      switch (bin.op) {
      case '+':
        return l + r;
      case '-':
        return l - r;
      case '*':
        return l * r;
      case '/':
        return r ? l / r : 0;
      default:
        break;
      }
      break;
    }
    default:
      break;
    }
    fail(e.loc, "cannot evaluate size '" + exprToString(e) + "'");
  }

  mlir::RankedTensorType tensorOf(const TypeExpr &t) {
    llvm::SmallVector<int64_t> shape;
    switch (t.kind) {
    case TypeExpr::Kind::Float:
    case TypeExpr::Kind::Scalar:
      break;
    case TypeExpr::Kind::Vec:
    case TypeExpr::Kind::Mat:
    case TypeExpr::Kind::Tensor:
      for (auto &d : t.dims)
        shape.push_back(staticDim(*d));
      break;
    default:
      fail(t.loc, "expected a tensor type");
    }
    return ir::tensorType(&ctx_, shape);
  }

  //===------------------------------------------------------------------===//
  // Declarations
  //===------------------------------------------------------------------===//
  void genUnrolled(const UnrolledDecl &u) {
    const Sema::UnrolledInfo *info = fe_.sema->unrolledInfo(&u);
    assert(info && "generateIR needs a spec that checked cleanly");
    const ProblemDecl &pd = *info->problem;
    auto alg =
        b_.create<ir::AlgorithmOp>(loc(u.loc), u.name, pd.name, info->layers);
    mlir::Block *body = new mlir::Block();
    alg.getBody().push_back(body);
    mlir::OpBuilder::InsertionGuard guard(b_);
    b_.setInsertionPointToEnd(body);

    Frame top(*this);
    for (auto &[n, d] : info->bindings)
      bind(n, GenValue{Value(), d.value()});
    for (auto &[n, v] : info->constants)
      bind(n, GenValue{constant(v, loc(pd.loc)), std::nullopt});
    bind("L", GenValue{Value(), info->layers});
    for (const VarDecl &v : pd.vars)
      if (v.role != VarDecl::Role::Var)
        bind(v.name,
             GenValue{b_.create<ir::InputOp>(
                          loc(v.loc), tensorOf(*v.type), v.name,
                          v.role == VarDecl::Role::Data ? ir::Role::Data
                                                        : ir::Role::Given),
                      std::nullopt});
    for (const LetDecl &l : pd.lets)
      bind(l.name, gen(*l.value));
    for (const LetDecl &l : u.lets)
      bind(l.name, gen(*l.value));
    for (const ParamDecl &p : u.params) {
      std::string binding =
          p.binding == Binding::PerLayer ? "per_layer" : "shared";
      if (p.type->kind == TypeExpr::Kind::Module) {
        bind(p.name, GenValue{Value(), std::nullopt,
                              instantiate(*p.type, p.name, binding)});
        continue;
      }
      bind(p.name, GenValue{param(p, p.name, binding), std::nullopt});
    }
    // State: the problem's variables, then the algorithm's own.
    llvm::SmallVector<Value> state;
    std::vector<std::string> names;
    for (const VarDecl &v : pd.vars) {
      if (v.role != VarDecl::Role::Var)
        continue;
      const InitDecl *init = nullptr;
      for (const InitDecl &i : u.inits)
        if (i.var == v.name)
          init = &i;
      assert(init && "Sema requires an init for every var");
      auto type = tensorOf(*v.type);
      auto op =
          b_.create<ir::StateOp>(loc(init->loc), type, v.name, init->random,
                                 /*algorithm=*/false);
      genInit(op.getInit(), type, *init->value);
      state.push_back(op.getResult());
      names.push_back(v.name);
    }
    const size_t varCount = names.size();
    {
      // The algorithm's own states: their initial values may read the
      // initial values of the problem's variables and of earlier states.
      Frame initFrame(*this);
      for (size_t i = 0; i < names.size(); ++i)
        bind(names[i], GenValue{state[i], std::nullopt});
      for (const StateDecl &sd : u.states) {
        auto type = tensorOf(*sd.type);
        auto op = b_.create<ir::StateOp>(loc(sd.loc), type, sd.name, sd.random,
                                         /*algorithm=*/true);
        genInit(op.getInit(), type, *sd.value);
        state.push_back(op.getResult());
        names.push_back(sd.name);
        bind(sd.name, GenValue{op.getResult(), std::nullopt});
      }
    }

    auto step = b_.create<ir::StepOp>(loc(u.stepLoc), state);
    mlir::Block *sb = new mlir::Block();
    step.getBody().push_back(sb);
    b_.setInsertionPointToEnd(sb);
    Frame stepFrame(*this);
    for (size_t i = 0; i < names.size(); ++i)
      bind(names[i],
           GenValue{sb->addArgument(state[i].getType(), state[i].getLoc()),
                    std::nullopt});
    layerIndex_ = true;
    for (const StmtPtr &s : u.step)
      assign(static_cast<const AssignStmt &>(*s), /*asTensors=*/true);
    layerIndex_ = false;
    llvm::SmallVector<Value> next;
    for (const std::string &n : names)
      next.push_back(lookup(n)->v);
    // Step results stay readable per layer for the train block (probes are
    // added before the yield as constraints ask for them).
    stepLocals_.clear();
    for (const StmtPtr &s : u.step)
      for (const std::string &t : static_cast<const AssignStmt &>(*s).targets)
        stepLocals_[t] = lookup(t)->v;
    auto yield = b_.create<ir::YieldOp>(loc(u.stepLoc), next);

    b_.setInsertionPointAfter(step);
    genObjective(pd, llvm::ArrayRef<Value>(state).take_front(varCount));
    genComposite(pd);
    genProjections(pd);
    for (auto &t : fe_.main->ast->trains)
      if (t->name == u.name) {
        if (trained_.count(u.name))
          fail(t->loc, "IR generation supports one train block per "
                       "algorithm; '" +
                           u.name + "' has several");
        trained_.insert(u.name);
        genTrain(*t, alg, pd, names, varCount, state, yield);
      }
  }

  /// `a = e` or `a, b = e` (a tuple from minibatch).
  void assign(const AssignStmt &a, bool asTensors) {
    GenValue v = gen(*a.value);
    if (a.targets.size() == 1) {
      bind(a.targets[0],
           asTensors ? GenValue{tensor(v, a.value->loc), std::nullopt} : v);
      return;
    }
    if (v.tuple.size() != a.targets.size())
      fail(a.loc, "IR generation: cannot unpack this value");
    for (size_t i = 0; i < a.targets.size(); ++i)
      bind(a.targets[i], GenValue{v.tuple[i], std::nullopt});
  }

  //===------------------------------------------------------------------===//
  // Modules
  //===------------------------------------------------------------------===//

  /// A tensor parameter named `name` with its initialiser.
  Value param(const ParamDecl &p, const std::string &name,
              const std::string &binding) {
    auto type = tensorOf(*p.type);
    auto op = b_.create<ir::ParamOp>(
        loc(p.loc), type, b_.getStringAttr(name),
        ir::BindingAttr::get(b_.getContext(), *ir::symbolizeBinding(binding)),
        /*layer=*/nullptr);
    genInit(op.getInit(), type, *p.init);
    return op.getResult();
  }

  /// An instance of the module `t` names: every tensor member becomes an
  /// unroll.param called `prefix.member` (`prefix.member.k` for the k-th
  /// copy of a repeated member), with the binding of the outer parameter.
  ModuleVal *instantiate(const TypeExpr &t, const std::string &prefix,
                         const std::string &binding) {
    const ModuleDecl *md = moduleDecl(t.moduleName);
    if (!md)
      fail(t.loc, "IR generation cannot find module '" + t.moduleName + "'");
    // Arguments are evaluated where the type is written.
    std::vector<GenValue> args(md->params.size());
    std::vector<bool> given(md->params.size(), false);
    size_t pos = 0;
    for (const Arg &a : t.moduleArgs) {
      size_t idx = pos;
      if (a.name.empty())
        ++pos;
      else
        for (size_t i = 0; i < md->params.size(); ++i)
          if (md->params[i].name == a.name)
            idx = i;
      args[idx] = gen(*a.value);
      given[idx] = true;
    }
    modules_.emplace_back();
    ModuleVal *m = &modules_.back();
    m->decl = md;
    std::vector<std::map<std::string, GenValue>> outer;
    outer.swap(env_);
    env_.emplace_back();
    for (size_t i = 0; i < md->params.size(); ++i)
      bind(md->params[i].name,
           given[i] ? args[i] : gen(*md->params[i].defaultValue));
    for (const LetDecl &l : md->lets)
      bind(l.name, gen(*l.value));
    for (const ParamDecl &p : md->members) {
      std::string name = prefix + "." + p.name;
      if (p.type->kind != TypeExpr::Kind::Module) {
        bind(p.name, GenValue{param(p, name, binding), std::nullopt});
        continue;
      }
      if (!p.repeat) {
        bind(p.name, GenValue{Value(), std::nullopt,
                              instantiate(*p.type, name, binding)});
        continue;
      }
      GenValue n = gen(*p.repeat);
      if (!n.integer || *n.integer < 1)
        fail(p.repeat->loc, "repeat count must be a positive constant");
      modules_.emplace_back();
      ModuleVal *rep = &modules_.back();
      rep->decl = moduleDecl(p.type->moduleName);
      for (long long k = 0; k < *n.integer; ++k)
        rep->copies.push_back(
            instantiate(*p.type, name + "." + std::to_string(k), binding));
      bind(p.name, GenValue{Value(), std::nullopt, rep});
    }
    m->env = env_.back();
    env_.swap(outer);
    return m;
  }

  const ModuleDecl *moduleDecl(const std::string &name) {
    for (LoadedFile *f : fe_.loader->ordered())
      for (auto &md : f->ast->modules)
        if (md->name == name)
          return md.get();
    return nullptr;
  }

  /// m.method(args): a call that sees the module's names. A repeated
  /// member runs its copies in order, `inverse` in reverse order.
  GenValue callMethod(ModuleVal *m, const std::string &method,
                      std::vector<GenValue> args, SourceLoc site) {
    if (!m->copies.empty()) {
      std::vector<ModuleVal *> order = m->copies;
      if (method == "inverse")
        std::reverse(order.begin(), order.end());
      for (ModuleVal *c : order)
        args = {callMethod(c, method, args, site)};
      return args[0];
    }
    const FnDecl *fn = nullptr;
    for (auto &f : m->decl->methods)
      if (f->name == method)
        fn = f.get();
    if (!fn)
      fail(site,
           "module '" + m->decl->name + "' has no method '" + method + "'");
    ModuleVal *saved = currentModule_;
    currentModule_ = m;
    GenValue r = callFn(*fn, args, site);
    currentModule_ = saved;
    return r;
  }

  //===------------------------------------------------------------------===//
  // Training
  //===------------------------------------------------------------------===//

  /// A region with one block whose arguments have `types`; returns it with
  /// the builder inside.
  mlir::Block *openBody(mlir::Region &r, mlir::TypeRange types,
                        mlir::Location l) {
    mlir::Block *blk = new mlir::Block();
    r.push_back(blk);
    for (mlir::Type t : types)
      blk->addArgument(t, l);
    b_.setInsertionPointToEnd(blk);
    return blk;
  }

  void genObjective(const ProblemDecl &pd, llvm::ArrayRef<Value> state) {
    mlir::OpBuilder::InsertionGuard guard(b_);
    mlir::Location l = loc(pd.objectiveLoc);
    auto op = b_.create<ir::ObjectiveOp>(l);
    mlir::Block *blk =
        openBody(op.getBody(), mlir::ValueRange(state).getTypes(), l);
    std::vector<GenValue> args;
    for (Value a : blk->getArguments())
      args.push_back(GenValue{a, std::nullopt});
    GenValue r = inlineObjective(pd, args, pd.objectiveLoc);
    b_.create<ir::YieldOp>(l, mlir::ValueRange{tensor(r, pd.objectiveLoc)});
  }

  /// The objective split (ObjectiveSplit.h) as an unroll.composite: the
  /// smooth part g, its gradient and the l1 weight w, for the classical
  /// solvers that compute targets.
  void genComposite(const ProblemDecl &pd) {
    std::optional<ObjectiveSplit> split = splitOf(pd);
    if (!split)
      return; // several variables: no proximal split
    // Without one prox for the non-smooth terms there is no split to run
    // (a target then fails in targetSolver, at its solver).
    const FnDecl *prox = proxOf(pd, *split);
    if ((!split->nonsmooth.empty() && !prox) || !split->composed.empty())
      return;
    for (const ObjectiveSplit::Linear &t : split->linear)
      if (!fe_.sema->proxOf(pd, t.h))
        return;
    const VarDecl *var = split->var;
    const std::vector<const Expr *> l1Weights = split->l1Weights();
    mlir::OpBuilder::InsertionGuard guard(b_);
    mlir::Location l = loc(pd.objectiveLoc);
    auto op = b_.create<ir::CompositeOp>(l, l1Weights.empty() ? "none" : "l1");
    mlir::RankedTensorType vt = tensorOf(*var->type);
    mlir::Block *blk = openBody(op.getBody(), vt, l);
    Frame f(*this);
    bind(var->name, GenValue{blk->getArgument(0), std::nullopt});
    auto smoothValue = [&] {
      Value acc = constant(0, l);
      for (auto &[sign, t] : split->smooth) {
        Value v = tensor(gen(*t), t->loc);
        acc = sign > 0 ? create<ir::AddOp>(l, acc, v)
                       : create<ir::SubOp>(l, acc, v);
      }
      return acc;
    };
    Value g = smoothValue();
    auto grad =
        b_.create<ir::GradOp>(l, vt, mlir::ValueRange{blk->getArgument(0)});
    {
      mlir::OpBuilder::InsertionGuard inner(b_);
      mlir::Block *gb = openBody(grad.getBody(), vt, l);
      Frame gf(*this);
      bind(var->name, GenValue{gb->getArgument(0), std::nullopt});
      b_.create<ir::YieldOp>(l, mlir::ValueRange{smoothValue()});
    }
    b_.create<ir::YieldOp>(
        l, mlir::ValueRange{g, grad.getResult(), weightOf(l1Weights, l)});
    b_.setInsertionPointAfter(op);
    if (prox)
      b_.setInsertionPointAfter(genProximal(*split, *prox));
    for (const ObjectiveSplit::Linear &t : split->linear)
      b_.setInsertionPointAfter(
          genComposedTerm(*var, t, *fe_.sema->proxOf(pd, t.h)));
  }

  /// The term c * h(e(y)) as an unroll.composed_term: e, its adjoint (the
  /// gradient of <e(y), z> in y) and prox_{t c h} by h's `prox`.
  mlir::Operation *genComposedTerm(const VarDecl &var,
                                   const ObjectiveSplit::Linear &term,
                                   const FnDecl &prox) {
    mlir::OpBuilder::InsertionGuard guard(b_);
    mlir::Location l = loc(term.expr->loc);
    auto op = b_.create<ir::ComposedTermOp>(l, term.h);
    mlir::RankedTensorType vt = tensorOf(*var.type);
    auto mapOf = [&](Value y) {
      Frame f(*this);
      bind(var.name, GenValue{y, std::nullopt});
      return tensor(gen(*term.map), term.map->loc);
    };
    mlir::Type zt;
    {
      mlir::OpBuilder::InsertionGuard inner(b_);
      mlir::Block *mb = openBody(op.getMap(), vt, l);
      Value e = mapOf(mb->getArgument(0));
      zt = e.getType();
      b_.create<ir::YieldOp>(l, mlir::ValueRange{e});
    }
    {
      mlir::OpBuilder::InsertionGuard inner(b_);
      mlir::Block *ab = openBody(op.getAdjoint(), {vt, zt}, l);
      Value z = ab->getArgument(1);
      auto grad =
          b_.create<ir::GradOp>(l, vt, mlir::ValueRange{ab->getArgument(0)});
      {
        mlir::OpBuilder::InsertionGuard g(b_);
        mlir::Block *gb = openBody(grad.getBody(), vt, l);
        Value e = mapOf(gb->getArgument(0));
        Value inner = b_.create<ir::ReduceOp>(l, ir::tensorType(&ctx_, {}),
                                              "sum", create<ir::MulOp>(l, e, z),
                                              mlir::IntegerAttr());
        b_.create<ir::YieldOp>(l, mlir::ValueRange{inner});
      }
      b_.create<ir::YieldOp>(l, mlir::ValueRange{grad.getResult()});
    }
    {
      mlir::OpBuilder::InsertionGuard inner(b_);
      llvm::SmallVector<mlir::Type> types{zt, ir::tensorType(&ctx_, {})};
      mlir::Block *pb = openBody(op.getProx(), types, l);
      Value t = pb->getArgument(1);
      if (term.weight)
        t = create<ir::MulOp>(l, t,
                              tensor(gen(*term.weight), term.weight->loc));
      Value r = tensor(callFn(prox,
                              {GenValue{pb->getArgument(0), std::nullopt},
                               GenValue{t, std::nullopt}},
                              term.expr->loc),
                       term.expr->loc);
      b_.create<ir::YieldOp>(l, mlir::ValueRange{r});
    }
    return op;
  }

  /// The sum of the weights `ws` (null: 1).
  Value weightOf(const std::vector<const Expr *> &ws, mlir::Location l) {
    Value w = constant(0, l);
    for (const Expr *we : ws)
      w = create<ir::AddOp>(l, w,
                            we ? tensor(gen(*we), we->loc) : constant(1, l));
    return w;
  }

  /// The objective split of `pd`, a term non-smooth where its function
  /// has a `prox` visible to the problem.
  std::optional<ObjectiveSplit> splitOf(const ProblemDecl &pd) {
    return splitObjective(pd, [&](const std::string &h) {
      return fe_.sema->proxOf(pd, h) != nullptr;
    });
  }

  /// The `prox` of the non-smooth terms of `split` (of one function) when
  /// it is in scope; null otherwise.
  const FnDecl *proxOf(const ProblemDecl &pd, const ObjectiveSplit &split) {
    if (split.nonsmooth.empty())
      return nullptr;
    return fe_.sema->proxOf(pd, split.nonsmooth[0].h);
  }

  /// The non-smooth terms c_i * h(y) of `split` as an unroll.proximal
  /// whose body maps (v, t) to prox_{t sum_i c_i h}(v), by h's `prox`.
  mlir::Operation *genProximal(const ObjectiveSplit &split,
                               const FnDecl &prox) {
    const std::string &h = split.nonsmooth[0].h;
    std::vector<const Expr *> weights;
    for (const ObjectiveSplit::Term &t : split.nonsmooth)
      weights.push_back(t.weight);
    mlir::OpBuilder::InsertionGuard guard(b_);
    mlir::Location l = loc(split.nonsmooth[0].expr->loc);
    auto op = b_.create<ir::ProximalOp>(l, h);
    mlir::RankedTensorType vt = tensorOf(*split.var->type);
    llvm::SmallVector<mlir::Type> types{vt, ir::tensorType(&ctx_, {})};
    mlir::Block *blk = openBody(op.getBody(), types, l);
    Value t = create<ir::MulOp>(l, blk->getArgument(1), weightOf(weights, l));
    Value r = tensor(callFn(prox,
                            {GenValue{blk->getArgument(0), std::nullopt},
                             GenValue{t, std::nullopt}},
                            split.nonsmooth[0].expr->loc),
                     split.nonsmooth[0].expr->loc);
    b_.create<ir::YieldOp>(l, mlir::ValueRange{r});
    return op;
  }

  /// An unroll.projection for every variable with a constraint set: the
  /// set's `project` with the set's arguments, applied to the body's
  /// argument.
  void genProjections(const ProblemDecl &pd) {
    for (const VarDecl &v : pd.vars) {
      const SetDecl *set = fe_.sema->setOf(&v);
      if (!set)
        continue;
      mlir::OpBuilder::InsertionGuard guard(b_);
      mlir::Location l = loc(v.set->loc);
      auto op = b_.create<ir::ProjectionOp>(l, set->name, v.name);
      mlir::Block *blk = openBody(op.getBody(), tensorOf(*v.type), l);
      static const std::vector<Arg> none;
      const std::vector<Arg> &given =
          v.set->kind == Expr::Kind::Call
              ? static_cast<const CallExpr &>(*v.set).args
              : none;
      GenValue point{blk->getArgument(0), std::nullopt};
      Value p = tensor(callFn(*set->project,
                              argsFor(*set->project, given, point), v.set->loc),
                       v.set->loc);
      b_.create<ir::YieldOp>(l, mlir::ValueRange{p});
    }
  }

  /// The classical solver `solver` (as written) for the target of `pd`'s
  /// one variable, checked against the problem's form: proximal gradient
  /// (ista, fista) on g + c h(y) with y's set, by h's `prox`; projected
  /// gradient (pgd) on g and y's set; primal-dual (primal_dual) on those
  /// plus terms c_k h_k(e_k(y)) with e_k affine; auto picks fista, or
  /// primal_dual where there are such terms. Fails at `at`, naming the
  /// forms supported, when none applies.
  std::string targetSolver(const ProblemDecl &pd, const std::string &solver,
                           SourceLoc at) {
    std::optional<ObjectiveSplit> split = splitOf(pd);
    if (!split)
      fail(at, "classical solvers need a problem with one variable; '" +
                   pd.name + "' has several");
    const SetDecl *set = fe_.sema->setOf(split->var);
    const std::string &y = split->var->name;
    const std::string supported =
        "supported: a smooth objective plus c * h(" + y +
        ") for one h with a prox, a set, and terms c * h(e) with e affine in " +
        y + " (primal_dual)";
    if (!split->composed.empty())
      fail(at,
           "no classical solver applies to '" + pd.name + "': its term " +
               exprToString(*split->composed[0]) +
               " applies a non-smooth function to an expression of '" + y +
               "' that is not a top-level term c * h(e) with e affine in '" +
               y + "'; " + supported);
    const ObjectiveSplit::Term *term =
        split->nonsmooth.empty() ? nullptr : &split->nonsmooth[0];
    auto needProx = [&](const std::string &h, const Expr &e) {
      const FnDecl *p = fe_.sema->proxOf(pd, h);
      if (!p)
        fail(at, "the term " + exprToString(e) + " of '" + pd.name +
                     "' is not smooth, and no prox of '" + h +
                     "' is in scope; add 'import prox' or declare 'prox " + h +
                     "(v, t) = ...'");
      return p;
    };
    const FnDecl *prox = term ? needProx(term->h, *term->expr) : nullptr;
    for (const ObjectiveSplit::Linear &t : split->linear)
      needProx(t.h, *t.expr);
    if (!split->linear.empty() && solver != "auto" && solver != "primal_dual")
      fail(at, solver + " cannot step through the term " +
                   exprToString(*split->linear[0].expr) + " of '" + pd.name +
                   "': proximal and projected gradient take one non-smooth "
                   "function of '" +
                   y +
                   "' itself; use primal_dual (or auto), which splits off "
                   "further terms and terms of affine maps of '" +
                   y + "'");
    if (solver == "pgd" && !set)
      fail(at, "pgd projects onto a constraint set, but '" + y +
                   "' has none; declare one ('var " + y +
                   " : ... in box(0, 1)') or use ista or fista");
    if (solver == "pgd" && term)
      fail(at, "pgd needs a smooth objective, but '" + pd.name +
                   "' has the term " + exprToString(*term->expr) +
                   "; use ista or fista, which take its prox");
    // The prox of c h plus the set's indicator is the projection of the
    // prox when both act entry by entry (a product of intervals).
    if (term && set && !(elementwise(*prox) && elementwise(*set->project)))
      fail(at, "no classical solver applies to '" + pd.name +
                   "': the prox of " + term->h + " and the projection onto '" +
                   set->name +
                   "' combine into the prox of their sum only when both act "
                   "entry by entry; supported: a smooth objective with a "
                   "set, a term with a prox, or both with a prox and a set "
                   "that act entry by entry (norm1 and nonneg or box)");
    if (solver == "auto")
      return split->linear.empty() ? "fista" : "primal_dual";
    return solver;
  }

  /// Whether `fn` acts on each entry alone: its body built of elementwise
  /// built-ins, arithmetic, numbers, names and functions that are so too.
  bool elementwise(const FnDecl &fn, int depth = 0) const {
    if (!fn.body || depth > 32)
      return false;
    std::function<bool(const Expr &)> ok = [&](const Expr &e) -> bool {
      switch (e.kind) {
      case Expr::Kind::Number:
      case Expr::Kind::Name:
        return true;
      case Expr::Kind::Unary:
        return ok(*static_cast<const UnaryExpr &>(e).operand);
      case Expr::Kind::Binary: {
        auto &b = static_cast<const BinaryExpr &>(e);
        return b.op != '@' && ok(*b.lhs) && ok(*b.rhs);
      }
      case Expr::Kind::Call: {
        auto &c = static_cast<const CallExpr &>(e);
        if (c.callee->kind != Expr::Kind::Name)
          return false;
        for (const Arg &a : c.args)
          if (!ok(*a.value))
            return false;
        if (const FnDecl *callee = fe_.sema->calleeOf(&c))
          return elementwise(*callee, depth + 1);
        static const std::set<std::string> builtins = {
            "abs",  "sign",    "relu",   "exp", "log", "sqrt",
            "tanh", "sigmoid", "square", "min", "max"};
        return builtins.count(static_cast<const NameExpr &>(*c.callee).name);
      }
      default:
        return false;
      }
    };
    return ok(*fn.body);
  }

  /// `names` are the states in order, the problem's `varCount` variables
  /// first.
  void genTrain(const TrainDecl &t, ir::AlgorithmOp alg, const ProblemDecl &pd,
                const std::vector<std::string> &names, size_t varCount,
                llvm::ArrayRef<Value> state, ir::YieldOp stepYield) {
    using K = TrainItem::Kind;
    std::vector<mlir::NamedAttribute> config;
    Frame trainFrame(*this);
    auto stateType = [&](const std::string &n) -> mlir::Type {
      for (size_t i = 0; i < names.size(); ++i)
        if (names[i] == n)
          return state[i].getType();
      return {};
    };
    for (const TrainItem &it : t.items) {
      mlir::Location l = loc(it.loc);
      mlir::OpBuilder::InsertionGuard guard(b_);
      switch (it.kind) {
      case K::Target: {
        auto &c = static_cast<const CallExpr &>(*it.value);
        std::string solver;
        SourceLoc solverLoc = it.loc;
        mlir::FloatAttr tol;
        mlir::IntegerAttr iters;
        for (size_t i = 0; i < c.args.size(); ++i) {
          const Arg &a = c.args[i];
          if (a.name == "solver" || (a.name.empty() && i == 1)) {
            solver = static_cast<const NameExpr &>(*a.value).name;
            solverLoc = a.value->loc;
          } else if (a.name == "tol" || (a.name.empty() && i == 2))
            tol = b_.getF64FloatAttr(number(*a.value));
          else if (a.name == "iters" || (a.name.empty() && i == 3))
            iters =
                b_.getI64IntegerAttr(static_cast<int64_t>(number(*a.value)));
        }
        if (varCount != 1) {
          std::string vars;
          for (size_t i = 0; i < varCount; ++i)
            vars += (i ? ", '" : "'") + names[i] + "'";
          fail(it.loc, "target '" + it.name + "' would be the optimum of '" +
                           pd.name + "', which has " +
                           std::to_string(varCount) + " variables (" + vars +
                           "); classical solvers compute targets of problems "
                           "with one variable");
        }
        solver = targetSolver(pd, solver, solverLoc);
        auto op = b_.create<ir::TargetOp>(l, state[0].getType(), it.name,
                                          solver, tol, iters);
        bind(it.name, GenValue{op.getResult(), std::nullopt});
        break;
      }
      case K::Loss: {
        auto op = b_.create<ir::LossOp>(l);
        mlir::Block *blk =
            openBody(op.getBody(), mlir::ValueRange(state).getTypes(), l);
        Frame f(*this);
        finalState_.clear();
        for (size_t i = 0; i < names.size(); ++i)
          finalState_[names[i]] = blk->getArgument(i);
        GenValue r = gen(*it.value);
        finalState_.clear();
        b_.create<ir::YieldOp>(l, mlir::ValueRange{tensor(r, it.loc)});
        break;
      }
      case K::Descend:
        genConstraint(it, stateType, stepYield);
        break;
      case K::Noise: {
        // Sema knows the value is a distribution; IR generation needs it
        // written out as normal(a, b) or uniform(a, b).
        const Expr &v = *it.value;
        auto *c = v.kind == Expr::Kind::Call ? static_cast<const CallExpr *>(&v)
                                             : nullptr;
        std::string dist = c && c->callee->kind == Expr::Kind::Name
                               ? static_cast<const NameExpr &>(*c->callee).name
                               : "";
        if ((dist != "normal" && dist != "uniform") || c->args.size() != 2)
          fail(v.loc, "IR generation needs the noise written as normal(a, b) "
                      "or uniform(a, b)");
        auto op = b_.create<ir::NoiseOp>(l, it.name,
                                         *ir::symbolizeDistribution(dist));
        mlir::Block *blk = openBody(op.getBody(), stateType(it.name), l);
        Frame f(*this);
        bind(it.name, GenValue{blk->getArgument(0), std::nullopt});
        layerIndex_ = true;
        // The distribution's parameters are not differentiated in
        // training (noise explores; it is not part of the model), as in
        // the method's reference implementation.
        auto stopped = [&](Value v) -> Value {
          return constantValue(v) ? v : b_.create<ir::StopGradientOp>(l, v);
        };
        Value a = stopped(tensor(gen(*c->args[0].value), it.loc));
        Value bv = stopped(tensor(gen(*c->args[1].value), it.loc));
        layerIndex_ = false;
        b_.create<ir::YieldOp>(l, mlir::ValueRange{a, bv});
        break;
      }
      case K::Data: {
        llvm::SmallVector<mlir::Attribute> sources;
        for (auto &c : it.calls)
          sources.push_back(configCall(*c));
        config.emplace_back(b_.getStringAttr("data"), b_.getArrayAttr(sources));
        break;
      }
      case K::Primal:
      case K::Dual:
      case K::Evaluate: {
        static const char *names[] = {"primal", "dual", "evaluate"};
        int which = it.kind == K::Primal ? 0 : it.kind == K::Dual ? 1 : 2;
        config.emplace_back(b_.getStringAttr(names[which]),
                            configCall(*it.value));
        break;
      }
      case K::Epochs:
      case K::Batch:
      case K::Seed: {
        const char *name = it.kind == K::Epochs  ? "epochs"
                           : it.kind == K::Batch ? "batch"
                                                 : "seed";
        config.emplace_back(
            b_.getStringAttr(name),
            b_.getI64IntegerAttr(static_cast<int64_t>(number(*it.value))));
        break;
      }
      }
    }
    alg->setAttr("train", b_.getDictionaryAttr(config));
  }

  /// descend FORM by eps: the per-layer measure as a region; step results
  /// it constrains get an unroll.probe in the step.
  void
  genConstraint(const TrainItem &it,
                const std::function<mlir::Type(const std::string &)> &stateType,
                ir::YieldOp stepYield) {
    auto &c = static_cast<const CallExpr &>(*it.value);
    const std::string &form = static_cast<const NameExpr &>(*c.callee).name;
    size_t qi = form == "distance" ? 0 : 1;
    const std::string &on =
        static_cast<const NameExpr &>(*c.args[qi].value).name;
    mlir::Type qt = stateType(on);
    if (!qt) {
      auto local = stepLocals_.find(on);
      if (local == stepLocals_.end())
        fail(c.args[qi].value->loc, "IR generation cannot find '" + on + "'");
      qt = local->second.getType();
      if (!probed_.count(on)) {
        mlir::OpBuilder::InsertionGuard g(b_);
        b_.setInsertionPoint(stepYield);
        b_.create<ir::ProbeOp>(loc(it.loc), on, local->second);
        probed_.insert(on);
      }
    }
    mlir::Location l = loc(it.loc);
    const ir::ConstraintMode mode = it.mode == ConstraintMode::Ratio
                                        ? ir::ConstraintMode::Ratio
                                        : ir::ConstraintMode::Difference;
    auto op = b_.create<ir::ConstraintOp>(
        l, b_.getStringAttr(form), b_.getStringAttr(on),
        b_.getF64FloatAttr(number(*it.eps)),
        ir::ConstraintModeAttr::get(b_.getContext(), mode));
    mlir::Block *blk = openBody(op.getBody(), qt, l);
    Frame f(*this);
    GenValue q{blk->getArgument(0), std::nullopt};
    bind(on, q);
    layerIndex_ = true;
    Value measure;
    if (form == "distance") {
      Value tgt = tensor(gen(*c.args[1].value), c.args[1].value->loc);
      Value d = create<ir::SubOp>(l, q.v, tgt);
      measure = b_.create<ir::ReduceOp>(l, ir::tensorType(&ctx_, {}), "norm", d,
                                        mlir::IntegerAttr());
    } else {
      const Expr &g = *c.args[0].value;
      Sema::FunctionRef ref;
      if (g.kind == Expr::Kind::Name)
        ref = fe_.sema->functionRef(&static_cast<const NameExpr &>(g));
      if (!ref.fn && !ref.objective)
        fail(g.loc, "IR generation supports named functions here only");
      if (form == "objective") {
        measure = tensor(ref.fn ? callFn(*ref.fn, {q}, c.loc)
                                : inlineObjective(*ref.objective, {q}, c.loc),
                         c.loc);
      } else {
        Value grad = gradOf(ref, {q.v}, c.loc);
        measure = b_.create<ir::ReduceOp>(l, ir::tensorType(&ctx_, {}), "norm",
                                          grad, mlir::IntegerAttr());
      }
    }
    layerIndex_ = false;
    b_.create<ir::YieldOp>(l, mlir::ValueRange{measure});
  }

  /// The value of a number literal (possibly negated) in a setting.
  double number(const Expr &e) {
    if (e.kind == Expr::Kind::Number)
      return static_cast<const NumberExpr &>(e).value;
    if (e.kind == Expr::Kind::Unary)
      return -number(*static_cast<const UnaryExpr &>(e).operand);
    fail(e.loc, "expected a number");
  }

  /// A setting such as adam(lr = 1e-5) as {kind = "adam", lr = 1.0e-5}.
  mlir::DictionaryAttr configCall(const Expr &e) {
    std::vector<mlir::NamedAttribute> out;
    const std::vector<Arg> *args = nullptr;
    std::string kind;
    if (e.kind == Expr::Kind::Call) {
      auto &c = static_cast<const CallExpr &>(e);
      kind = static_cast<const NameExpr &>(*c.callee).name;
      args = &c.args;
    } else {
      kind = static_cast<const NameExpr &>(e).name;
    }
    out.emplace_back(b_.getStringAttr("kind"), b_.getStringAttr(kind));
    if (args)
      for (size_t i = 0; i < args->size(); ++i) {
        const Arg &a = (*args)[i];
        std::string name = a.name.empty() ? "arg" + std::to_string(i) : a.name;
        mlir::Attribute v = settingValue(*a.value);
        // npy's files and directory are relative to the spec that names
        // them, wherever unrollc runs.
        if (kind == "npy" && a.value->kind == Expr::Kind::String) {
          std::filesystem::path file =
              static_cast<const StringExpr &>(*a.value).value;
          if (file.is_relative())
            file = std::filesystem::absolute(
                std::filesystem::path(fe_.sources.path(a.value->loc.file))
                    .parent_path() /
                file);
          v = b_.getStringAttr(file.lexically_normal().string());
        }
        out.emplace_back(b_.getStringAttr(name), v);
      }
    return b_.getDictionaryAttr(out);
  }

  mlir::Attribute settingValue(const Expr &v) {
    switch (v.kind) {
    case Expr::Kind::Number: {
      auto &n = static_cast<const NumberExpr &>(v);
      if (n.isInt)
        return b_.getI64IntegerAttr(static_cast<int64_t>(n.value));
      return b_.getF64FloatAttr(n.value);
    }
    case Expr::Kind::Unary:
      return b_.getF64FloatAttr(number(v));
    case Expr::Kind::Name:
      return b_.getStringAttr(static_cast<const NameExpr &>(v).name);
    case Expr::Kind::String:
      return b_.getStringAttr(static_cast<const StringExpr &>(v).value);
    case Expr::Kind::Range: {
      auto &r = static_cast<const RangeExpr &>(v);
      return b_.getI64ArrayAttr({static_cast<int64_t>(number(*r.lo)),
                                 static_cast<int64_t>(number(*r.hi))});
    }
    default:
      fail(v.loc, "unsupported setting value");
    }
  }

  /// Fills an initialiser region: a distribution becomes unroll.random, a
  /// scalar is broadcast with unroll.fill, zeros()/ones() are fills.
  void genInit(mlir::Region &region, mlir::RankedTensorType type,
               const Expr &init) {
    mlir::Block *blk = new mlir::Block();
    region.push_back(blk);
    mlir::OpBuilder::InsertionGuard guard(b_);
    b_.setInsertionPointToEnd(blk);
    mlir::Location l = loc(init.loc);
    Value v;
    if (init.kind == Expr::Kind::Call &&
        static_cast<const CallExpr &>(init).callee->kind == Expr::Kind::Name) {
      auto &c = static_cast<const CallExpr &>(init);
      const std::string &n = static_cast<const NameExpr &>(*c.callee).name;
      if (n == "normal" || n == "uniform") {
        // Operands are generated in source order (C++ leaves the order of
        // evaluating call arguments unspecified).
        Value a = tensor(gen(*c.args[0].value), init.loc);
        Value bv = tensor(gen(*c.args[1].value), init.loc);
        v = b_.create<ir::RandomOp>(l, type, *ir::symbolizeDistribution(n), a,
                                    bv);
      } else if (n == "zeros" || n == "ones")
        v = b_.create<ir::FillOp>(l, type, constant(n == "ones", l));
    }
    if (!v) {
      v = tensor(gen(init), init.loc);
      if (v.getType() != type)
        v = b_.create<ir::FillOp>(l, type, v);
    }
    b_.create<ir::YieldOp>(l, mlir::ValueRange{v});
  }

  //===------------------------------------------------------------------===//
  // Expressions
  //===------------------------------------------------------------------===//
  Value constant(double v, mlir::Location l) {
    return b_.create<ir::ConstantOp>(l, ir::tensorType(&ctx_, {}),
                                     b_.getF32FloatAttr(static_cast<float>(v)));
  }

  Value tensor(const GenValue &g, SourceLoc at) {
    if (g.v)
      return g.v;
    assert(g.integer && "a GenValue is a tensor or an integer");
    return constant(static_cast<double>(*g.integer), loc(at));
  }

  GenValue gen(const Expr &e) {
    mlir::Location l = loc(e.loc);
    switch (e.kind) {
    case Expr::Kind::Number: {
      auto &n = static_cast<const NumberExpr &>(e);
      if (n.isInt)
        return GenValue{Value(), static_cast<long long>(n.value)};
      return GenValue{constant(n.value, l), std::nullopt};
    }
    case Expr::Kind::Name: {
      const std::string &n = static_cast<const NameExpr &>(e).name;
      if (n == "l" && layerIndex_ && !lookup(n))
        return GenValue{
            b_.create<ir::LayerIndexOp>(l, ir::tensorType(&ctx_, {})),
            std::nullopt};
      const GenValue *v = lookup(n);
      if (!v)
        fail(e.loc, "IR generation cannot resolve '" + n + "' here yet");
      return *v;
    }
    case Expr::Kind::Unary: {
      GenValue o = gen(*static_cast<const UnaryExpr &>(e).operand);
      if (o.integer)
        return GenValue{Value(), -*o.integer};
      return GenValue{b_.create<ir::UnaryOp>(l, "neg", o.v), std::nullopt};
    }
    case Expr::Kind::Transpose:
      return GenValue{
          create<ir::TransposeOp>(
              l, tensor(gen(*static_cast<const TransposeExpr &>(e).operand),
                        e.loc)),
          std::nullopt};
    case Expr::Kind::Binary:
      return genBinary(static_cast<const BinaryExpr &>(e));
    case Expr::Kind::Call:
      return genCall(static_cast<const CallExpr &>(e));
    case Expr::Kind::Index: {
      // y[L] in the loss: the state after the last layer.
      auto &ix = static_cast<const IndexExpr &>(e);
      if (ix.base->kind == Expr::Kind::Name) {
        auto it =
            finalState_.find(static_cast<const NameExpr &>(*ix.base).name);
        GenValue idx = gen(*ix.index);
        const GenValue *layers = lookup("L");
        if (it != finalState_.end() && idx.integer && layers &&
            *idx.integer == *layers->integer)
          return GenValue{it->second, std::nullopt};
      }
      fail(e.loc, "IR generation supports only the final layer, as in y[L]");
    }
    default:
      fail(e.loc,
           "IR generation does not support '" + exprToString(e) + "' yet");
    }
  }

  GenValue genBinary(const BinaryExpr &e) {
    GenValue a = gen(*e.lhs), c = gen(*e.rhs);
    if (a.integer && c.integer && e.op != '/' && e.op != '^' && e.op != '@') {
      long long x = *a.integer, y = *c.integer;
      return GenValue{Value(), e.op == '+'   ? x + y
                               : e.op == '-' ? x - y
                                             : x * y};
    }
    mlir::Location l = loc(e.opLoc);
    Value x = tensor(a, e.lhs->loc), y = tensor(c, e.rhs->loc);
    Value r;
    switch (e.op) {
    case '+':
      r = create<ir::AddOp>(l, x, y);
      break;
    case '-':
      r = create<ir::SubOp>(l, x, y);
      break;
    case '*':
      r = create<ir::MulOp>(l, x, y);
      break;
    case '/':
      r = create<ir::DivOp>(l, x, y);
      break;
    case '^':
      r = create<ir::PowOp>(l, x, y);
      break;
    case '@':
      r = create<ir::MatmulOp>(l, x, y);
      break;
    default:
      fail(e.opLoc, "unknown operator");
    }
    return GenValue{r, std::nullopt};
  }

  /// Creates an op whose result type is inferred from its operands and
  /// attributes (unranked inside a generic function). Sema has already
  /// checked the shapes, so a failure here is a compiler bug.
  template <typename Op, typename... Args>
  Value create(mlir::Location l, Args &&...args) {
    auto op = b_.create<Op>(l, ir::unrankedTensor(&ctx_),
                            std::forward<Args>(args)...);
    inferOrFail(op);
    return op.getResult();
  }
  void inferOrFail(mlir::Operation *op) {
    if (mlir::failed(ir::inferResultTypes(op)))
      throw InternalError("IR generation: front end and dialect disagree on "
                          "the shapes of '" +
                          op->getName().getStringRef().str() + "'");
  }

  GenValue genCall(const CallExpr &c) {
    mlir::Location l = loc(c.loc);
    if (const FnDecl *fn = fe_.sema->calleeOf(&c))
      return genFnCall(*fn, c);
    auto argsOf = [&] {
      std::vector<GenValue> args;
      for (const Arg &a : c.args)
        args.push_back(gen(*a.value));
      return args;
    };
    if (c.callee->kind == Expr::Kind::Member) {
      auto &m = static_cast<const MemberExpr &>(*c.callee);
      GenValue base = gen(*m.base);
      if (!base.module)
        fail(c.loc, "'" + exprToString(*m.base) + "' is not a module");
      return callMethod(base.module, m.name, argsOf(), c.loc);
    }
    const std::string &n = static_cast<const NameExpr &>(*c.callee).name;
    if (const GenValue *v = lookup(n); v && v->module)
      return callMethod(v->module, "forward", argsOf(), c.loc);
    if (const ProblemDecl *pd = fe_.sema->objectiveOf(&c)) {
      std::vector<GenValue> args;
      for (const Arg &a : c.args)
        args.push_back(gen(*a.value));
      return inlineObjective(*pd, args, c.loc);
    }
    if (n == "grad")
      return genGrad(c);
    auto arg = [&](size_t i) { return tensor(gen(*c.args[i].value), c.loc); };
    static const char *unary[] = {"abs",  "sign", "relu",    "exp",   "log",
                                  "sqrt", "tanh", "sigmoid", "square"};
    for (const char *u : unary)
      if (n == u)
        return GenValue{b_.create<ir::UnaryOp>(l, n, arg(0)), std::nullopt};
    if (n == "max" || n == "min") {
      Value x = arg(0), y = arg(1); // in source order
      Value r =
          n == "max" ? create<ir::MaxOp>(l, x, y) : create<ir::MinOp>(l, x, y);
      return GenValue{r, std::nullopt};
    }
    if (n == "sum" || n == "mean" || n == "norm" || n == "norm1" ||
        n == "sqnorm") {
      Value x = arg(0);
      mlir::IntegerAttr axis;
      if (c.args.size() == 2) {
        GenValue ax = gen(*c.args[1].value);
        if (!ax.integer)
          fail(c.args[1].value->loc, "axis must be a constant");
        axis = b_.getI64IntegerAttr(*ax.integer);
      }
      return GenValue{create<ir::ReduceOp>(l, b_.getStringAttr(n), x, axis),
                      std::nullopt};
    }
    if (n == "squeeze2d")
      return GenValue{create<ir::Squeeze2dOp>(l, arg(0)), std::nullopt};
    if (n == "unsqueeze2d")
      return GenValue{create<ir::Unsqueeze2dOp>(l, arg(0)), std::nullopt};
    if (n == "conv2d" || n == "conv1x1") {
      Value x = arg(0), k = arg(1); // in source order
      return GenValue{n == "conv2d" ? create<ir::Conv2dOp>(l, x, k)
                                    : create<ir::Conv1x1Op>(l, x, k),
                      std::nullopt};
    }
    if (n == "stop_gradient")
      return GenValue{b_.create<ir::StopGradientOp>(l, arg(0)), std::nullopt};
    if (n == "inv") {
      Value m = arg(0);
      return GenValue{b_.create<ir::InverseOp>(l, m), std::nullopt};
    }
    if (n == "concat") {
      Value x = arg(0), y = arg(1);
      GenValue ax = gen(*c.args[2].value);
      if (!ax.integer)
        fail(c.args[2].value->loc, "axis must be a constant");
      return GenValue{
          create<ir::ConcatOp>(l, x, y, b_.getI64IntegerAttr(*ax.integer)),
          std::nullopt};
    }
    if (n == "diff") {
      // The slice bounds depend on the shape: a diff op until infer-shapes.
      Value x = arg(0);
      int64_t axis = -1; // the last, whatever the rank turns out to be
      if (c.args.size() == 2) {
        GenValue ax = gen(*c.args[1].value);
        if (!ax.integer)
          fail(c.args[1].value->loc, "axis must be a constant");
        axis = *ax.integer;
      }
      return GenValue{create<ir::DiffOp>(l, x, b_.getI64IntegerAttr(axis)),
                      std::nullopt};
    }
    if (n == "first_half" || n == "second_half") {
      // The slice bounds depend on the shape: a half op until infer-shapes.
      Value x = arg(0);
      return GenValue{
          create<ir::HalfOp>(
              l, b_.getStringAttr(n == "first_half" ? "first" : "second"), x),
          std::nullopt};
    }
    if (n == "logsumexp" || n == "softmax") {
      Value x = arg(0);
      GenValue ax = gen(*c.args[1].value);
      if (!ax.integer)
        fail(c.args[1].value->loc, "axis must be a constant");
      auto axis = b_.getI64IntegerAttr(*ax.integer);
      if (n == "softmax")
        return GenValue{b_.create<ir::SoftmaxOp>(l, x, axis), std::nullopt};
      return GenValue{create<ir::LogSumExpOp>(l, x, axis), std::nullopt};
    }
    if (n == "append_ones") // a bias column; its shape depends on x's
      return GenValue{create<ir::AppendOnesOp>(l, arg(0)), std::nullopt};
    if (n == "graph_filter") {
      Value S = arg(0), x = arg(1), h = arg(2);
      return GenValue{create<ir::GraphFilterOp>(l, S, x, h), std::nullopt};
    }
    if (n == "minibatch") {
      GenValue size = gen(*c.args[0].value);
      if (!size.integer)
        fail(c.args[0].value->loc, "the batch size must be a constant");
      llvm::SmallVector<Value> ins;
      for (size_t i = 1; i < c.args.size(); ++i)
        ins.push_back(arg(i));
      // One result per operand: the types to start from, then inferred.
      llvm::SmallVector<mlir::Type> types(ins.size(),
                                          ir::unrankedTensor(&ctx_));
      auto op = b_.create<ir::MinibatchOp>(l, types, ins, *size.integer);
      inferOrFail(op);
      GenValue r;
      for (Value v : op.getResults())
        r.tuple.push_back(v);
      if (r.tuple.size() == 1)
        return GenValue{r.tuple[0], std::nullopt};
      return r;
    }
    if (n == "lipschitz")
      return GenValue{
          b_.create<ir::LipschitzOp>(l, ir::tensorType(&ctx_, {}), arg(0)),
          std::nullopt};
    if (n == "eye") {
      GenValue sz = gen(*c.args[0].value);
      if (!sz.integer)
        fail(c.args[0].value->loc, "the size of eye must be a constant");
      return GenValue{b_.create<ir::EyeOp>(
                          l, ir::tensorType(&ctx_, {*sz.integer, *sz.integer})),
                      std::nullopt};
    }
    fail(c.loc, "IR generation does not support '" + n + "' yet");
  }

  /// grad(g, x, extra...): an unroll.grad whose body calls g, with
  /// its arguments bound to the body's block arguments.
  GenValue genGrad(const CallExpr &c) {
    const Expr &fnExpr = *c.args[0].value;
    Sema::FunctionRef ref;
    if (fnExpr.kind == Expr::Kind::Name)
      ref = fe_.sema->functionRef(&static_cast<const NameExpr &>(fnExpr));
    if (!ref.fn && !ref.objective)
      fail(fnExpr.loc, "IR generation supports grad of a named function or "
                       "objective only");
    llvm::SmallVector<Value> operands;
    for (size_t i = 1; i < c.args.size(); ++i)
      operands.push_back(tensor(gen(*c.args[i].value), c.args[i].value->loc));
    return GenValue{gradOf(ref, operands, c.loc), std::nullopt};
  }

  /// An unroll.grad of `ref` at `operands`, its body a call of the function
  /// (the objective is inlined).
  Value gradOf(const Sema::FunctionRef &ref, llvm::ArrayRef<Value> operands,
               SourceLoc site) {
    mlir::Location l = loc(site);
    auto grad = b_.create<ir::GradOp>(l, operands[0].getType(), operands);
    mlir::OpBuilder::InsertionGuard guard(b_);
    mlir::Block *body =
        openBody(grad.getBody(), mlir::ValueRange(operands).getTypes(), l);
    std::vector<GenValue> args;
    for (Value v : body->getArguments())
      args.push_back(GenValue{v, std::nullopt});
    GenValue r = ref.fn ? callFn(*ref.fn, args, site)
                        : inlineObjective(*ref.objective, args, site);
    b_.create<ir::YieldOp>(l, mlir::ValueRange{tensor(r, site)});
    return grad.getResult();
  }

  /// The problem's objective with its variables bound to `args`.
  GenValue inlineObjective(const ProblemDecl &pd,
                           const std::vector<GenValue> &args, SourceLoc site) {
    std::vector<std::pair<std::string, GenValue>> bound;
    size_t i = 0;
    for (const VarDecl &v : pd.vars)
      if (v.role == VarDecl::Role::Var && i < args.size())
        bound.emplace_back(v.name, args[i++]);
    return inlined(bound, site, [&] { return gen(*pd.objective); });
  }

  /// `f(args)` for a DSL function: arguments matched to parameters by
  /// position or name, defaults filled in.
  GenValue genFnCall(const FnDecl &fn, const CallExpr &c) {
    return callFn(fn, argsFor(fn, c.args), c.loc);
  }

  /// The values of `fn`'s parameters from the arguments `call` gives
  /// (positional, then named) and the defaults; `last`, if set, is the
  /// value of the last parameter.
  std::vector<GenValue> argsFor(const FnDecl &fn, const std::vector<Arg> &call,
                                std::optional<GenValue> last = std::nullopt) {
    std::vector<GenValue> args(fn.params.size());
    std::vector<bool> given(fn.params.size(), false);
    if (last) {
      args.back() = *last;
      given.back() = true;
    }
    size_t pos = 0;
    for (const Arg &a : call) {
      size_t idx = pos;
      if (!a.name.empty()) {
        for (size_t i = 0; i < fn.params.size(); ++i)
          if (fn.params[i].name == a.name)
            idx = i;
      } else {
        ++pos;
      }
      args[idx] = gen(*a.value);
      given[idx] = true;
    }
    for (size_t i = 0; i < fn.params.size(); ++i)
      if (!given[i])
        args[i] = gen(*fn.params[i].defaultValue);
    return args;
  }

  /// A call of `fn`. Functions whose arguments are tensors and constants
  /// and whose result is a tensor become one generic `func.func` per
  /// module instance and constant arguments (tensor arguments unranked),
  /// called with `unroll.call`; the specialize pass inlines them and
  /// infer-shapes gives them the shapes of each call site. Others (taking
  /// modules or returning constants or tuples) are inlined here.
  GenValue callFn(const FnDecl &fn, const std::vector<GenValue> &args,
                  SourceLoc site) {
    const std::map<std::string, GenValue> *base = methodScope(fn);
    FnKey key{&fn, base, {}, false};
    bool generic = true;
    for (const GenValue &a : args) {
      if (a.module || !a.tuple.empty() || (!a.v && !a.integer)) {
        generic = false;
        break;
      }
      key.constants.push_back(a.v ? std::nullopt : a.integer);
    }
    if (generic) {
      // A body that reads the layer index `l` is only valid in a layer.
      auto it = outlined_.find(key);
      if (it == outlined_.end() && layerIndex_) {
        key.layered = true;
        it = outlined_.find(key);
      }
      if (it == outlined_.end()) {
        Outlined o = outline(fn, args, base);
        key.layered = o.layered;
        it = outlined_.emplace(key, o).first;
      }
      if (it->second.fn) {
        llvm::SmallVector<Value> operands;
        for (const GenValue &a : args)
          if (a.v)
            operands.push_back(a.v);
        operands.append(it->second.captures);
        mlir::func::FuncOp f = it->second.fn;
        auto call =
            b_.create<ir::CallOp>(loc(site), f.getFunctionType().getResult(0),
                                  f.getSymName(), operands);
        return GenValue{call.getResult(), std::nullopt};
      }
    }
    callSites_.push_back(loc(site));
    GenValue r = fnBody(fn, args, base);
    callSites_.pop_back();
    return r;
  }

  /// A method sees its module's names; other functions the algorithm's.
  const std::map<std::string, GenValue> *methodScope(const FnDecl &fn) {
    if (currentModule_)
      for (auto &meth : currentModule_->decl->methods)
        if (meth.get() == &fn)
          return &currentModule_->env;
    return nullptr;
  }

  /// The body of `fn` with its parameters bound to `args`, generated where
  /// the builder is.
  GenValue fnBody(const FnDecl &fn, const std::vector<GenValue> &args,
                  const std::map<std::string, GenValue> *base) {
    std::vector<std::pair<std::string, GenValue>> bound;
    for (size_t i = 0; i < fn.params.size() && i < args.size(); ++i)
      bound.emplace_back(fn.params[i].name, args[i]);
    return scoped(
        bound,
        [&] {
          if (fn.body)
            return gen(*fn.body);
          GenValue r;
          for (const StmtPtr &s : fn.stmts) {
            if (s->kind == Stmt::Kind::Return)
              return gen(*static_cast<const ReturnStmt &>(*s).value);
            assign(static_cast<const AssignStmt &>(*s), /*asTensors=*/false);
          }
          return r;
        },
        base);
  }

  struct Outlined {
    mlir::func::FuncOp fn; // null: the function must be inlined
    llvm::SmallVector<Value> captures;
    bool layered = false; // reads the layer index
  };

  /// `fn` as a generic function: tensor arguments unranked, constants
  /// folded in, and the algorithm-level values it reads (problem data,
  /// parameters, lets) passed as trailing arguments.
  Outlined outline(const FnDecl &fn, const std::vector<GenValue> &args,
                   const std::map<std::string, GenValue> *base) {
    mlir::OpBuilder::InsertionGuard guard(b_);
    std::vector<mlir::Location> sites;
    sites.swap(callSites_); // the body's locations are its own lines
    b_.setInsertionPointToEnd(module_.getBody());
    llvm::SmallVector<mlir::Type> argTypes;
    for (const GenValue &a : args)
      if (a.v)
        argTypes.push_back(ir::unrankedTensor(&ctx_));
    std::string name = fn.name;
    if (base)
      name = currentModule_->decl->name + "." + fn.name;
    if (int n = fnNames_[name]++)
      name += "_" + std::to_string(n);
    auto f = b_.create<mlir::func::FuncOp>(
        loc(fn.loc), name, mlir::FunctionType::get(&ctx_, argTypes, {}));
    f.setPrivate();
    mlir::Block *entry = f.addEntryBlock();
    b_.setInsertionPointToEnd(entry);
    std::vector<GenValue> bodyArgs;
    unsigned k = 0;
    for (const GenValue &a : args)
      bodyArgs.push_back(a.v ? GenValue{entry->getArgument(k++), std::nullopt}
                             : a);
    GenValue r = fnBody(fn, bodyArgs, base);
    sites.swap(callSites_);
    if (!r.v) {
      f.erase();
      return {};
    }
    b_.create<mlir::func::ReturnOp>(loc(fn.loc), r.v);
    // Values the body reads from the algorithm (not an ancestor of the
    // function, so getUsedValuesDefinedAbove would miss them).
    llvm::SetVector<Value> captured;
    f.getBody().walk([&](mlir::Operation *op) {
      for (Value v : op->getOperands())
        if (!f.getBody().isAncestor(v.getParentRegion()))
          captured.insert(v);
    });
    Outlined o{f, {}, false};
    f.walk([&](ir::LayerIndexOp) { o.layered = true; });
    for (Value c : captured) {
      Value a = entry->addArgument(c.getType(), c.getLoc());
      mlir::replaceAllUsesInRegionWith(c, a, f.getBody());
      o.captures.push_back(c);
    }
    f.setType(mlir::FunctionType::get(&ctx_, entry->getArgumentTypes(),
                                      {r.v.getType()}));
    return o;
  }

  /// Runs `body` in a scope holding `bound` on top of the algorithm-level
  /// names (Sema has checked that names resolve lexically), never the
  /// caller's locals.
  template <typename F>
  GenValue scoped(const std::vector<std::pair<std::string, GenValue>> &bound,
                  F body,
                  const std::map<std::string, GenValue> *base = nullptr) {
    std::vector<std::map<std::string, GenValue>> callerEnv;
    callerEnv.swap(env_);
    env_.push_back(base ? *base : callerEnv.front());
    env_.emplace_back();
    for (auto &[n, v] : bound)
      bind(n, v);
    GenValue r = body();
    env_.swap(callerEnv);
    return r;
  }

  /// `scoped`, with the ops located at call site `site`.
  template <typename F>
  GenValue inlined(const std::vector<std::pair<std::string, GenValue>> &bound,
                   SourceLoc site, F body) {
    callSites_.push_back(loc(site));
    GenValue r = scoped(bound, body);
    callSites_.pop_back();
    return r;
  }

  /// What makes a generic function differ: the function, the module
  /// instance whose names it sees, its constant arguments (nullopt for a
  /// tensor) and, for a body that reads `l`, that it is the layer index.
  struct FnKey {
    const FnDecl *fn;
    const void *scope;
    std::vector<std::optional<long long>> constants;
    bool layered;
    bool operator<(const FnKey &o) const {
      return std::tie(fn, scope, constants, layered) <
             std::tie(o.fn, o.scope, o.constants, o.layered);
    }
  };
  std::map<FnKey, Outlined> outlined_;
  std::map<std::string, int> fnNames_;
  mlir::ModuleOp module_;

  std::map<std::string, Value> stepLocals_, finalState_;
  std::deque<ModuleVal> modules_;
  ModuleVal *currentModule_ = nullptr;
  std::set<std::string> probed_, trained_;

  mlir::MLIRContext &ctx_;
  const Frontend &fe_;
  mlir::OpBuilder b_;
  bool layerIndex_ = false;
};

} // namespace

mlir::OwningOpRef<mlir::ModuleOp> generateIR(mlir::MLIRContext &ctx,
                                             const Frontend &fe) {
  assert(fe.ok() && "generateIR needs a spec that checked cleanly");
  ctx.getOrLoadDialect<ir::UnrollDialect>();
  ctx.getOrLoadDialect<mlir::func::FuncDialect>();
  IRGen gen(ctx, fe);
  mlir::OwningOpRef<mlir::ModuleOp> module;
  try {
    module = gen.run();
  } catch (Unsupported &) {
    return nullptr;
  }
  if (mlir::failed(mlir::verify(*module)))
    throw InternalError("IR generation produced IR that does not verify");
  return module;
}

} // namespace unroll::compiler
