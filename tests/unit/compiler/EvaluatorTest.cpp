// The reference evaluator on ops whose results are known in closed form.
#include "compiler/eval/Evaluator.h"
#include "compiler/dialect/UnrollDialect.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Parser/Parser.h"

#include <catch2/catch.hpp>

using namespace unroll;

namespace {
std::vector<eval::Tensor> runFunc(const char *text,
                                  const std::vector<eval::Tensor> &args) {
  mlir::MLIRContext ctx;
  ctx.loadDialect<ir::UnrollDialect, mlir::func::FuncDialect>();
  auto module = mlir::parseSourceString<mlir::ModuleOp>(text, &ctx);
  REQUIRE(module);
  auto f = module->lookupSymbol<mlir::func::FuncOp>("f");
  REQUIRE(f);
  return eval::evaluate(f.getBody().front(), args);
}
} // namespace

TEST_CASE("evaluator: inverse, conv1x1 and conv2d", "[eval]") {
  eval::Tensor A{{2, 2}, {4, 7, 2, 6}};
  auto r = runFunc(R"(
func.func @f(%a: tensor<2x2xf32>) -> tensor<2x2xf32> {
  %i = unroll.inverse %a : tensor<2x2xf32>
  %p = unroll.matmul %i, %a : tensor<2x2xf32>, tensor<2x2xf32> -> tensor<2x2xf32>
  return %p : tensor<2x2xf32>
})",
                   {A});
  CHECK(r[0].data[0] == Approx(1));
  CHECK(r[0].data[1] == Approx(0).margin(1e-12));
  CHECK(r[0].data[2] == Approx(0).margin(1e-12));
  CHECK(r[0].data[3] == Approx(1));

  // 1x1 convolution = the matrix applied at each pixel.
  eval::Tensor x{{2, 1, 2}, {1, 2, 3, 4}}; // channel 0: 1 2, channel 1: 3 4
  eval::Tensor w{{1, 2}, {10, 100}};
  r = runFunc(R"(
func.func @f(%x: tensor<2x1x2xf32>, %w: tensor<1x2xf32>) -> tensor<1x1x2xf32> {
  %y = unroll.conv1x1 %x, %w : tensor<2x1x2xf32>, tensor<1x2xf32> -> tensor<1x1x2xf32>
  return %y : tensor<1x1x2xf32>
})",
              {x, w});
  CHECK(r[0].data == std::vector<double>{310, 420});

  // A 3x3 kernel with a 1 off centre shifts the image, zero-padded.
  eval::Tensor img{{1, 2, 2}, {1, 2, 3, 4}};
  eval::Tensor k{{1, 1, 3, 3}, {0, 0, 0, 0, 0, 1, 0, 0, 0}}; // takes x[i, j+1]
  r = runFunc(R"(
func.func @f(%x: tensor<1x2x2xf32>, %k: tensor<1x1x3x3xf32>) -> tensor<1x2x2xf32> {
  %y = unroll.conv2d %x, %k : tensor<1x2x2xf32>, tensor<1x1x3x3xf32> -> tensor<1x2x2xf32>
  return %y : tensor<1x2x2xf32>
})",
              {img, k});
  CHECK(r[0].data == std::vector<double>{2, 0, 4, 0});
}

TEST_CASE("evaluator: squeeze2d then unsqueeze2d is the identity", "[eval]") {
  eval::Tensor x{{1, 2, 4}, {1, 2, 3, 4, 5, 6, 7, 8}};
  auto r = runFunc(R"(
func.func @f(%x: tensor<1x2x4xf32>) -> (tensor<4x1x2xf32>, tensor<1x2x4xf32>) {
  %s = unroll.squeeze2d %x : tensor<1x2x4xf32> -> tensor<4x1x2xf32>
  %u = unroll.unsqueeze2d %s : tensor<4x1x2xf32> -> tensor<1x2x4xf32>
  return %s, %u : tensor<4x1x2xf32>, tensor<1x2x4xf32>
})",
                   {x});
  // Channel 2*di + dj holds the pixels at row offset di, column offset dj.
  CHECK(r[0].data == std::vector<double>{1, 3, 2, 4, 5, 7, 6, 8});
  CHECK(r[1].data == x.data);
}

TEST_CASE("evaluator: graph filter is sum_k h_k S^k x", "[eval]") {
  eval::Tensor S{{2, 2}, {0, 1, 1, 0}}; // swaps the two nodes
  eval::Tensor x{{2, 1}, {3, 5}};
  eval::Tensor h{{3}, {1, 10, 100}};
  auto r = runFunc(R"(
func.func @f(%S: tensor<2x2xf32>, %x: tensor<2x1xf32>, %h: tensor<3xf32>) -> tensor<2x1xf32> {
  %y = unroll.graph_filter %S, %x, %h : tensor<2x2xf32>, tensor<2x1xf32>, tensor<3xf32> -> tensor<2x1xf32>
  return %y : tensor<2x1xf32>
})",
                   {S, x, h});
  // x + 10 Sx + 100 S^2 x = [3 + 50 + 300, 5 + 30 + 500]
  CHECK(r[0].data == std::vector<double>{353, 535});
}
