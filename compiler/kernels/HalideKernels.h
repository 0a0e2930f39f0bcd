#pragma once
// Kernel generation: every unroll.fused region (a chain of elementwise ops
// made by the fuse-elementwise pass) becomes one Halide pipeline for the
// forward value and, through Halide's automatic differentiation
// (propagate_adjoints), one per operand for the backward pass.
//
// Calling convention: a kernel over a result of per-instance shape S has
// rank R = |S| + 1 (the batch axis in front). Every operand is passed with
// that rank, broadcast operands with stride 0 along the broadcast axes
// (what torch::Tensor::expand gives), so a kernel is a plain elementwise
// loop nest. Halide dimension 0 is the innermost (last) tensor axis.
// Operand adjoints come over the full result domain; the caller sums them
// over the axes along which the operand was broadcast.

#include "compiler/dialect/UnrollDialect.h"

#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/raw_ostream.h"

#include <Halide.h>

#include <string>
#include <vector>

namespace unroll::compiler {

/// One generated kernel.
struct FusedKernel {
  std::string name;
  /// Rank of the result and of every operand, batch axis included.
  int rank = 0;
  /// Per-instance shapes of the operands and of the result (as in the IR).
  std::vector<std::vector<int64_t>> inputShapes;
  std::vector<int64_t> resultShape;
  std::vector<Halide::ImageParam> inputs;
  Halide::Func forward;
  /// The adjoint of the result, an input of the backward pipelines.
  Halide::ImageParam gradOutput;
  /// gradInputs[i]: d(loss)/d(operand i) over the result's domain.
  std::vector<Halide::Func> gradInputs;
};

/// Builds the kernel of one fused region; `name` prefixes its Halide names.
/// Throws InternalError for an op in the region that the generator does not
/// know (the fusion pass and this file must agree).
FusedKernel buildFusedKernel(ir::FusedOp op, const std::string &name);

/// `unrollc --emit=kernels`: every distinct kernel of the module (regions
/// that compute the same thing on the same shapes are one kernel), with
/// the layers that use it, its forward definition and its operand adjoints.
void printKernels(mlir::ModuleOp module, llvm::raw_ostream &os);

} // namespace unroll::compiler
