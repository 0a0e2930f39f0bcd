#pragma once
// The objective split for classical solvers: a one-variable problem's
// objective as a smooth part g and an l1 term w ||y||_1, read off the
// checked AST (top-level terms c * norm1(y), c free of y, form the l1 part;
// the rest is g). IR generation turns it into an unroll.composite.

#include "dsl/AST.h"

#include <optional>
#include <utility>
#include <vector>

namespace unroll::compiler {

/// The terms of a problem's objective, split.
struct ObjectiveSplit {
  /// The problem's one variable.
  const dsl::VarDecl *var = nullptr;
  /// The smooth part: its top-level terms with their signs (+1 or -1).
  std::vector<std::pair<int, const dsl::Expr *>> smooth;
  /// The l1 weights, one per l1 term (null: weight 1); empty: no l1 term.
  std::vector<const dsl::Expr *> l1Weights;
};

/// The split of `pd`'s objective; none for a problem of several variables.
std::optional<ObjectiveSplit> splitObjective(const dsl::ProblemDecl &pd);

} // namespace unroll::compiler
