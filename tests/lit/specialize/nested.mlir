// RUN: %unroll-opt --specialize --mlir-print-debuginfo --mlir-print-local-scope %s | FileCheck %s
// A call of a generic function whose body calls another: both are inlined
// into the step, each op located at its own line inside the calls that led
// to it, and the functions, now unused, are erased.
unroll.algorithm @a solves "p" layers(2) {
  %w = unroll.input given "w" : tensor<3xf32>
  %s = unroll.state "y" : tensor<3xf32> {
    %c = unroll.constant 0.0 : tensor<f32>
    %f = unroll.fill %c : tensor<f32> -> tensor<3xf32>
    unroll.yield %f : tensor<3xf32>
  }
  unroll.step(%s) : tensor<3xf32> {
  ^bb0(%y: tensor<3xf32>):
    %r = unroll.call @outer(%y, %w) : (tensor<3xf32>, tensor<3xf32>) -> tensor<*xf32> loc("spec":20:5)
    unroll.yield %r : tensor<*xf32>
  }
}
func.func private @outer(%v: tensor<*xf32>, %w: tensor<3xf32>) -> tensor<*xf32> {
  %m = unroll.mul %v, %w : tensor<*xf32>, tensor<3xf32> -> tensor<*xf32> loc("lib":2:3)
  %i = unroll.call @inner(%m) : (tensor<*xf32>) -> tensor<*xf32> loc("lib":3:3)
  return %i : tensor<*xf32>
}
func.func private @inner(%v: tensor<*xf32>) -> tensor<*xf32> {
  %t = unroll.unary "tanh" %v : tensor<*xf32> loc("lib":7:3)
  return %t : tensor<*xf32>
}
// CHECK: unroll.step
// CHECK-NEXT: ^bb0(%[[Y:.*]]: tensor<3xf32>
// CHECK-NEXT: %[[M:.*]] = unroll.mul %[[Y]], %{{.*}} : tensor<3xf32>, tensor<3xf32> -> tensor<*xf32> loc(callsite("lib":2:3 at "spec":20:5))
// CHECK-NEXT: %[[T:.*]] = unroll.unary "tanh" %[[M]] : tensor<*xf32> loc(callsite("lib":7:3 at callsite("lib":3:3 at "spec":20:5)))
// CHECK-NEXT: unroll.yield %[[T]] : tensor<*xf32>
// CHECK-NOT: func.func
