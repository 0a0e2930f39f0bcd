#pragma once
// The fused kernels of a runtime program for the CUDA target: each forward
// and adjoint pipeline scheduled one GPU thread per element and compiled by
// Halide's NVPTX backend to PTX. Needs no GPU and no CUDA toolkit (ptxas,
// where installed, can check the result: tests/lit/kernels/ptxas.unroll).

#include "abi/Plan.h"

#include <Halide.h>

#include <string>
#include <vector>

namespace unroll::compiler {

/// Schedules `f` one GPU thread per element: all its axes fused, in blocks
/// of 256 threads. Returns the thread variable (to compute_at inside).
Halide::Var scheduleForGpu(Halide::Func f);

/// The Halide target for CUDA compute capability `capability` on this host.
Halide::Target cudaTarget(int capability = 75, bool hostFeatures = false);

/// One PTX module: a kernel's forward pipeline or one operand's adjoint.
struct PtxModule {
  std::string name; ///< "k0_forward", "k0_adjoint1", ...
  std::string ptx;  ///< the module's text, `.version` first
};

/// PTX for every distinct fused kernel of `plan`, for compute capability
/// `capability` (one of Halide's: 30, 32, 35, 50, 61, 70, 75, 80, 86).
/// Throws InternalError if Halide produces no PTX.
std::vector<PtxModule> buildPtx(const abi::Plan &plan, int capability = 75);

/// `--emit=ptx`: each module after a `// unroll kernel NAME` line.
void printPtx(const abi::Plan &plan, std::ostream &os);

} // namespace unroll::compiler
