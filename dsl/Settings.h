#pragma once
// `unrollc train SPEC --set key=value`: command-line edits of a parsed spec,
// applied before checking so that every size, layer count and training
// setting goes through the same checks as if it had been written in the
// file.

#include "dsl/AST.h"

#include <ostream>
#include <string>
#include <vector>

namespace unroll::dsl {

/// Applies `key=value` settings to the first unrolled algorithm and train
/// block of `m`. Keys:
///   layers (or any other option of the unrolled header), and every named
///   problem argument of its `solves` clause (p, d, alpha for LISTA);
///   epochs, batch, seed;
///   data.KEY (an argument of the first data source), primal.KEY, dual.KEY,
///   evaluate.KEY;
///   descend=off (drop every descent constraint: the unconstrained
///   baseline), noise=off (drop training noise).
/// Values are numbers, identifiers (dual.every=batch) or strings in double
/// quotes (data.path="/data"). Prints
/// `error: --set ...` lines to `err` and returns false on a bad setting.
bool applySettings(Module &m, const std::vector<std::string> &settings,
                   std::ostream &err);

} // namespace unroll::dsl
