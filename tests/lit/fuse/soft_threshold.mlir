// RUN: %unroll-opt %s --fuse-elementwise | FileCheck %s
// The LISTA layer: the two products stay outside; the add and the soft
// threshold (whose input is used twice, both times inside the chain), and
// the exp after it, become one fused region. The exp's value is used by two
// different groups, so it is the region's result and the chain ends there.
// The region gets kernel number 0 (regions computing the same share one).

unroll.algorithm @lista solves "p" layers(1) {
  %x = unroll.input data "x" : tensor<3xf32>
  %W = unroll.input given "W" : tensor<3x3xf32>
  %t = unroll.input given "t" : tensor<3xf32>
  %y0 = unroll.state "y" : tensor<3xf32> {
    unroll.yield %x : tensor<3xf32>
  }
  %y1 = unroll.layer 1(%y0) : (tensor<3xf32>) -> tensor<3xf32> {
  ^bb0(%y: tensor<3xf32>):
    %a = unroll.matmul %W, %x : tensor<3x3xf32>, tensor<3xf32> -> tensor<3xf32>
    %b = unroll.matmul %W, %y : tensor<3x3xf32>, tensor<3xf32> -> tensor<3xf32>
    %v = unroll.add %a, %b : tensor<3xf32>, tensor<3xf32> -> tensor<3xf32>
    %s = unroll.unary "sign" %v : tensor<3xf32>
    %m = unroll.unary "abs" %v : tensor<3xf32>
    %d = unroll.sub %m, %t : tensor<3xf32>, tensor<3xf32> -> tensor<3xf32>
    %r = unroll.unary "relu" %d : tensor<3xf32>
    %o = unroll.mul %s, %r : tensor<3xf32>, tensor<3xf32> -> tensor<3xf32>
    %e = unroll.unary "exp" %o : tensor<3xf32>
    %n = unroll.unary "neg" %e : tensor<3xf32>
    %k = unroll.matmul %W, %n : tensor<3x3xf32>, tensor<3xf32> -> tensor<3xf32>
    %z = unroll.add %k, %e : tensor<3xf32>, tensor<3xf32> -> tensor<3xf32>
    unroll.yield %z : tensor<3xf32>
  }
}
// CHECK: unroll.layer 1
// CHECK: %[[A:.*]] = unroll.matmul
// CHECK-NEXT: %[[B:.*]] = unroll.matmul
// CHECK-NEXT: %[[F:.*]] = unroll.fused(%[[A]], %[[B]], %{{.*}}) {kernel = 0 : i64} : (tensor<3xf32>, tensor<3xf32>, tensor<3xf32>) -> tensor<3xf32> {
// CHECK-NEXT: ^bb0(
// CHECK-NEXT: unroll.add
// CHECK-NEXT: unroll.unary "sign"
// CHECK-NEXT: unroll.unary "abs"
// CHECK-NEXT: unroll.sub
// CHECK-NEXT: unroll.unary "relu"
// CHECK-NEXT: unroll.mul
// CHECK-NEXT: %[[E:.*]] = unroll.unary "exp"
// CHECK-NEXT: unroll.yield %[[E]]
// CHECK-NEXT: }
// CHECK-NEXT: %[[N:.*]] = unroll.unary "neg" %[[F]]
// CHECK-NEXT: %[[K:.*]] = unroll.matmul %{{.*}}, %[[N]]
// CHECK-NEXT: %[[Z:.*]] = unroll.add %[[K]], %[[F]]
// CHECK-NEXT: unroll.yield %[[Z]]
