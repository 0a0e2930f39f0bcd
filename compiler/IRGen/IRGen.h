#pragma once
// The single bridge between the front end (dsl/) and the IR (compiler/):
// turns checked `unrolled` declarations into `unroll.algorithm` ops.

#include "dsl/Frontend.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/OwningOpRef.h"

namespace unroll::compiler {

/// Generates one `unroll.algorithm` per `unrolled` declaration of the main
/// file, and one generic `func.func` per DSL function it calls (called with
/// `unroll.call`; the specialize and infer-shapes passes inline them and
/// give every value a static shape), with every op located at its DSL
/// source (FileLineColLoc). `fe` must have checked without errors.
/// Constructs IR generation does not cover yet are reported through the
/// front end's diagnostics with their location; the result is then null.
mlir::OwningOpRef<mlir::ModuleOp> generateIR(mlir::MLIRContext &ctx,
                                             const dsl::Frontend &fe);

} // namespace unroll::compiler
