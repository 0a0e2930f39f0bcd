#pragma once
#include "mlir/Pass/Pass.h"

#include <memory>

namespace unroll::compiler {

/// `differentiate`: replaces every `unroll.grad` by explicit reverse-mode
/// IR built from the dialect's own ops (subgradients for abs, norm1, relu,
/// max and min), so gradients need no runtime autograd and can themselves be
/// differentiated again (inner gradients are expanded first).
std::unique_ptr<mlir::Pass> createDifferentiatePass();

/// Registers the pass under its command-line name (for unroll-opt).
void registerDifferentiatePass();

} // namespace unroll::compiler
