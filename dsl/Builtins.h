#pragma once
#include "dsl/Source.h"
#include "dsl/Types.h"

#include <string>
#include <vector>

namespace unroll::dsl {

class Sema;

/// Names of the built-in functions (the primitives the stdlib is written in).
const std::vector<std::string> &builtinNames();
bool isBuiltin(const std::string &name);

/// Type rule of a built-in call. `args` are the checked argument types and
/// `locs` their locations; errors are reported through `S`.
Type checkBuiltin(Sema &S, const std::string &name,
                  const std::vector<Type> &args,
                  const std::vector<SourceLoc> &locs, SourceLoc callLoc);

} // namespace unroll::dsl
