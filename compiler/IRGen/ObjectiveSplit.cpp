#include "compiler/IRGen/ObjectiveSplit.h"

namespace unroll::compiler {

using namespace unroll::dsl;

namespace {

bool constantFree(const Expr &e, const std::string &var);

/// The terms of a sum or difference, with their signs.
void collectTerms(const Expr &e, int sign,
                  std::vector<std::pair<int, const Expr *>> &out) {
  if (e.kind == Expr::Kind::Binary) {
    auto &b = static_cast<const BinaryExpr &>(e);
    if (b.op == '+' || b.op == '-') {
      collectTerms(*b.lhs, sign, out);
      collectTerms(*b.rhs, b.op == '+' ? sign : -sign, out);
      return;
    }
  }
  out.emplace_back(sign, &e);
}

/// `e` as c * h(...), h(...) * c or h(...) with c free of `var` (null for
/// 1), where `isCall` accepts the call h(...): sets `w`.
bool weightedCall(const Expr &e, const std::string &var,
                  const std::function<bool(const CallExpr &)> &isCall,
                  const Expr *&w) {
  auto call = [&](const Expr &x) {
    return x.kind == Expr::Kind::Call &&
           static_cast<const CallExpr &>(x).callee->kind == Expr::Kind::Name &&
           isCall(static_cast<const CallExpr &>(x));
  };
  if (call(e)) {
    w = nullptr;
    return true;
  }
  if (e.kind != Expr::Kind::Binary ||
      static_cast<const BinaryExpr &>(e).op != '*')
    return false;
  auto &b = static_cast<const BinaryExpr &>(e);
  const Expr *c = call(*b.rhs)   ? b.lhs.get()
                  : call(*b.lhs) ? b.rhs.get()
                                 : nullptr;
  if (!c || !constantFree(*c, var))
    return false;
  w = c;
  return true;
}

/// h(y), or c * h(y) / h(y) * c with c not mentioning y, for an h that
/// `nonsmooth` accepts: sets `h`, `w` (null for 1) and `arg` (y).
bool isNonsmoothOf(const Expr &e, const std::string &var,
                   const std::function<bool(const std::string &)> &nonsmooth,
                   std::string &h, const Expr *&w, const Expr *&arg) {
  return weightedCall(
      e, var,
      [&](const CallExpr &c) {
        const std::string &name = static_cast<const NameExpr &>(*c.callee).name;
        if (c.args.size() != 1 || c.args[0].value->kind != Expr::Kind::Name ||
            static_cast<const NameExpr &>(*c.args[0].value).name != var ||
            !nonsmooth(name))
          return false;
        h = name;
        arg = c.args[0].value.get();
        return true;
      },
      w);
}

/// Whether `var` occurs in `e`.
bool mentionsVar(const Expr &e, const std::string &var) {
  return firstNameIn(e, {var}) != nullptr;
}

/// Whether `e` is affine in `var`: see ObjectiveSplit.h.
bool affineIn(const Expr &e, const std::string &var) {
  if (!mentionsVar(e, var))
    return true;
  switch (e.kind) {
  case Expr::Kind::Name:
    return true; // var itself
  case Expr::Kind::Unary: {
    auto &u = static_cast<const UnaryExpr &>(e);
    return u.op == '-' && affineIn(*u.operand, var);
  }
  case Expr::Kind::Transpose:
    return affineIn(*static_cast<const TransposeExpr &>(e).operand, var);
  case Expr::Kind::Binary: {
    auto &b = static_cast<const BinaryExpr &>(e);
    bool l = mentionsVar(*b.lhs, var), r = mentionsVar(*b.rhs, var);
    switch (b.op) {
    case '+':
    case '-':
      return affineIn(*b.lhs, var) && affineIn(*b.rhs, var);
    case '*':
    case '@':
      return !(l && r) && affineIn(*b.lhs, var) && affineIn(*b.rhs, var);
    case '/':
      return !r && affineIn(*b.lhs, var);
    default:
      return false;
    }
  }
  case Expr::Kind::Call: {
    auto &c = static_cast<const CallExpr &>(e);
    if (c.callee->kind != Expr::Kind::Name)
      return false;
    const std::string &n = static_cast<const NameExpr &>(*c.callee).name;
    if (n != "diff" && n != "sum" && n != "mean" && n != "concat")
      return false;
    for (const Arg &a : c.args)
      if (!affineIn(*a.value, var))
        return false;
    return true;
  }
  default:
    return false;
  }
}

/// h(e), or c * h(e) / h(e) * c with c not mentioning y, for an h that
/// `nonsmooth` accepts and e affine in y but not y itself.
bool isLinearOf(const Expr &e, const std::string &var,
                const std::function<bool(const std::string &)> &nonsmooth,
                ObjectiveSplit::Linear &out) {
  out.expr = &e;
  return weightedCall(
      e, var,
      [&](const CallExpr &c) {
        const std::string &name = static_cast<const NameExpr &>(*c.callee).name;
        if (c.args.size() != 1 || !c.args[0].name.empty() ||
            !mentionsVar(*c.args[0].value, var) ||
            !affineIn(*c.args[0].value, var) || !nonsmooth(name))
          return false;
        out.h = name;
        out.map = c.args[0].value.get();
        return true;
      },
      out.weight);
}

/// Whether `e` calls a function `nonsmooth` accepts on an argument that
/// mentions `var`.
bool callsNonsmoothOf(
    const Expr &e, const std::string &var,
    const std::function<bool(const std::string &)> &nonsmooth) {
  switch (e.kind) {
  case Expr::Kind::Unary:
    return callsNonsmoothOf(*static_cast<const UnaryExpr &>(e).operand, var,
                            nonsmooth);
  case Expr::Kind::Binary: {
    auto &b = static_cast<const BinaryExpr &>(e);
    return callsNonsmoothOf(*b.lhs, var, nonsmooth) ||
           callsNonsmoothOf(*b.rhs, var, nonsmooth);
  }
  case Expr::Kind::Call: {
    auto &c = static_cast<const CallExpr &>(e);
    bool mentions = false;
    for (const Arg &a : c.args) {
      if (callsNonsmoothOf(*a.value, var, nonsmooth))
        return true;
      mentions |= mentionsVar(*a.value, var);
    }
    return mentions && c.callee->kind == Expr::Kind::Name &&
           nonsmooth(static_cast<const NameExpr &>(*c.callee).name);
  }
  default:
    return false;
  }
}

/// Numbers, names other than `var`, and arithmetic on them.
bool constantFree(const Expr &e, const std::string &var) {
  switch (e.kind) {
  case Expr::Kind::Number:
    return true;
  case Expr::Kind::Name:
    return static_cast<const NameExpr &>(e).name != var;
  case Expr::Kind::Unary:
    return constantFree(*static_cast<const UnaryExpr &>(e).operand, var);
  case Expr::Kind::Binary: {
    auto &b = static_cast<const BinaryExpr &>(e);
    return b.op != '@' && constantFree(*b.lhs, var) &&
           constantFree(*b.rhs, var);
  }
  default:
    return false;
  }
}

} // namespace

std::vector<const Expr *> ObjectiveSplit::l1Weights() const {
  std::vector<const Expr *> out;
  for (const Term &t : nonsmooth)
    if (t.h == "norm1")
      out.push_back(t.weight);
  return out;
}

std::optional<ObjectiveSplit>
splitObjective(const ProblemDecl &pd,
               const std::function<bool(const std::string &)> &hasProx) {
  ObjectiveSplit out;
  for (const VarDecl &v : pd.vars)
    if (v.role == VarDecl::Role::Var) {
      if (out.var)
        return std::nullopt;
      out.var = &v;
    }
  if (!out.var)
    return std::nullopt;
  // The norms that are not differentiable, and functions with a prox
  // (sqnorm is smooth: its gradient serves).
  auto nonsmooth = [&](const std::string &h) {
    return h == "norm1" || h == "norm" || (h != "sqnorm" && hasProx(h));
  };
  std::vector<std::pair<int, const Expr *>> terms; // (sign, term)
  collectTerms(*pd.objective, +1, terms);
  for (auto &[sign, t] : terms) {
    ObjectiveSplit::Term term;
    ObjectiveSplit::Linear linear;
    if (sign > 0 && isNonsmoothOf(*t, out.var->name, nonsmooth, term.h,
                                  term.weight, term.arg)) {
      term.expr = t;
      if (out.nonsmooth.empty() || term.h == out.nonsmooth[0].h)
        out.nonsmooth.push_back(term);
      else // a second kind: the identity map, for primal-dual solvers
        out.linear.push_back({term.h, term.weight, term.arg, term.expr});
    } else if (sign > 0 && isLinearOf(*t, out.var->name, nonsmooth, linear)) {
      out.linear.push_back(linear);
    } else {
      if (callsNonsmoothOf(*t, out.var->name, nonsmooth))
        out.composed.push_back(t);
      out.smooth.emplace_back(sign, t);
    }
  }
  return out;
}

} // namespace unroll::compiler
