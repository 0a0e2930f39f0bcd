#pragma once
#include "mlir/Pass/Pass.h"

#include <memory>

namespace unroll::compiler {

/// `fuse-elementwise`: groups chains of elementwise ops (arithmetic, unary
/// functions) into `unroll.fused` regions, each of which the kernel
/// generator compiles into one kernel. A producer joins its users' group
/// when all its users are in that group, so every group has a single
/// result; groups of one op stay as they are.
std::unique_ptr<mlir::Pass> createFuseElementwisePass();

/// Registers the pass under its command-line name (for unroll-opt).
void registerFuseElementwisePass();

} // namespace unroll::compiler
