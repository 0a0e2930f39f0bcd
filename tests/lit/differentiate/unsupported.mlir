// RUN: %unroll-opt %s --differentiate -verify-diagnostics
// A derivative the pass cannot build is an error at the op, whose location
// is the DSL line it came from.
func.func @f(%x: tensor<3xf32>, %e: tensor<f32>) -> tensor<f32> {
  %g = unroll.grad(%e, %x) : (tensor<f32>, tensor<3xf32>) -> tensor<f32> {
  ^bb0(%ee: tensor<f32>, %xx: tensor<3xf32>):
    // expected-error@+1 {{cannot differentiate with respect to an exponent}}
    %p = unroll.pow %xx, %ee : tensor<3xf32>, tensor<f32> -> tensor<3xf32>
    %s = unroll.reduce "sum" %p : tensor<3xf32> -> tensor<f32>
    unroll.yield %s : tensor<f32>
  }
  return %g : tensor<f32>
}
