#pragma once
// The middle end in order: specialize, infer-shapes, differentiate,
// canonicalize, CSE, unroll-layers, and (for code generation)
// fuse-elementwise.

#include "mlir/IR/BuiltinOps.h"

namespace unroll::compiler {

/// Runs the middle-end passes on IR from generateIR; `fuse` adds the fusion
/// of elementwise chains (for plans and kernels). With `printAfterAll`, the
/// IR after every pass goes to stderr. Errors are emitted at the ops (whose
/// locations are DSL source locations).
mlir::LogicalResult runPipeline(mlir::ModuleOp module, bool printAfterAll,
                                bool fuse = false);

/// Only the first two passes: the IR with every function call inlined and
/// every shape static, still with one step and explicit unroll.grad ops.
mlir::LogicalResult runSpecialization(mlir::ModuleOp module);

} // namespace unroll::compiler
