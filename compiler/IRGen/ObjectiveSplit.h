#pragma once
// The objective split for classical solvers: a one-variable problem's
// objective as a smooth part g and non-smooth terms c * h(y), read off the
// checked AST. A top-level term h(y) or c * h(y) (c free of y) is
// non-smooth when h is a norm that is not differentiable (norm1, norm) or
// a function with a declared `prox`; the rest is g. IR generation turns
// the split into an unroll.composite (g, its gradient and the l1 weight)
// and, for the non-smooth part, an unroll.proximal from the `prox`. A term
// c * h(e) with e an affine map of y other than y (total variation,
// norm1(diff(y))) is a `linear` term, which primal-dual solvers split off
// through e's adjoint; e is affine when built from y with +, -, scaling by
// and products (@) with expressions free of y, transposes and the linear
// built-ins diff, sum, mean and concat.

#include "dsl/AST.h"

#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace unroll::compiler {

/// The terms of a problem's objective, split.
struct ObjectiveSplit {
  /// A non-smooth term c * h(y).
  struct Term {
    std::string h;
    /// c (null: 1).
    const dsl::Expr *weight = nullptr;
    /// The term as written.
    const dsl::Expr *expr = nullptr;
    /// h's argument (y).
    const dsl::Expr *arg = nullptr;
  };
  /// The problem's one variable.
  const dsl::VarDecl *var = nullptr;
  /// The smooth part: its top-level terms with their signs (+1 or -1).
  std::vector<std::pair<int, const dsl::Expr *>> smooth;
  /// The non-smooth terms of y itself, in source order, all of one h:
  /// terms of another h than the first's are `linear` terms of the
  /// identity map.
  std::vector<Term> nonsmooth;
  /// A non-smooth term c * h(e) with e affine in y (norm1(G @ y),
  /// norm1(diff(y))): primal-dual solvers step through it with h's prox
  /// and e's adjoint.
  struct Linear {
    std::string h;
    /// c (null: 1).
    const dsl::Expr *weight = nullptr;
    /// e, the affine map of y.
    const dsl::Expr *map = nullptr;
    /// The term as written.
    const dsl::Expr *expr = nullptr;
  };
  std::vector<Linear> linear;
  /// Terms that apply a non-smooth h to an expression of y in any other
  /// way (norm1(y * y), a norm inside a smooth function): no solver steps
  /// through them. They are part of `smooth` too.
  std::vector<const dsl::Expr *> composed;
  /// The weights of the norm1 terms (null: 1).
  std::vector<const dsl::Expr *> l1Weights() const;
};

/// The split of `pd`'s objective; none for a problem of several variables.
/// `hasProx(h)` says whether function `h` has a declared proximal operator.
std::optional<ObjectiveSplit>
splitObjective(const dsl::ProblemDecl &pd,
               const std::function<bool(const std::string &)> &hasProx);

} // namespace unroll::compiler
