#include "compiler/IRGen/IRGen.h"

#include "compiler/dialect/UnrollDialect.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/Verifier.h"

#include <cassert>
#include <optional>

namespace unroll::compiler {

using namespace unroll::dsl;
using mlir::Value;

namespace {

/// Raised after a diagnostic for a construct IR generation cannot handle;
/// unwinds to generateIR, which returns null.
struct Unsupported {};

/// A value during generation: a tensor, or a compile-time integer (sizes,
/// axis numbers) that becomes a tensor only when used as one.
struct GenValue {
  Value v;
  std::optional<long long> integer;
};

class IRGen {
public:
  IRGen(mlir::MLIRContext &ctx, const Frontend &fe)
      : ctx_(ctx), fe_(fe), b_(&ctx) {}

  mlir::OwningOpRef<mlir::ModuleOp> run() {
    auto module = mlir::ModuleOp::create(loc(SourceLoc{}));
    b_.setInsertionPointToEnd(module.getBody());
    for (auto &u : fe_.main->ast->unrolleds)
      genUnrolled(*u);
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
      fail(t.loc, "IR generation does not support module parameters yet");
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
                          v.role == VarDecl::Role::Data ? "data" : "given"),
                      std::nullopt});
    for (const LetDecl &l : pd.lets)
      bind(l.name, gen(*l.value));
    for (const LetDecl &l : u.lets)
      bind(l.name, gen(*l.value));
    for (const ParamDecl &p : u.params) {
      auto type = tensorOf(*p.type);
      auto op = b_.create<ir::ParamOp>(
          loc(p.loc), type, p.name,
          p.binding == Binding::PerLayer ? "per_layer" : "shared",
          /*layer=*/nullptr);
      genInit(op.getInit(), type, *p.init);
      bind(p.name, GenValue{op.getResult(), std::nullopt});
    }
    llvm::SmallVector<Value> state;
    std::vector<const VarDecl *> vars;
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
          b_.create<ir::StateOp>(loc(init->loc), type, v.name, init->random);
      genInit(op.getInit(), type, *init->value);
      state.push_back(op.getResult());
      vars.push_back(&v);
    }

    auto step = b_.create<ir::StepOp>(loc(u.stepLoc), state);
    mlir::Block *sb = new mlir::Block();
    step.getBody().push_back(sb);
    b_.setInsertionPointToEnd(sb);
    Frame stepFrame(*this);
    for (size_t i = 0; i < vars.size(); ++i)
      bind(vars[i]->name,
           GenValue{sb->addArgument(state[i].getType(), loc(vars[i]->loc)),
                    std::nullopt});
    layerIndex_ = true;
    for (const StmtPtr &s : u.step) {
      auto &a = static_cast<const AssignStmt &>(*s);
      if (a.targets.size() != 1)
        fail(a.loc, "IR generation does not support multiple results yet");
      bind(a.targets[0],
           GenValue{tensor(gen(*a.value), a.value->loc), std::nullopt});
    }
    layerIndex_ = false;
    llvm::SmallVector<Value> next;
    for (const VarDecl *v : vars)
      next.push_back(lookup(v->name)->v);
    b_.create<ir::YieldOp>(loc(u.stepLoc), next);
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
        v = b_.create<ir::RandomOp>(l, type, n, a, bv);
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

  /// Creates an op whose result type is inferred from its operands. Sema has
  /// already checked the shapes, so a failure here is a compiler bug, and
  /// it must not reach the builder (which would abort).
  template <typename Op, typename... Operands>
  Value create(mlir::Location l, Operands... operands) {
    llvm::SmallVector<mlir::Type> types;
    llvm::SmallVector<Value> ops{operands...}; // ValueRange would dangle
    if (mlir::failed(Op::inferReturnTypes(
            &ctx_, std::nullopt, ops, mlir::DictionaryAttr(),
            mlir::OpaqueProperties(nullptr), mlir::RegionRange(), types)))
      throw InternalError("IR generation: front end and dialect disagree on "
                          "the shapes of '" +
                          Op::getOperationName().str() + "'");
    return b_.create<Op>(l, types[0], operands...);
  }

  GenValue genCall(const CallExpr &c) {
    mlir::Location l = loc(c.loc);
    if (const FnDecl *fn = fe_.sema->calleeOf(&c))
      return inlineCall(*fn, c);
    if (c.callee->kind != Expr::Kind::Name)
      fail(c.loc, "IR generation does not support method calls yet");
    const std::string &n = static_cast<const NameExpr &>(*c.callee).name;
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
      auto shape = llvm::to_vector(
          mlir::cast<mlir::RankedTensorType>(x.getType()).getShape());
      mlir::IntegerAttr axis;
      llvm::SmallVector<int64_t> out;
      if (c.args.size() == 2) {
        GenValue ax = gen(*c.args[1].value);
        if (!ax.integer)
          fail(c.args[1].value->loc, "axis must be a constant");
        axis = b_.getI64IntegerAttr(*ax.integer);
        out = shape;
        out.erase(out.begin() + *ax.integer);
      }
      return GenValue{
          b_.create<ir::ReduceOp>(l, ir::tensorType(&ctx_, out), n, x, axis),
          std::nullopt};
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

  /// grad(g, x, extra...): an unroll.grad whose body is g, inlined, with
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
    mlir::Location l = loc(c.loc);
    auto grad = b_.create<ir::GradOp>(l, operands[0].getType(), operands);
    mlir::Block *body = new mlir::Block();
    grad.getBody().push_back(body);
    std::vector<GenValue> args;
    for (Value v : operands)
      args.push_back(GenValue{body->addArgument(v.getType(), l), std::nullopt});
    mlir::OpBuilder::InsertionGuard guard(b_);
    b_.setInsertionPointToEnd(body);
    GenValue r = ref.fn ? inlineFn(*ref.fn, args, c.loc)
                        : inlineObjective(*ref.objective, args, c.loc);
    b_.create<ir::YieldOp>(l, mlir::ValueRange{tensor(r, c.loc)});
    return GenValue{grad.getResult(), std::nullopt};
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

  /// Calls are inlined: the DSL has no recursion, and the IR is specialised
  /// to the argument shapes anyway.
  GenValue inlineCall(const FnDecl &fn, const CallExpr &c) {
    std::vector<GenValue> args(fn.params.size());
    std::vector<bool> given(fn.params.size(), false);
    size_t pos = 0;
    for (const Arg &a : c.args) {
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
    return inlineFn(fn, args, c.loc);
  }

  GenValue inlineFn(const FnDecl &fn, const std::vector<GenValue> &args,
                    SourceLoc site) {
    std::vector<std::pair<std::string, GenValue>> bound;
    for (size_t i = 0; i < fn.params.size() && i < args.size(); ++i)
      bound.emplace_back(fn.params[i].name, args[i]);
    return inlined(bound, site, [&] {
      if (fn.body)
        return gen(*fn.body);
      GenValue r;
      for (const StmtPtr &s : fn.stmts) {
        if (s->kind == Stmt::Kind::Return)
          return gen(*static_cast<const ReturnStmt &>(*s).value);
        auto &a = static_cast<const AssignStmt &>(*s);
        if (a.targets.size() != 1)
          fail(a.loc, "IR generation does not support multiple results yet");
        bind(a.targets[0], gen(*a.value));
      }
      return r;
    });
  }

  /// Runs `body` in a scope holding `bound` on top of the algorithm-level
  /// names (Sema has checked that names resolve lexically), never the
  /// caller's locals; ops get call-site locations through `site`.
  template <typename F>
  GenValue inlined(const std::vector<std::pair<std::string, GenValue>> &bound,
                   SourceLoc site, F body) {
    callSites_.push_back(loc(site));
    std::vector<std::map<std::string, GenValue>> callerEnv;
    callerEnv.swap(env_);
    env_.push_back(callerEnv.front());
    env_.emplace_back();
    for (auto &[n, v] : bound)
      bind(n, v);
    GenValue r = body();
    env_.swap(callerEnv);
    callSites_.pop_back();
    return r;
  }

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
