#pragma once
#include "dsl/Sema.h"

namespace unroll::dsl {

/// Checks expressions in one scope and computes their types.
struct ExprChecker {
  /// How names of layered values (state seen from a train block) resolve.
  enum class Layers {
    Current, // to the value at the layer being constrained (descend, noise)
    Select,  // a layer must be chosen explicitly: y[L] (loss)
  };

  ExprChecker(Sema &s, Scope *scope, Layers layers = Layers::Select)
      : S(s), scope(scope), layers(layers) {}

  Type check(const Expr &e);
  /// Checks `e` and requires a compile-time integer; returns its value.
  bool constantInt(const Expr &e, long long &out, const std::string &what);

  Sema &S;
  Scope *scope;
  Layers layers;

private:
  Type checkName(const NameExpr &e);
  Type checkBinary(const BinaryExpr &e);
  Type checkCall(const CallExpr &e);
  Type checkIndex(const IndexExpr &e);
  Type checkMember(const MemberExpr &e, bool &repeated);
  Type matmul(const Type &a, const Type &b, SourceLoc loc);
  /// Calls `fn`; for a `repeat`ed module also checks that the call maps its
  /// input type to itself.
  Type callComposed(const Type &fn, const std::vector<Type> &args,
                    const std::vector<SourceLoc> &locs,
                    const std::vector<std::string> &names, SourceLoc loc,
                    const std::string &name, bool repeated);
};

/// Elementwise result type of `a op b` (same shape or one scalar), or an
/// error reported at `loc`. `display` names the operation in messages
/// (default: the operator itself).
Type elementwiseType(Sema &S, char op, const Type &a, const Type &b,
                     SourceLoc loc, const std::string &display = "");

} // namespace unroll::dsl
