#pragma once
// The unroll dialect: ops generated from UnrollOps.td.

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/RegionKindInterface.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Interfaces/CallInterfaces.h"
#include "mlir/Interfaces/ControlFlowInterfaces.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "compiler/dialect/UnrollDialect.h.inc"
#include "compiler/dialect/UnrollEnums.h.inc"

#define GET_OP_CLASSES
#include "compiler/dialect/UnrollOps.h.inc"

namespace unroll::ir {

/// The f32 tensor type of the given static shape (rank 0: a scalar).
mlir::RankedTensorType tensorType(mlir::MLIRContext *ctx,
                                  llvm::ArrayRef<int64_t> shape);

/// The f32 tensor of unknown rank: arguments and results inside generic
/// functions, until infer-shapes.
mlir::Type unrankedTensor(mlir::MLIRContext *ctx);

/// Whether `t` is an unranked tensor type.
bool isUnranked(mlir::Type t);

/// Equal, or one of them unranked (not known yet).
bool compatibleTypes(mlir::Type a, mlir::Type b);

/// Whether any of `values` is unranked.
bool anyUnranked(mlir::ValueRange values);

/// Whether an operand, result or block argument of `op` is unranked.
bool hasUnrankedTypes(mlir::Operation *op);

/// Recomputes the result types of an op that infers them
/// (InferTypeOpInterface) from its current operands and attributes. Fails,
/// with the reason emitted at the op, if the operands do not fit.
mlir::LogicalResult inferResultTypes(mlir::Operation *op);

/// NumPy broadcasting of two static shapes; fails if they are incompatible.
mlir::FailureOr<llvm::SmallVector<int64_t>>
broadcastShapes(llvm::ArrayRef<int64_t> a, llvm::ArrayRef<int64_t> b);

/// The shape of `a @ b` under the DSL's rules; fails if they do not fit.
mlir::FailureOr<llvm::SmallVector<int64_t>>
matmulShape(llvm::ArrayRef<int64_t> a, llvm::ArrayRef<int64_t> b);

} // namespace unroll::ir
