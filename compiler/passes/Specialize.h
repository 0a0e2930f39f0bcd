#pragma once
#include "mlir/Pass/Pass.h"

#include <memory>

namespace unroll::compiler {

/// `specialize`: inlines every call of a DSL function (stdlib functions,
/// problem functions, module methods) into the algorithm that makes it, so
/// that the generic body (unranked tensors) is specialised to the argument
/// shapes of that call site by `infer-shapes`. Inlined ops keep their own
/// location wrapped in the call's (`callsite(op at call)`), so errors point
/// at the function's line with "called from" notes. Functions no longer
/// called are erased.
std::unique_ptr<mlir::Pass> createSpecializePass();

/// Registers the pass under its command-line name (for unroll-opt).
void registerSpecializePass();

} // namespace unroll::compiler
