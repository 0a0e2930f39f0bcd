// RUN: %unroll-opt %s --unroll-layers | FileCheck %s
// `per_layer` parameters get one copy per layer, each used by its own layer;
// `shared` ones stay a single value used by every layer; the layer index
// becomes a constant.

unroll.algorithm @u solves "q" layers(3) {
  %x = unroll.input data "x" : tensor<2xf32>
  %a = unroll.param per_layer "a" : tensor<f32> {
    %c = unroll.constant 0.5 : tensor<f32>
    unroll.yield %c : tensor<f32>
  }
  %b = unroll.param shared "b" : tensor<2xf32> {
    %c = unroll.constant 0.1 : tensor<f32>
    %f = unroll.fill %c : tensor<f32> -> tensor<2xf32>
    unroll.yield %f : tensor<2xf32>
  }
  %y0 = unroll.state "y" : tensor<2xf32> {
    unroll.yield %x : tensor<2xf32>
  }
  unroll.step(%y0) : tensor<2xf32> {
  ^bb0(%y: tensor<2xf32>):
    %l = unroll.layer_index : tensor<f32>
    %t = unroll.mul %a, %y : tensor<f32>, tensor<2xf32> -> tensor<2xf32>
    %s = unroll.div %b, %l : tensor<2xf32>, tensor<f32> -> tensor<2xf32>
    %n = unroll.add %t, %s : tensor<2xf32>, tensor<2xf32> -> tensor<2xf32>
    unroll.yield %n : tensor<2xf32>
  }
}

// CHECK:      %[[A1:.*]] = unroll.param per_layer "a" {layer = 1 : i64}
// CHECK:      %[[A2:.*]] = unroll.param per_layer "a" {layer = 2 : i64}
// CHECK:      %[[A3:.*]] = unroll.param per_layer "a" {layer = 3 : i64}
// CHECK-NOT:  unroll.param per_layer "a" :
// CHECK:      %[[B:.*]] = unroll.param shared "b" :
// CHECK-NOT:  unroll.param shared
// CHECK:      %[[Y0:.*]] = unroll.state "y"
// CHECK-NOT:  unroll.step
// CHECK:      %[[Y1:.*]] = unroll.layer 1(%[[Y0]])
// CHECK-NEXT: ^bb0(%[[ARG1:.*]]: tensor<2xf32>):
// CHECK-NEXT:   %[[L1:.*]] = unroll.constant 1.000000e+00
// CHECK-NEXT:   unroll.mul %[[A1]], %[[ARG1]]
// CHECK-NEXT:   unroll.div %[[B]], %[[L1]]
// CHECK:      %[[Y2:.*]] = unroll.layer 2(%[[Y1]])
// CHECK:        %[[L2:.*]] = unroll.constant 2.000000e+00
// CHECK-NEXT:   unroll.mul %[[A2]],
// CHECK-NEXT:   unroll.div %[[B]], %[[L2]]
// CHECK:      unroll.layer 3(%[[Y2]])
// CHECK:        unroll.constant 3.000000e+00
// CHECK-NEXT:   unroll.mul %[[A3]],
// CHECK-NEXT:   unroll.div %[[B]],
// CHECK-NOT:  unroll.layer 4
