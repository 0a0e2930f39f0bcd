#pragma once
// Lowering of unrolled, differentiated IR to the runtime program ("plan"):
// a versioned JSON document the runtime executes without MLIR. The format
// is documented in docs/plan.md.

#include "abi/PlanFormat.h"

#include "mlir/IR/BuiltinOps.h"

#include <nlohmann/json.hpp>

namespace unroll::compiler {

/// Version of the plan format written by lowerToPlan (abi/, shared with
/// every reader).
using abi::kPlanVersion;

/// Lowers every unroll.algorithm of `module`. The module must have gone
/// through differentiate and unroll-layers (no unroll.step or unroll.grad
/// left); otherwise an error is emitted at the offending op and the result
/// is a failure.
mlir::FailureOr<nlohmann::json> lowerToPlan(mlir::ModuleOp module);

} // namespace unroll::compiler
