// RUN: %unroll-opt %s -split-input-file -verify-diagnostics
// Each op's verifier rejects malformed IR with a precise message.

// The role, binding, constraint mode and distribution are enumerated
// attributes: the parser names the one with a value outside it.
// expected-error@+1 {{custom op 'unroll.input' invalid role attribute specification: "label"}}
%0 = unroll.input "label" "x" : tensor<3xf32>

// -----

// expected-error@+1 {{custom op 'unroll.param' invalid binding attribute specification: "tied"}}
%0 = unroll.param "tied" "w" : tensor<3xf32> {
  %c = unroll.constant 1.0 : tensor<f32>
  %f = unroll.fill %c : tensor<f32> -> tensor<3xf32>
  unroll.yield %f : tensor<3xf32>
}

// -----

%a = unroll.constant 0.0 : tensor<f32>
// expected-error@+1 {{custom op 'unroll.random' expected string or keyword containing one of the following enum values for attribute 'distribution' [normal, uniform]}}
%0 = unroll.random cauchy(%a, %a) : tensor<f32>, tensor<f32> -> tensor<3xf32>

// -----

// expected-error@+1 {{'unroll.state' op initialiser yields 'tensor<f32>', but the declared type is 'tensor<3xf32>'}}
%0 = unroll.state "y" : tensor<3xf32> {
  %c = unroll.constant 1.0 : tensor<f32>
  unroll.yield %c : tensor<f32>
}

// -----

%x = unroll.input data "x" : tensor<3xf32>
%D = unroll.input given "D" : tensor<4x5xf32>
// expected-error@+2 {{matmul: shapes 'tensor<4x5xf32>' and 'tensor<3xf32>' do not fit}}
// expected-error@+1 {{'unroll.matmul' op failed to infer returned types}}
%y = unroll.matmul %D, %x : tensor<4x5xf32>, tensor<3xf32> -> tensor<4xf32>

// -----

%a = unroll.input data "a" : tensor<3xf32>
%b = unroll.input data "b" : tensor<4xf32>
// expected-error@+2 {{add: shapes 'tensor<3xf32>' and 'tensor<4xf32>' do not broadcast}}
// expected-error@+1 {{'unroll.add' op failed to infer returned types}}
%c = unroll.add %a, %b : tensor<3xf32>, tensor<4xf32> -> tensor<3xf32>

// -----

%a = unroll.input data "a" : tensor<3xf32>
// expected-error@+1 {{'unroll.unary' op unknown elementwise function 'cube'}}
%b = unroll.unary "cube" %a : tensor<3xf32>

// -----

%a = unroll.input data "a" : tensor<3x4xf32>
// expected-error@+1 {{'unroll.reduce' op 'norm' reduces over all elements}}
%b = unroll.reduce "norm" %a {axis = 0 : i64} : tensor<3x4xf32> -> tensor<4xf32>

// -----

// expected-error@+1 {{'unroll.algorithm' op needs exactly one unroll.step, got 0}}
unroll.algorithm @a solves "p" layers(3) {
  %0 = unroll.state "y" : tensor<f32> {
    %c = unroll.constant 0.0 : tensor<f32>
    unroll.yield %c : tensor<f32>
  }
}

// -----

unroll.algorithm @a solves "p" layers(3) {
  %0 = unroll.state "y" : tensor<2xf32> {
    %c = unroll.constant 0.0 : tensor<f32>
    %f = unroll.fill %c : tensor<f32> -> tensor<2xf32>
    unroll.yield %f : tensor<2xf32>
  }
  // expected-error@+1 {{'unroll.step' op yields 'tensor<f32>' for a state of type 'tensor<2xf32>'}}
  unroll.step(%0) : tensor<2xf32> {
  ^bb0(%y: tensor<2xf32>):
    %s = unroll.reduce "sum" %y : tensor<2xf32> -> tensor<f32>
    unroll.yield %s : tensor<f32>
  }
}

// -----

func.func @f(%x: tensor<2x4x4xf32>, %g: tensor<3x4x4xf32>) {
  // expected-error@+1 {{'unroll.conv2d_kernel_adjoint' op needs x [ci, h, w], g [co, h, w] and returns [co, ci, kh, kw] with odd kh, kw}}
  %k = unroll.conv2d_kernel_adjoint %x, %g : tensor<2x4x4xf32>, tensor<3x4x4xf32> -> tensor<3x2x2x2xf32>
  return
}

// -----

func.func @f(%g: tensor<3x4x4xf32>, %k: tensor<2x2x3x3xf32>) {
  // expected-error@+2 {{conv2d_transpose needs [co, h, w] and [co, ci, kh, kw] with odd kh, kw}}
  // expected-error@+1 {{'unroll.conv2d_transpose' op failed to infer returned types}}
  %x = unroll.conv2d_transpose %g, %k : tensor<3x4x4xf32>, tensor<2x2x3x3xf32> -> tensor<2x4x4xf32>
  return
}

