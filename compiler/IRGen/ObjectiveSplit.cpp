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

/// norm1(y), or c * norm1(y) / norm1(y) * c with c not mentioning y.
bool isL1Of(const Expr &e, const std::string &var, const Expr *&w) {
  auto isNorm1 = [&](const Expr &x) {
    if (x.kind != Expr::Kind::Call)
      return false;
    auto &c = static_cast<const CallExpr &>(x);
    return c.callee->kind == Expr::Kind::Name &&
           static_cast<const NameExpr &>(*c.callee).name == "norm1" &&
           c.args.size() == 1 && c.args[0].value->kind == Expr::Kind::Name &&
           static_cast<const NameExpr &>(*c.args[0].value).name == var;
  };
  if (isNorm1(e)) {
    w = nullptr;
    return true;
  }
  if (e.kind != Expr::Kind::Binary ||
      static_cast<const BinaryExpr &>(e).op != '*')
    return false;
  auto &b = static_cast<const BinaryExpr &>(e);
  const Expr *c = isNorm1(*b.rhs)   ? b.lhs.get()
                  : isNorm1(*b.lhs) ? b.rhs.get()
                                    : nullptr;
  if (!c || !constantFree(*c, var))
    return false;
  w = c;
  return true;
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

std::optional<ObjectiveSplit> splitObjective(const ProblemDecl &pd) {
  ObjectiveSplit out;
  for (const VarDecl &v : pd.vars)
    if (v.role == VarDecl::Role::Var) {
      if (out.var)
        return std::nullopt;
      out.var = &v;
    }
  if (!out.var)
    return std::nullopt;
  std::vector<std::pair<int, const Expr *>> terms; // (sign, term)
  collectTerms(*pd.objective, +1, terms);
  for (auto &[sign, t] : terms) {
    const Expr *w = nullptr;
    if (sign > 0 && isL1Of(*t, out.var->name, w))
      out.l1Weights.push_back(w);
    else
      out.smooth.emplace_back(sign, t);
  }
  return out;
}

} // namespace unroll::compiler
