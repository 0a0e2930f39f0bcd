#pragma once
// A small reference evaluator for unroll dialect IR, in float64. It runs
// straight-line blocks (step bodies, gradient bodies, function bodies) op by
// op; tests use it to check transformations numerically, e.g. gradients
// against finite differences.

#include "mlir/IR/Block.h"
#include "llvm/ADT/DenseMap.h"

#include <stdexcept>
#include <vector>

namespace unroll::eval {

/// A dense row-major float64 tensor.
struct Tensor {
  std::vector<int64_t> shape;
  std::vector<double> data;
  static Tensor scalar(double v) { return Tensor{{}, {v}}; }
  size_t size() const { return data.size(); }
};

/// An op the evaluator does not run (random sampling, unexpanded gradients).
class EvalError : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// Values defined outside the evaluated block that it uses.
using Env = llvm::DenseMap<mlir::Value, Tensor>;

/// Runs `block` with its arguments bound to `args`; returns the operands of
/// its terminator. `layerIndex` is the value of unroll.layer_index.
std::vector<Tensor> evaluate(mlir::Block &block,
                             const std::vector<Tensor> &args, Env env = Env(),
                             double layerIndex = 1);

} // namespace unroll::eval
