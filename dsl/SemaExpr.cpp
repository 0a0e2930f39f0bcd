#include "dsl/SemaExpr.h"

#include "dsl/Builtins.h"

#include <cassert>

namespace unroll::dsl {

Type elementwiseType(Sema &S, char op, const Type &a, const Type &b,
                     SourceLoc loc, const std::string &display) {
  if (a.isError() || b.isError())
    return Type::error();
  if (a.kind == Type::Kind::Any || b.kind == Type::Kind::Any)
    return Type::any();
  const std::string opName =
      display.empty() ? std::string("'") + op + "'" : display;
  if (!a.isNumeric() || !b.isNumeric()) {
    S.error(loc, opName + " needs numbers, got " + S.typeStr(a) + " and " +
                     S.typeStr(b));
    return Type::error();
  }
  if (a.kind == Type::Kind::Int && b.kind == Type::Kind::Int &&
      (op == '+' || op == '-' || op == '*')) {
    try {
      Dim v = op == '+'   ? a.intValue + b.intValue
              : op == '-' ? a.intValue - b.intValue
                          : a.intValue * b.intValue;
      return Type::integer(v);
    } catch (DimError &err) {
      S.error(loc, err.what());
      return Type::error();
    }
  }
  Type ta = a.kind == Type::Kind::Int ? Type::scalar() : a;
  Type tb = b.kind == Type::Kind::Int ? Type::scalar() : b;
  if (op == '^' && !tb.isScalar()) {
    S.error(loc, "exponent must be a scalar, got " + S.typeStr(tb));
    return Type::error();
  }
  if (!ta.isTensor() || !tb.isTensor()) {
    S.error(loc, opName + " needs numbers, got " + S.typeStr(a) + " and " +
                     S.typeStr(b));
    return Type::error();
  }
  // Broadcasting as in NumPy: align trailing axes; equal sizes match, and a
  // constant 1 stretches to the other size.
  const Type &longer = ta.rank() >= tb.rank() ? ta : tb;
  const Type &shorter = ta.rank() >= tb.rank() ? tb : ta;
  Type out = longer;
  size_t off = longer.rank() - shorter.rank();
  Dim one = Dim::constant(1);
  for (size_t i = 0; i < shorter.rank(); ++i) {
    const Dim &dl = longer.shape[off + i], &ds = shorter.shape[i];
    if (S.sameDim(dl, ds) || S.sameDim(ds, one))
      continue;
    if (S.sameDim(dl, one)) {
      out.shape[off + i] = ds;
      continue;
    }
    S.error(loc, "shape mismatch in " + opName + ": " + S.typeStr(ta) +
                     " and " + S.typeStr(tb));
    return Type::error();
  }
  return out;
}

bool ExprChecker::constantInt(const Expr &e, long long &out,
                              const std::string &what) {
  Type t = check(e);
  if (t.isError())
    return false;
  if (t.kind == Type::Kind::Int) {
    Dim v = t.intValue.substitute(S.bindings);
    if (v.isConstant()) {
      out = v.value();
      return true;
    }
  }
  S.error(e.loc, what + " must be a constant integer, got " +
                     (t.kind == Type::Kind::Int ? "'" + exprToString(e) + "'"
                                                : S.typeStr(t)));
  return false;
}

Type ExprChecker::check(const Expr &e) {
  Type t;
  switch (e.kind) {
  case Expr::Kind::Number: {
    auto &n = static_cast<const NumberExpr &>(e);
    t = n.isInt ? Type::integer(Dim::constant(static_cast<long long>(n.value)))
                : Type::scalar();
    break;
  }
  case Expr::Kind::String:
    S.error(e.loc, "a string is only allowed as a data source argument");
    t = Type::error();
    break;
  case Expr::Kind::Name:
    t = checkName(static_cast<const NameExpr &>(e));
    break;
  case Expr::Kind::Unary: {
    Type o = check(*static_cast<const UnaryExpr &>(e).operand);
    if (o.kind == Type::Kind::Int) {
      t = Type::integer(o.intValue * Dim::constant(-1));
    } else if (o.isUnknown() || o.isTensor()) {
      t = o;
    } else {
      S.error(e.loc, "cannot negate " + S.typeStr(o));
      t = Type::error();
    }
    break;
  }
  case Expr::Kind::Binary:
    t = checkBinary(static_cast<const BinaryExpr &>(e));
    break;
  case Expr::Kind::Transpose: {
    Type o = check(*static_cast<const TransposeExpr &>(e).operand);
    if (o.isUnknown()) {
      t = o;
    } else if (o.isTensor() && (o.rank() == 2 || o.rank() == 3)) {
      // On a stack of matrices, transpose each one.
      t = o;
      std::swap(t.shape[o.rank() - 1], t.shape[o.rank() - 2]);
    } else {
      S.error(e.loc, "transpose needs a matrix or a stack of matrices, got " +
                         S.typeStr(o));
      t = Type::error();
    }
    break;
  }
  case Expr::Kind::Call:
    t = checkCall(static_cast<const CallExpr &>(e));
    break;
  case Expr::Kind::Member: {
    bool repeated = false;
    t = checkMember(static_cast<const MemberExpr &>(e), repeated);
    if (!t.isUnknown()) {
      S.error(e.loc, "method '" + static_cast<const MemberExpr &>(e).name +
                         "' must be called");
      t = Type::error();
    }
    break;
  }
  case Expr::Kind::Index:
    t = checkIndex(static_cast<const IndexExpr &>(e));
    break;
  case Expr::Kind::Range:
    S.error(e.loc, "a range is only allowed as an 'evaluate' argument");
    t = Type::error();
    break;
  }
  if (S.recordTypes)
    S.exprTypes_[&e] = t;
  return t;
}

Type ExprChecker::checkName(const NameExpr &e) {
  Symbol *s = scope->lookup(e.name);
  if (!s) {
    if (isBuiltin(e.name)) {
      S.error(e.loc, "built-in function '" + e.name +
                         "' must be called with arguments");
      return Type::error();
    }
    S.unknownName(e.loc, e.name, scope);
    return Type::error();
  }
  switch (s->kind) {
  case Symbol::Kind::Value:
  case Symbol::Kind::Function:
    break;
  case Symbol::Kind::ModuleDef:
    S.error(e.loc, "'" + e.name +
                       "' is a module; declare a parameter of this type "
                       "with 'param'");
    return Type::error();
  case Symbol::Kind::Problem:
    S.error(e.loc, "'" + e.name + "' is a problem, not a value");
    return Type::error();
  case Symbol::Kind::Unrolled:
    S.error(e.loc, "'" + e.name + "' is an unrolled algorithm, not a value");
    return Type::error();
  case Symbol::Kind::Set:
    S.error(e.loc, "'" + e.name +
                       "' is a constraint set, not a value; constrain a "
                       "variable with 'var y : TYPE in " +
                       e.name + "(...)'");
    return Type::error();
  }
  if (s->type.kind == Type::Kind::Func)
    S.functionRefs_[&e] = Sema::FunctionRef{
        s->type.fn, s->type.objective ? s->type.objective->decl : nullptr};
  if (s->type.kind == Type::Kind::Layered) {
    if (layers == Layers::Current)
      return s->type.elems[0];
    S.error(e.loc, "'" + e.name +
                       "' has a value at every layer; select one, "
                       "e.g. " +
                       e.name + "[L]");
    return Type::error();
  }
  return s->type;
}

Type ExprChecker::matmul(const Type &a, const Type &b, SourceLoc loc) {
  if (a.isError() || b.isError())
    return Type::error();
  if (a.kind == Type::Kind::Any || b.kind == Type::Kind::Any)
    return Type::any();
  auto bad = [&](const std::string &why) {
    S.error(loc, "matrix product " + S.typeStr(a) + " @ " + S.typeStr(b) +
                     ": " + why);
    return Type::error();
  };
  if (!a.isTensor() || !b.isTensor() || a.rank() == 0 || b.rank() == 0)
    return bad("both operands must be vectors, matrices or tensors");
  const Dim &inner = a.shape.back();
  size_t ra = a.rank(), rb = b.rank();
  // [b, m, n] @ [b, n, k]: one product per leading index.
  if (ra == 3 && rb == 3) {
    if (!S.sameDim(a.shape[0], b.shape[0]))
      return bad("batch dimensions " + a.shape[0].str() + " and " +
                 b.shape[0].str() + " differ");
    if (!S.sameDim(a.shape[2], b.shape[1]))
      return bad("inner dimensions " + a.shape[2].str() + " and " +
                 b.shape[1].str() + " differ");
    return Type::tensor({a.shape[0], a.shape[1], b.shape[2]});
  }
  if (rb > 2)
    return bad("the right operand must be a vector or a matrix");
  const Dim &rowsB = b.shape[0];
  if (!S.sameDim(inner, rowsB))
    return bad("inner dimensions " + inner.str() + " and " + rowsB.str() +
               " differ");
  std::vector<Dim> out(a.shape.begin(), a.shape.end() - 1);
  if (rb == 2)
    out.push_back(b.shape[1]);
  return Type::tensor(std::move(out));
}

Type ExprChecker::checkBinary(const BinaryExpr &e) {
  Type a = check(*e.lhs);
  Type b = check(*e.rhs);
  if (e.op == '@')
    return matmul(a, b, e.opLoc);
  return elementwiseType(S, e.op, a, b, e.opLoc);
}

Type ExprChecker::checkIndex(const IndexExpr &e) {
  Type idx = check(*e.index);
  Type base;
  if (e.base->kind == Expr::Kind::Name) {
    auto &n = static_cast<const NameExpr &>(*e.base);
    Symbol *s = scope->lookup(n.name);
    if (s && s->type.kind == Type::Kind::Layered) {
      if (!idx.isUnknown() && idx.kind != Type::Kind::Int) {
        S.error(e.index->loc,
                "layer index must be an integer, got " + S.typeStr(idx));
        return Type::error();
      }
      return s->type.elems[0];
    }
  }
  base = check(*e.base);
  if (base.isUnknown())
    return base;
  S.error(e.loc, "only values that change across layers can be indexed "
                 "(e.g. y[L]); '" +
                     exprToString(*e.base) + "' is " + S.typeStr(base));
  return Type::error();
}

Type ExprChecker::checkMember(const MemberExpr &e, bool &repeated) {
  Type base = check(*e.base);
  if (base.isUnknown())
    return base;
  if (base.kind != Type::Kind::Module) {
    S.error(e.loc, "'" + exprToString(*e.base) + "' is " + S.typeStr(base) +
                       ", which has no methods");
    return Type::error();
  }
  if (e.base->kind == Expr::Kind::Name)
    if (Symbol *s = scope->lookup(static_cast<const NameExpr &>(*e.base).name))
      repeated = s->repeated;
  const ModuleDecl *md = base.module->decl;
  std::vector<std::string> names;
  for (auto &m : md->methods) {
    if (m->name == e.name) {
      Type f = Type::make(Type::Kind::Func);
      f.fn = m.get();
      f.fnScope = base.module->scope;
      f.self = base.module;
      return f;
    }
    names.push_back(m->name);
  }
  std::string hint = closestMatch(e.name, names);
  S.error(e.loc, "module '" + md->name + "' has no method '" + e.name + "'" +
                     (hint.empty() ? "" : "; did you mean '" + hint + "'?"));
  return Type::error();
}

Type ExprChecker::callComposed(const Type &fn, const std::vector<Type> &args,
                               const std::vector<SourceLoc> &locs,
                               const std::vector<std::string> &names,
                               SourceLoc loc, const std::string &name,
                               bool repeated) {
  Type r = S.callFunction(fn, args, locs, names, loc, name);
  // The copies of a repeated module run one after another.
  if (repeated && args.size() == 1 && !S.sameType(r, args[0])) {
    S.error(loc, "'" + name +
                     "' is repeated, so it must return its input "
                     "type " +
                     S.typeStr(args[0]) + ", but returns " + S.typeStr(r));
    return Type::error();
  }
  return r;
}

Type ExprChecker::checkCall(const CallExpr &e) {
  std::vector<Type> args;
  std::vector<SourceLoc> locs;
  std::vector<std::string> names;
  auto checkArgs = [&] {
    for (const Arg &a : e.args) {
      args.push_back(check(*a.value));
      locs.push_back(a.value->loc);
      names.push_back(a.name);
    }
  };

  // Method call: flow.forward(x).
  if (e.callee->kind == Expr::Kind::Member) {
    bool repeated = false;
    Type f = checkMember(static_cast<const MemberExpr &>(*e.callee), repeated);
    checkArgs();
    if (f.isUnknown())
      return f;
    std::string name = exprToString(*e.callee);
    return callComposed(f, args, locs, names, e.loc, name, repeated);
  }
  if (e.callee->kind != Expr::Kind::Name) {
    checkArgs();
    S.error(e.loc, "'" + exprToString(*e.callee) + "' cannot be called");
    return Type::error();
  }
  const std::string &name = static_cast<const NameExpr &>(*e.callee).name;
  Symbol *s = scope->lookup(name);
  if (!s && isBuiltin(name)) {
    checkArgs();
    for (size_t i = 0; i < names.size(); ++i)
      if (!names[i].empty()) {
        S.error(e.args[i].loc,
                "built-in '" + name + "' takes no named arguments");
        return Type::error();
      }
    return checkBuiltin(S, name, args, locs, e.loc);
  }
  Type f = checkName(static_cast<const NameExpr &>(*e.callee));
  checkArgs();
  if (f.isUnknown())
    return f;
  if (f.kind == Type::Kind::Module) {
    // Calling a module parameter runs its `forward` method.
    Type m = Type::make(Type::Kind::Func);
    for (auto &meth : f.module->decl->methods)
      if (meth->name == "forward")
        m.fn = meth.get();
    if (!m.fn) {
      S.error(e.loc, "module '" + f.module->decl->name +
                         "' has no 'forward' method, so '" + name +
                         "' cannot be called");
      return Type::error();
    }
    m.fnScope = f.module->scope;
    m.self = f.module;
    return callComposed(m, args, locs, names, e.loc, name, s && s->repeated);
  }
  if (f.kind != Type::Kind::Func) {
    S.error(e.loc, "'" + name + "' is " + S.typeStr(f) + ", not a function");
    return Type::error();
  }
  if (f.fn)
    S.callees_[&e] = f.fn;
  else if (f.objective)
    S.objectiveCalls_[&e] = f.objective->decl;
  return S.callFunction(f, args, locs, names, e.loc, name);
}

} // namespace unroll::dsl
