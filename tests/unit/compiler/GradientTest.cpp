// Every differentiated op, and the LASSO objective, checked against central
// finite differences in float64 through the reference evaluator: the
// differentiate pass must agree to a relative error below 1e-6.
#include "compiler/dialect/UnrollDialect.h"
#include "compiler/eval/Evaluator.h"
#include "compiler/passes/Differentiate.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"

#include <catch2/catch.hpp>

#include <cmath>
#include <random>
#include <sstream>

using namespace unroll;

namespace {

struct Case {
  const char *name;
  /// Arguments, the first being the one differentiated: "%x: tensor<3xf32>".
  std::vector<std::string> args;
  /// Ops computing the scalar %out from the arguments.
  const char *body;
};

std::string typeOf(const std::string &arg) {
  return arg.substr(arg.find(':') + 2);
}

/// @f computes the function; @df its gradient through unroll.grad.
std::string program(const Case &c) {
  std::ostringstream os;
  std::string sig, types, names;
  for (size_t i = 0; i < c.args.size(); ++i) {
    sig += (i ? ", " : "") + c.args[i];
    types += (i ? ", " : "") + typeOf(c.args[i]);
    names += (i ? ", " : "") + std::string("%a") + std::to_string(i);
  }
  std::string dsig;
  for (size_t i = 0; i < c.args.size(); ++i)
    dsig += (i ? ", " : "") + std::string("%a") + std::to_string(i) + ": " +
            typeOf(c.args[i]);
  std::string t0 = typeOf(c.args[0]);
  os << "func.func @f(" << sig << ") -> tensor<f32> {\n"
     << c.body << "\n  return %out : tensor<f32>\n}\n"
     << "func.func @df(" << dsig << ") -> " << t0 << " {\n"
     << "  %g = unroll.grad(" << names << ") : (" << types << ") -> " << t0
     << " {\n  ^bb0(" << sig << "):\n"
     << c.body << "\n    unroll.yield %out : tensor<f32>\n  }\n"
     << "  return %g : " << t0 << "\n}\n";
  return os.str();
}

eval::Tensor randomTensor(mlir::Type t, std::mt19937 &rng) {
  auto rt = mlir::cast<mlir::RankedTensorType>(t);
  eval::Tensor x;
  x.shape.assign(rt.getShape().begin(), rt.getShape().end());
  std::normal_distribution<double> n(0, 1);
  for (int64_t i = 0; i < rt.getNumElements(); ++i)
    x.data.push_back(n(rng));
  return x;
}

double run(mlir::func::FuncOp f, const std::vector<eval::Tensor> &args) {
  return eval::evaluate(f.getBody().front(), args)[0].data[0];
}

void checkGradient(const Case &c) {
  INFO(c.name);
  mlir::MLIRContext ctx;
  ctx.loadDialect<ir::UnrollDialect, mlir::func::FuncDialect>();
  std::string text = program(c);
  auto module = mlir::parseSourceString<mlir::ModuleOp>(text, &ctx);
  INFO(text);
  REQUIRE(module);
  mlir::PassManager pm(&ctx);
  pm.addPass(compiler::createDifferentiatePass());
  REQUIRE(mlir::succeeded(pm.run(*module)));
  auto f = module->lookupSymbol<mlir::func::FuncOp>("f");
  auto df = module->lookupSymbol<mlir::func::FuncOp>("df");
  REQUIRE(f);
  REQUIRE(df);
  bool hasGrad = false;
  module->walk([&](ir::GradOp) { hasGrad = true; });
  CHECK(!hasGrad);

  std::mt19937 rng(42);
  std::vector<eval::Tensor> args;
  for (mlir::Type t : f.getArgumentTypes())
    args.push_back(randomTensor(t, rng));
  eval::Tensor ad = eval::evaluate(df.getBody().front(), args)[0];
  REQUIRE(ad.data.size() == args[0].data.size());

  const double h = 1e-6;
  double err = 0, norm = 0;
  for (size_t i = 0; i < args[0].data.size(); ++i) {
    auto plus = args, minus = args;
    plus[0].data[i] += h;
    minus[0].data[i] -= h;
    double fd = (run(f, plus) - run(f, minus)) / (2 * h);
    err += (fd - ad.data[i]) * (fd - ad.data[i]);
    norm += fd * fd;
  }
  double rel = std::sqrt(err) / std::max(std::sqrt(norm), 1e-12);
  INFO("relative error " << rel);
  CHECK(rel < 1e-6);
}

const std::vector<Case> kCases = {
    {"add sub mul div, broadcast scalar",
     {"%x: tensor<4xf32>", "%s: tensor<f32>"},
     R"(  %a = unroll.mul %x, %s : tensor<4xf32>, tensor<f32> -> tensor<4xf32>
  %b = unroll.sub %a, %x : tensor<4xf32>, tensor<4xf32> -> tensor<4xf32>
  %q = unroll.mul %x, %x : tensor<4xf32>, tensor<4xf32> -> tensor<4xf32>
  %c1 = unroll.constant 1.0 : tensor<f32>
  %d = unroll.add %q, %c1 : tensor<4xf32>, tensor<f32> -> tensor<4xf32>
  %e = unroll.div %b, %d : tensor<4xf32>, tensor<4xf32> -> tensor<4xf32>
  %out = unroll.reduce "sum" %e : tensor<4xf32> -> tensor<f32>)"},
    {"gradient with respect to a broadcast scalar",
     {"%s: tensor<f32>", "%x: tensor<4xf32>"},
     R"(  %a = unroll.mul %x, %s : tensor<4xf32>, tensor<f32> -> tensor<4xf32>
  %b = unroll.div %x, %s : tensor<4xf32>, tensor<f32> -> tensor<4xf32>
  %c = unroll.add %a, %b : tensor<4xf32>, tensor<4xf32> -> tensor<4xf32>
  %out = unroll.reduce "sqnorm" %c : tensor<4xf32> -> tensor<f32>)"},
    {"unary functions",
     {"%x: tensor<5xf32>"},
     R"(  %n = unroll.unary "neg" %x : tensor<5xf32>
  %a = unroll.unary "abs" %n : tensor<5xf32>
  %r = unroll.unary "relu" %x : tensor<5xf32>
  %e = unroll.unary "exp" %x : tensor<5xf32>
  %l = unroll.unary "log" %e : tensor<5xf32>
  %sq = unroll.unary "square" %x : tensor<5xf32>
  %c1 = unroll.constant 1.0 : tensor<f32>
  %p = unroll.add %sq, %c1 : tensor<5xf32>, tensor<f32> -> tensor<5xf32>
  %s = unroll.unary "sqrt" %p : tensor<5xf32>
  %t = unroll.unary "tanh" %x : tensor<5xf32>
  %g = unroll.unary "sigmoid" %x : tensor<5xf32>
  %sg = unroll.unary "sign" %x : tensor<5xf32>
  %s1 = unroll.add %a, %r : tensor<5xf32>, tensor<5xf32> -> tensor<5xf32>
  %s2 = unroll.mul %l, %s : tensor<5xf32>, tensor<5xf32> -> tensor<5xf32>
  %s3 = unroll.mul %t, %g : tensor<5xf32>, tensor<5xf32> -> tensor<5xf32>
  %s4 = unroll.add %s1, %s2 : tensor<5xf32>, tensor<5xf32> -> tensor<5xf32>
  %s5 = unroll.add %s4, %s3 : tensor<5xf32>, tensor<5xf32> -> tensor<5xf32>
  %s6 = unroll.add %s5, %sg : tensor<5xf32>, tensor<5xf32> -> tensor<5xf32>
  %out = unroll.reduce "sum" %s6 : tensor<5xf32> -> tensor<f32>)"},
    {"pow with a constant exponent, max, min",
     {"%x: tensor<6xf32>", "%y: tensor<6xf32>"},
     R"(  %sq = unroll.unary "square" %x : tensor<6xf32>
  %c1 = unroll.constant 1.0 : tensor<f32>
  %p = unroll.add %sq, %c1 : tensor<6xf32>, tensor<f32> -> tensor<6xf32>
  %e = unroll.constant 1.5 : tensor<f32>
  %w = unroll.pow %p, %e : tensor<6xf32>, tensor<f32> -> tensor<6xf32>
  %m = unroll.max %x, %y : tensor<6xf32>, tensor<6xf32> -> tensor<6xf32>
  %c3 = unroll.constant 0.3 : tensor<f32>
  %n = unroll.min %x, %c3 : tensor<6xf32>, tensor<f32> -> tensor<6xf32>
  %s = unroll.add %w, %m : tensor<6xf32>, tensor<6xf32> -> tensor<6xf32>
  %t = unroll.mul %s, %n : tensor<6xf32>, tensor<6xf32> -> tensor<6xf32>
  %out = unroll.reduce "sum" %t : tensor<6xf32> -> tensor<f32>)"},
    {"matrix-vector product, by the vector",
     {"%x: tensor<3xf32>", "%A: tensor<4x3xf32>"},
     R"(  %y = unroll.matmul %A, %x : tensor<4x3xf32>, tensor<3xf32> -> tensor<4xf32>
  %out = unroll.reduce "norm" %y : tensor<4xf32> -> tensor<f32>)"},
    {"matrix-vector product, by the matrix",
     {"%A: tensor<4x3xf32>", "%x: tensor<3xf32>"},
     R"(  %y = unroll.matmul %A, %x : tensor<4x3xf32>, tensor<3xf32> -> tensor<4xf32>
  %out = unroll.reduce "norm" %y : tensor<4xf32> -> tensor<f32>)"},
    {"vector-matrix and dot products",
     {"%x: tensor<3xf32>", "%B: tensor<3x2xf32>", "%z: tensor<2xf32>"},
     R"(  %y = unroll.matmul %x, %B : tensor<3xf32>, tensor<3x2xf32> -> tensor<2xf32>
  %d = unroll.matmul %y, %z : tensor<2xf32>, tensor<2xf32> -> tensor<f32>
  %e = unroll.matmul %x, %x : tensor<3xf32>, tensor<3xf32> -> tensor<f32>
  %out = unroll.mul %d, %e : tensor<f32>, tensor<f32> -> tensor<f32>)"},
    {"matrix-matrix product and transpose, by the right matrix",
     {"%B: tensor<3x2xf32>", "%A: tensor<4x3xf32>"},
     R"(  %C = unroll.matmul %A, %B : tensor<4x3xf32>, tensor<3x2xf32> -> tensor<4x2xf32>
  %Ct = unroll.transpose %C : tensor<4x2xf32> -> tensor<2x4xf32>
  %out = unroll.reduce "sqnorm" %Ct : tensor<2x4xf32> -> tensor<f32>)"},
    {"batched product",
     {"%A: tensor<2x3x4xf32>", "%B: tensor<2x4x2xf32>"},
     R"(  %C = unroll.matmul %A, %B : tensor<2x3x4xf32>, tensor<2x4x2xf32> -> tensor<2x3x2xf32>
  %t = unroll.unary "tanh" %C : tensor<2x3x2xf32>
  %out = unroll.reduce "sum" %t : tensor<2x3x2xf32> -> tensor<f32>)"},
    {"reductions over an axis, expand, sum_to, fill, outer",
     {"%X: tensor<3x4xf32>", "%v: tensor<4xf32>"},
     R"(  %m = unroll.reduce "mean" %X {axis = 0 : i64} : tensor<3x4xf32> -> tensor<4xf32>
  %s = unroll.reduce "sum" %X {axis = 1 : i64} : tensor<3x4xf32> -> tensor<3xf32>
  %o = unroll.outer %s, %m : tensor<3xf32>, tensor<4xf32> -> tensor<3x4xf32>
  %e = unroll.expand %m {axis = 0 : i64} : tensor<4xf32> -> tensor<2x4xf32>
  %st = unroll.sum_to %o : tensor<3x4xf32> -> tensor<4xf32>
  %n1 = unroll.reduce "norm1" %st : tensor<4xf32> -> tensor<f32>
  %f = unroll.fill %n1 : tensor<f32> -> tensor<2x4xf32>
  %p = unroll.mul %e, %f : tensor<2x4xf32>, tensor<2x4xf32> -> tensor<2x4xf32>
  %q = unroll.mul %p, %v : tensor<2x4xf32>, tensor<4xf32> -> tensor<2x4xf32>
  %out = unroll.reduce "mean" %q : tensor<2x4xf32> -> tensor<f32>)"},
    {"concat, slice, squeeze2d, unsqueeze2d (the coupling layer's plumbing)",
     {"%x: tensor<2x4x4xf32>", "%y: tensor<2x4x4xf32>"},
     R"(  %c = unroll.concat %x, %y {axis = 0 : i64} : tensor<2x4x4xf32>, tensor<2x4x4xf32> -> tensor<4x4x4xf32>
  %a = unroll.slice %c {axis = 0 : i64, start = 1 : i64} : tensor<4x4x4xf32> -> tensor<2x4x4xf32>
  %s = unroll.squeeze2d %a : tensor<2x4x4xf32> -> tensor<8x2x2xf32>
  %t = unroll.unary "tanh" %s : tensor<8x2x2xf32>
  %u = unroll.unsqueeze2d %t : tensor<8x2x2xf32> -> tensor<2x4x4xf32>
  %m = unroll.mul %u, %x : tensor<2x4x4xf32>, tensor<2x4x4xf32> -> tensor<2x4x4xf32>
  %out = unroll.reduce "sum" %m : tensor<2x4x4xf32> -> tensor<f32>)"},
    {"SURF's per-agent softmax cross-entropy, by the weights",
     {"%w: tensor<2x3x4xf32>", "%X: tensor<2x5x3xf32>",
      "%Y: tensor<2x5x3xf32>"},
     R"(  %one = unroll.constant 1.0 : tensor<f32>
  %ones = unroll.fill %one : tensor<f32> -> tensor<2x5x1xf32>
  %Xa = unroll.concat %X, %ones {axis = 2 : i64} : tensor<2x5x3xf32>, tensor<2x5x1xf32> -> tensor<2x5x4xf32>
  %wt = unroll.transpose %w : tensor<2x3x4xf32> -> tensor<2x4x3xf32>
  %z = unroll.matmul %Xa, %wt : tensor<2x5x4xf32>, tensor<2x4x3xf32> -> tensor<2x5x3xf32>
  %lse = unroll.logsumexp %z {axis = 2 : i64} : tensor<2x5x3xf32> -> tensor<2x5xf32>
  %zy = unroll.mul %z, %Y : tensor<2x5x3xf32>, tensor<2x5x3xf32> -> tensor<2x5x3xf32>
  %pick = unroll.reduce "sum" %zy {axis = 2 : i64} : tensor<2x5x3xf32> -> tensor<2x5xf32>
  %ce = unroll.sub %lse, %pick : tensor<2x5xf32>, tensor<2x5xf32> -> tensor<2x5xf32>
  %per = unroll.reduce "mean" %ce {axis = 1 : i64} : tensor<2x5xf32> -> tensor<2xf32>
  %sm = unroll.softmax %per {axis = 0 : i64} : tensor<2xf32>
  %s1 = unroll.reduce "sum" %per : tensor<2xf32> -> tensor<f32>
  %s2 = unroll.reduce "sqnorm" %sm : tensor<2xf32> -> tensor<f32>
  %out = unroll.add %s1, %s2 : tensor<f32>, tensor<f32> -> tensor<f32>)"},
    {"LASSO objective, by the code",
     {"%y: tensor<5xf32>", "%x: tensor<4xf32>", "%D: tensor<4x5xf32>"},
     R"(  %Dy = unroll.matmul %D, %y : tensor<4x5xf32>, tensor<5xf32> -> tensor<4xf32>
  %r = unroll.sub %x, %Dy : tensor<4xf32>, tensor<4xf32> -> tensor<4xf32>
  %sq = unroll.reduce "sqnorm" %r : tensor<4xf32> -> tensor<f32>
  %h = unroll.constant 0.5 : tensor<f32>
  %a = unroll.mul %h, %sq : tensor<f32>, tensor<f32> -> tensor<f32>
  %l1 = unroll.reduce "norm1" %y : tensor<5xf32> -> tensor<f32>
  %al = unroll.constant 0.3 : tensor<f32>
  %b = unroll.mul %al, %l1 : tensor<f32>, tensor<f32> -> tensor<f32>
  %out = unroll.add %a, %b : tensor<f32>, tensor<f32> -> tensor<f32>)"},
    {"inpainting data term, by the image",
     {"%y: tensor<1x4x4xf32>", "%x: tensor<1x4x4xf32>",
      "%M: tensor<1x4x4xf32>"},
     R"(  %My = unroll.mul %M, %y : tensor<1x4x4xf32>, tensor<1x4x4xf32> -> tensor<1x4x4xf32>
  %r = unroll.sub %x, %My : tensor<1x4x4xf32>, tensor<1x4x4xf32> -> tensor<1x4x4xf32>
  %out = unroll.reduce "sqnorm" %r : tensor<1x4x4xf32> -> tensor<f32>)"},
    {"second derivative: the norm of a gradient, differentiated again",
     {"%y: tensor<3xf32>", "%A: tensor<3x3xf32>"},
     R"(  %g = unroll.grad(%y, %A) : (tensor<3xf32>, tensor<3x3xf32>) -> tensor<3xf32> {
  ^bb0(%u: tensor<3xf32>, %B: tensor<3x3xf32>):
    %Bu = unroll.matmul %B, %u : tensor<3x3xf32>, tensor<3xf32> -> tensor<3xf32>
    %t = unroll.unary "tanh" %Bu : tensor<3xf32>
    %s = unroll.reduce "sqnorm" %t : tensor<3xf32> -> tensor<f32>
    unroll.yield %s : tensor<f32>
  }
  %out = unroll.reduce "norm" %g : tensor<3xf32> -> tensor<f32>)"},
    {"conv2d, by the image",
     {"%x: tensor<2x4x5xf32>", "%k: tensor<3x2x3x3xf32>"},
     R"(  %c = unroll.conv2d %x, %k : tensor<2x4x5xf32>, tensor<3x2x3x3xf32> -> tensor<3x4x5xf32>
  %t = unroll.unary "tanh" %c : tensor<3x4x5xf32>
  %out = unroll.reduce "sqnorm" %t : tensor<3x4x5xf32> -> tensor<f32>)"},
    {"conv2d, by the kernel",
     {"%k: tensor<3x2x3x1xf32>", "%x: tensor<2x4x5xf32>"},
     R"(  %c = unroll.conv2d %x, %k : tensor<2x4x5xf32>, tensor<3x2x3x1xf32> -> tensor<3x4x5xf32>
  %t = unroll.unary "tanh" %c : tensor<3x4x5xf32>
  %out = unroll.reduce "sqnorm" %t : tensor<3x4x5xf32> -> tensor<f32>)"},
    {"conv2d_transpose, by the adjoint image",
     {"%g: tensor<3x4x5xf32>", "%k: tensor<3x2x3x3xf32>"},
     R"(  %c = unroll.conv2d_transpose %g, %k : tensor<3x4x5xf32>, tensor<3x2x3x3xf32> -> tensor<2x4x5xf32>
  %t = unroll.unary "tanh" %c : tensor<2x4x5xf32>
  %out = unroll.reduce "sqnorm" %t : tensor<2x4x5xf32> -> tensor<f32>)"},
    {"conv2d_transpose, by the kernel",
     {"%k: tensor<3x2x3x3xf32>", "%g: tensor<3x4x5xf32>"},
     R"(  %c = unroll.conv2d_transpose %g, %k : tensor<3x4x5xf32>, tensor<3x2x3x3xf32> -> tensor<2x4x5xf32>
  %t = unroll.unary "tanh" %c : tensor<2x4x5xf32>
  %out = unroll.reduce "sqnorm" %t : tensor<2x4x5xf32> -> tensor<f32>)"},
    {"conv2d_kernel_adjoint, by the image",
     {"%x: tensor<2x4x5xf32>", "%g: tensor<3x4x5xf32>"},
     R"(  %c = unroll.conv2d_kernel_adjoint %x, %g : tensor<2x4x5xf32>, tensor<3x4x5xf32> -> tensor<3x2x3x3xf32>
  %t = unroll.unary "tanh" %c : tensor<3x2x3x3xf32>
  %out = unroll.reduce "sqnorm" %t : tensor<3x2x3x3xf32> -> tensor<f32>)"},
    {"conv2d_kernel_adjoint, by the adjoint image",
     {"%g: tensor<3x4x5xf32>", "%x: tensor<2x4x5xf32>"},
     R"(  %c = unroll.conv2d_kernel_adjoint %x, %g : tensor<2x4x5xf32>, tensor<3x4x5xf32> -> tensor<3x2x3x3xf32>
  %t = unroll.unary "tanh" %c : tensor<3x2x3x3xf32>
  %out = unroll.reduce "sqnorm" %t : tensor<3x2x3x3xf32> -> tensor<f32>)"},
    {"second derivative through conv2d (a Glow coupling's CNN), by the kernel",
     {"%k: tensor<2x2x3x3xf32>", "%x: tensor<2x4x4xf32>"},
     R"(  %g = unroll.grad(%x, %k) : (tensor<2x4x4xf32>, tensor<2x2x3x3xf32>) -> tensor<2x4x4xf32> {
  ^bb0(%u: tensor<2x4x4xf32>, %w: tensor<2x2x3x3xf32>):
    %c = unroll.conv2d %u, %w : tensor<2x4x4xf32>, tensor<2x2x3x3xf32> -> tensor<2x4x4xf32>
    %t = unroll.unary "tanh" %c : tensor<2x4x4xf32>
    %s = unroll.reduce "sqnorm" %t : tensor<2x4x4xf32> -> tensor<f32>
    unroll.yield %s : tensor<f32>
  }
  %out = unroll.reduce "sqnorm" %g : tensor<2x4x4xf32> -> tensor<f32>)"},
    {"conv1x1 and reshape, by the image",
     {"%x: tensor<3x2x4xf32>", "%w: tensor<2x3xf32>"},
     R"(  %c = unroll.conv1x1 %x, %w : tensor<3x2x4xf32>, tensor<2x3xf32> -> tensor<2x2x4xf32>
  %r = unroll.reshape %c : tensor<2x2x4xf32> -> tensor<4x4xf32>
  %t = unroll.unary "tanh" %r : tensor<4x4xf32>
  %v = unroll.reduce "sum" %t {axis = 0 : i64} : tensor<4x4xf32> -> tensor<4xf32>
  %out = unroll.reduce "sqnorm" %v : tensor<4xf32> -> tensor<f32>)"},
    {"conv1x1, by the weight",
     {"%w: tensor<2x3xf32>", "%x: tensor<3x2x4xf32>"},
     R"(  %c = unroll.conv1x1 %x, %w : tensor<3x2x4xf32>, tensor<2x3xf32> -> tensor<2x2x4xf32>
  %t = unroll.unary "tanh" %c : tensor<2x2x4xf32>
  %out = unroll.reduce "sqnorm" %t : tensor<2x2x4xf32> -> tensor<f32>)"},
    {"inverse (the inverse 1x1 convolution's weight)",
     {"%A: tensor<3x3xf32>", "%B: tensor<3x3xf32>"},
     R"(  %e = unroll.eye : tensor<3x3xf32>
  %c3 = unroll.constant 3.0 : tensor<f32>
  %d = unroll.mul %e, %c3 : tensor<3x3xf32>, tensor<f32> -> tensor<3x3xf32>
  %M = unroll.add %A, %d : tensor<3x3xf32>, tensor<3x3xf32> -> tensor<3x3xf32>
  %i = unroll.inverse %M : tensor<3x3xf32>
  %p = unroll.matmul %i, %B : tensor<3x3xf32>, tensor<3x3xf32> -> tensor<3x3xf32>
  %out = unroll.reduce "sqnorm" %p : tensor<3x3xf32> -> tensor<f32>)"},
    {"lipschitz (a learned dictionary's step size)",
     {"%D: tensor<4x3xf32>"},
     R"(  %l = unroll.lipschitz %D : tensor<4x3xf32> -> tensor<f32>
  %one = unroll.constant 1.0 : tensor<f32>
  %out = unroll.div %one, %l : tensor<f32>, tensor<f32> -> tensor<f32>)"},
    {"graph_filter, by the signal",
     {"%x: tensor<4x2xf32>", "%S: tensor<4x4xf32>", "%h: tensor<3xf32>"},
     R"(  %r = unroll.graph_filter %S, %x, %h : tensor<4x4xf32>, tensor<4x2xf32>, tensor<3xf32> -> tensor<4x2xf32>
  %t = unroll.unary "tanh" %r : tensor<4x2xf32>
  %out = unroll.reduce "sqnorm" %t : tensor<4x2xf32> -> tensor<f32>)"},
    {"graph_filter, by the taps",
     {"%h: tensor<3xf32>", "%S: tensor<4x4xf32>", "%x: tensor<4x2x2xf32>"},
     R"(  %r = unroll.graph_filter %S, %x, %h : tensor<4x4xf32>, tensor<4x2x2xf32>, tensor<3xf32> -> tensor<4x2x2xf32>
  %t = unroll.unary "tanh" %r : tensor<4x2x2xf32>
  %out = unroll.reduce "sqnorm" %t : tensor<4x2x2xf32> -> tensor<f32>)"},
    {"graph_filter, by the shift operator",
     {"%S: tensor<4x4xf32>", "%x: tensor<4xf32>", "%h: tensor<4xf32>"},
     R"(  %r = unroll.graph_filter %S, %x, %h : tensor<4x4xf32>, tensor<4xf32>, tensor<4xf32> -> tensor<4xf32>
  %t = unroll.unary "tanh" %r : tensor<4xf32>
  %out = unroll.reduce "sqnorm" %t : tensor<4xf32> -> tensor<f32>)"},
    {"a stack of matrices by one matrix, by the stack",
     {"%A: tensor<2x3x4xf32>", "%B: tensor<4x2xf32>"},
     R"(  %C = unroll.matmul %A, %B : tensor<2x3x4xf32>, tensor<4x2xf32> -> tensor<2x3x2xf32>
  %t = unroll.unary "tanh" %C : tensor<2x3x2xf32>
  %out = unroll.reduce "sqnorm" %t : tensor<2x3x2xf32> -> tensor<f32>)"},
    {"a stack of matrices by one matrix, by the matrix",
     {"%B: tensor<4x2xf32>", "%A: tensor<2x3x4xf32>"},
     R"(  %C = unroll.matmul %A, %B : tensor<2x3x4xf32>, tensor<4x2xf32> -> tensor<2x3x2xf32>
  %t = unroll.unary "tanh" %C : tensor<2x3x2xf32>
  %out = unroll.reduce "sqnorm" %t : tensor<2x3x2xf32> -> tensor<f32>)"},
    {"a stack of matrices by a vector, by both",
     {"%v: tensor<4xf32>", "%A: tensor<2x3x4xf32>"},
     R"(  %C = unroll.matmul %A, %v : tensor<2x3x4xf32>, tensor<4xf32> -> tensor<2x3xf32>
  %g = unroll.grad(%A, %v) : (tensor<2x3x4xf32>, tensor<4xf32>) -> tensor<2x3x4xf32> {
  ^bb0(%M: tensor<2x3x4xf32>, %u: tensor<4xf32>):
    %P = unroll.matmul %M, %u : tensor<2x3x4xf32>, tensor<4xf32> -> tensor<2x3xf32>
    %q = unroll.unary "tanh" %P : tensor<2x3xf32>
    %s = unroll.reduce "sqnorm" %q : tensor<2x3xf32> -> tensor<f32>
    unroll.yield %s : tensor<f32>
  }
  %t = unroll.unary "tanh" %C : tensor<2x3xf32>
  %a = unroll.reduce "sqnorm" %t : tensor<2x3xf32> -> tensor<f32>
  %b = unroll.reduce "sqnorm" %g : tensor<2x3x4xf32> -> tensor<f32>
  %out = unroll.add %a, %b : tensor<f32>, tensor<f32> -> tensor<f32>)"},
};

} // namespace

TEST_CASE("gradients match central finite differences", "[ad]") {
  for (const Case &c : kCases)
    checkGradient(c);
}
