// RUN: %unroll-opt --specialize --infer-shapes -verify-diagnostics -split-input-file %s
// Shapes that cannot be inferred are errors at the op (after inlining, its
// location inside the function, with the call site).

// A generic function whose body does not fit the call's shapes.
unroll.algorithm @a solves "p" layers(1) {
  %s = unroll.state "y" : tensor<3x4xf32> {
    %c = unroll.constant 0.0 : tensor<f32>
    %f = unroll.fill %c : tensor<f32> -> tensor<3x4xf32>
    unroll.yield %f : tensor<3x4xf32>
  }
  unroll.step(%s) : tensor<3x4xf32> {
  ^bb0(%y: tensor<3x4xf32>):
    %r = unroll.call @square(%y) : (tensor<3x4xf32>) -> tensor<*xf32>
    unroll.yield %r : tensor<*xf32>
  }
}
func.func private @square(%m: tensor<*xf32>) -> tensor<*xf32> {
  // The verifier after specialize already sees the call's shapes.
  // expected-error@+2 {{matmul: shapes 'tensor<3x4xf32>' and 'tensor<3x4xf32>' do not fit}}
  // expected-error@+1 {{'unroll.matmul' op failed to infer returned types}}
  %p = unroll.matmul %m, %m : tensor<*xf32>, tensor<*xf32> -> tensor<*xf32>
  return %p : tensor<*xf32>
}

// -----

// The step must give the state back with its own shape.
unroll.algorithm @a solves "p" layers(1) {
  %s = unroll.state "y" : tensor<4xf32> {
    %c = unroll.constant 0.0 : tensor<f32>
    %f = unroll.fill %c : tensor<f32> -> tensor<4xf32>
    unroll.yield %f : tensor<4xf32>
  }
  // expected-error@+1 {{'unroll.step' op yields 'tensor<2xf32>' for a state of type 'tensor<4xf32>'}}
  unroll.step(%s) : tensor<4xf32> {
  ^bb0(%y: tensor<4xf32>):
    %r = unroll.call @front(%y) : (tensor<4xf32>) -> tensor<*xf32>
    unroll.yield %r : tensor<*xf32>
  }
}
func.func private @front(%v: tensor<*xf32>) -> tensor<*xf32> {
  %h = unroll.half "first" %v : tensor<*xf32> -> tensor<*xf32>
  return %h : tensor<*xf32>
}

// -----

// An op whose result shape nothing determines.
unroll.algorithm @a solves "p" layers(1) {
  %s = unroll.state "y" : tensor<4xf32> {
    %c = unroll.constant 0.0 : tensor<f32>
    // expected-error@+1 {{infer-shapes: cannot infer the result shape of 'unroll.fill'}}
    %f = unroll.fill %c : tensor<f32> -> tensor<*xf32>
    unroll.yield %f : tensor<*xf32>
  }
  unroll.step(%s) : tensor<4xf32> {
  ^bb0(%y: tensor<4xf32>):
    unroll.yield %y : tensor<4xf32>
  }
}
