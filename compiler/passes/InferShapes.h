#pragma once
#include "mlir/Pass/Pass.h"

#include <memory>

namespace unroll::compiler {

/// `infer-shapes`: gives every value of the algorithms a static shape. The
/// sizes the spec binds (`solves p(n = 64)`) fix the types of inputs,
/// parameters and states; from there each op's result type is inferred
/// from its operands in program order, through regions (a gradient's body
/// takes its operands' types). Ops whose meaning depends on a shape become
/// plain ops once it is known (`half` -> `slice`, `append_ones` -> `fill` +
/// `concat`), and a scalar initialiser of a larger parameter or state is
/// broadcast with `fill`. A shape that cannot be inferred is an error at
/// the op's DSL location.
std::unique_ptr<mlir::Pass> createInferShapesPass();

/// Registers the pass under its command-line name (for unroll-opt).
void registerInferShapesPass();

} // namespace unroll::compiler