// -----

func.func @f(%x: tensor<2x3xf32>) {
  // expected-error@+1 {{'unroll.reshape' op cannot reshape 'tensor<2x3xf32>' to 'tensor<5xf32>'}}
  %r = unroll.reshape %x : tensor<2x3xf32> -> tensor<5xf32>
  return
}

// -----

func.func @f(%x: tensor<2x3x4xf32>) {
  // expected-error@+1 {{'unroll.lipschitz_grad' op takes a matrix}}
  %r = unroll.lipschitz_grad %x : tensor<2x3x4xf32>
  return
}

// -----

// A projection maps one point to a value of its type.
// expected-error@+1 {{'unroll.projection' op body takes the point to project, not 2 values}}
unroll.projection "box" on "y" {
^bb0(%v: tensor<3xf32>, %w: tensor<3xf32>):
  unroll.yield %v : tensor<3xf32>
}

// -----

// A proximal operator maps the point and the step to the point's type.
// expected-error@+1 {{'unroll.proximal' op body must yield one value of the point's type}}
unroll.proximal "norm1" {
^bb0(%v: tensor<3xf32>, %t: tensor<f32>):
  unroll.yield %t : tensor<f32>
}

// -----

// The problem's variables come before the algorithm's own states.
// expected-error@+1 {{'unroll.algorithm' op needs at least one unroll.state of the problem}}
unroll.algorithm @a solves "p" layers(1) {
  %0 = unroll.state "v" {algorithm} : tensor<3xf32> {
    %c = unroll.constant 0.0 : tensor<f32>
    %f = unroll.fill %c : tensor<f32> -> tensor<3xf32>
    unroll.yield %f : tensor<3xf32>
  }
  unroll.step(%0) : tensor<3xf32> {
  ^bb0(%a: tensor<3xf32>):
    unroll.yield %a : tensor<3xf32>
  }
}

// -----

unroll.algorithm @a solves "p" layers(1) {
  %0 = unroll.state "v" {algorithm} : tensor<3xf32> {
    %c = unroll.constant 0.0 : tensor<f32>
    %f = unroll.fill %c : tensor<f32> -> tensor<3xf32>
    unroll.yield %f : tensor<3xf32>
  }
  // expected-error@+1 {{'unroll.state' op of the problem follows a state of the algorithm; the problem's variables come first}}
  %1 = unroll.state "y" : tensor<3xf32> {
    %c = unroll.constant 0.0 : tensor<f32>
    %f = unroll.fill %c : tensor<f32> -> tensor<3xf32>
    unroll.yield %f : tensor<3xf32>
  }
  unroll.step(%1, %0) : tensor<3xf32>, tensor<3xf32> {
  ^bb0(%a: tensor<3xf32>, %b: tensor<3xf32>):
    unroll.yield %a, %b : tensor<3xf32>, tensor<3xf32>
  }
}

// -----

// A composed term's adjoint maps back to the variable's type.
// expected-error@+1 {{'unroll.composed_term' op adjoint must yield one value of the variable's type}}
unroll.composed_term "norm1" map {
^bb0(%y: tensor<4xf32>):
  %d = unroll.diff %y {axis = 0 : i64} : tensor<4xf32> -> tensor<3xf32>
  unroll.yield %d : tensor<3xf32>
} adjoint {
^bb0(%y: tensor<4xf32>, %z: tensor<3xf32>):
  unroll.yield %z : tensor<3xf32>
} prox {
^bb0(%v: tensor<3xf32>, %t: tensor<f32>):
  unroll.yield %v : tensor<3xf32>
}

// -----

// Its prox takes a point of the map's type.
// expected-error@+1 {{'unroll.composed_term' op prox takes a point of the map's type and the step}}
unroll.composed_term "norm1" map {
^bb0(%y: tensor<4xf32>):
  %d = unroll.diff %y {axis = 0 : i64} : tensor<4xf32> -> tensor<3xf32>
  unroll.yield %d : tensor<3xf32>
} adjoint {
^bb0(%y: tensor<4xf32>, %z: tensor<3xf32>):
  unroll.yield %y : tensor<4xf32>
} prox {
^bb0(%v: tensor<4xf32>, %t: tensor<f32>):
  unroll.yield %v : tensor<4xf32>
}

// -----

// diff's axis is -1 (the last) or one of the operand's.
func.func @f(%x: tensor<4x3xf32>) {
  // expected-error@+1 {{'unroll.diff' op axis 2 is outside 'tensor<4x3xf32>'}}
  %d = unroll.diff %x {axis = 2 : i64} : tensor<4x3xf32> -> tensor<4x2xf32>
  return
}
