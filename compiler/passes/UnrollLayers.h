#pragma once
#include "mlir/Pass/Pass.h"

#include <memory>

namespace unroll::compiler {

/// `unroll-layers`: replaces each algorithm's `unroll.step` by L explicit
/// `unroll.layer` ops. Every `per_layer` parameter becomes L parameters (one
/// per layer, tagged with `layer`); `shared` ones stay single and tied.
/// `unroll.layer_index` becomes the layer's number as a constant.
std::unique_ptr<mlir::Pass> createUnrollLayersPass();

/// Registers the pass under its command-line name (for unroll-opt).
void registerUnrollLayersPass();

} // namespace unroll::compiler
