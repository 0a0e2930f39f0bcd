#pragma once
#include <string>

namespace unroll::compiler {

/// Describes the MLIR and Halide this compiler links, after exercising both
/// (an MLIRContext with the builtin dialect, Halide's host target).
std::string describeToolchain();

} // namespace unroll::compiler
