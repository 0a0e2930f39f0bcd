#pragma once
// Kernel generation: every fused op of a runtime program (a chain of
// elementwise ops grouped by the fuse-elementwise pass) becomes one Halide
// pipeline for the forward value and, through Halide's automatic
// differentiation (propagate_adjoints), one per operand for the backward
// pass. Fused ops that share a "kernel" number share one kernel.
//
// Calling convention: a kernel over a result of per-instance shape S has
// rank R = |S| + 1 (the batch axis in front). Every operand is passed with
// that rank, broadcast operands with stride 0 along the broadcast axes
// (what torch::Tensor::expand gives), so a kernel is a plain elementwise
// loop nest. Halide dimension 0 is the innermost (last) tensor axis.
// Operand adjoints come over the full result domain; the caller sums them
// over the axes along which the operand was broadcast.

#include "abi/Plan.h"

#include <cstdint>

#include <Halide.h>

#include <ostream>
#include <string>
#include <vector>

namespace unroll::compiler {

/// One generated kernel.
struct FusedKernel {
  int64_t id = 0;
  std::string name;
  /// Rank of the result, batch axis included.
  int rank = 0;
  /// Rank of every operand and adjoint, batch axis included: the result's,
  /// or for a chain that ends in a reduction, the reduced value's.
  int operandRank = 0;
  /// Per-instance shape of the operands' domain (the result's, or the
  /// reduced value's).
  std::vector<int64_t> domainShape;
  /// The operands' (and adjoints') variables, innermost first, batch last.
  std::vector<Halide::Var> domainVars;
  /// Whether the chain ends in a reduction over all axes (a loss's or a
  /// descent constraint's measure): one value per instance.
  bool reduces = false;
  /// For such a chain: the elementwise part over the domain, the sum over
  /// `sumDomain` that the reduction reads (one per instance, to be
  /// scheduled once per instance) and that domain.
  Halide::Func chain, total;
  Halide::RDom sumDomain;
  /// Per-instance shapes of the operands and of the result.
  std::vector<std::vector<int64_t>> inputShapes;
  std::vector<int64_t> resultShape;
  std::vector<Halide::ImageParam> inputs;
  Halide::Func forward;
  /// The adjoint of the result, an input of the backward pipelines.
  Halide::ImageParam gradOutput;
  /// gradInputs[i]: d(loss)/d(operand i) over the result's domain.
  std::vector<Halide::Func> gradInputs;
  /// Where the program uses it ("layer 3").
  std::vector<std::string> usedBy;
};

/// The Halide expression of one elementwise plan op (`add`, ..., `unary`
/// with its "fn") applied to `args`. Throws InternalError for any other op.
Halide::Expr elementwise(const abi::Op &op,
                         const std::vector<Halide::Expr> &args);

/// The value of a fused op's BODY with its arguments bound to `operands`
/// (one expression per argument, all at the same coordinates). With
/// `opCount`, of the body's first `opCount` ops only: the operand of the
/// next op (the elementwise chain before a reduction).
Halide::Expr fusedExpr(const abi::Body &body,
                       const std::vector<Halide::Expr> &operands,
                       size_t opCount = SIZE_MAX);

/// Builds the kernel of one fused op of a plan (docs/plan.md); `name`
/// prefixes its Halide names. Throws InternalError for an op the generator
/// does not know (the fusion pass and this file must agree).
FusedKernel buildFusedKernel(const abi::Op &fusedOp, const std::string &name);

/// One kernel per distinct "kernel" number of the plan, in number order.
std::vector<FusedKernel> buildKernels(const abi::Plan &plan);

/// The kernel numbered `id` of `plan`, built afresh (its Funcs shared with
/// no other pipeline); `usedBy` is left empty.
FusedKernel buildKernelOf(const abi::Plan &plan, int64_t id);

/// `unrollc --emit=kernels`: every kernel with the layers that use it, its
/// forward definition and its operand adjoints.
void printKernels(const abi::Plan &plan, std::ostream &os);

} // namespace unroll::compiler
