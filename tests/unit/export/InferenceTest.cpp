// The whole forward pass lowered to one Halide pipeline (the core of
// export), JIT-realised for the host, against the runtime's LibTorch
// forward with the same parameters: every layer's state.
#include "CompilerTestUtil.h"
#include "RuntimeTestUtil.h"

#include "compiler/export/InferenceLowering.h"
#include "compiler/kernels/CudaKernels.h"
#include "compiler/plan/PlanLowering.h"
#include "runtime/Data.h"
#include "runtime/Trainer.h"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <memory>
#include <unistd.h>

using namespace unroll;

namespace {

torch::Tensor toTorch(const Halide::Buffer<float> &b,
                      const std::vector<int64_t> &shape) {
  torch::Tensor t = torch::empty(shape);
  std::memcpy(t.data_ptr<float>(), b.data(), t.numel() * sizeof(float));
  return t;
}

/// A spec lowered for inference with the runtime's initial parameters,
/// and the executor and inputs (a synthetic batch) they came from.
struct Lowered {
  std::unique_ptr<runtime::Executor> ex;
  std::map<std::string, torch::Tensor> inputs;
  compiler::InferencePipeline pipe;
  /// What `pipe` was lowered from, to lower parts of it again.
  abi::Plan plan;
  std::map<std::string, Halide::Buffer<float>> params;
};

/// `spec` lowered with `inputs`; with `randomParams`, every parameter is
/// replaced by a random draw near its initial value (flows start as the
/// identity, which would hide mistakes).
Lowered lower(const std::string &spec,
              const std::map<std::string, torch::Tensor> &inputs,
              bool randomParams = false) {
  mlir::MLIRContext ctx;
  std::ostringstream err;
  auto module = test::compileSpec(spec, ctx, err, /*pipeline=*/false);
  INFO(err.str());
  REQUIRE(module);
  REQUIRE(mlir::succeeded(compiler::runPipeline(*module, false, true)));
  auto plan = compiler::lowerToPlan(*module);
  REQUIRE(mlir::succeeded(plan));
  auto algs = runtime::parsePlan(plan->dump());

  Lowered out;
  out.ex = std::make_unique<runtime::Executor>(algs[0]);
  out.inputs = inputs;
  out.ex->bindInputs(out.inputs);
  out.ex->initParams(4);
  torch::manual_seed(7);
  std::map<std::string, Halide::Buffer<float>> params;
  for (const abi::Param &param : algs[0].params) {
    const int64_t id = param.id;
    if (randomParams) {
      torch::Tensor t = out.ex->params().at(id).detach();
      // Small: larger draws make the flows ill-conditioned (states in the
      // thousands after two layers), and float32 rounding alone then
      // differs by more than the tolerance.
      out.ex->setParam(id, t + 0.05 * torch::randn(t.sizes()));
    }
    params[runtime::PrimalDual::paramKey(param)] =
        test::toHalide(out.ex->params().at(id));
  }
  out.plan = abi::readPlan(*plan);
  out.pipe = compiler::lowerForInference(out.plan, params);
  out.params = params;
  return out;
}

/// A LISTA-like spec with a synthetic sparse-coding batch.
Lowered lower(const std::string &spec, int64_t batch, int64_t p, int64_t d) {
  auto g = runtime::syntheticSparse(batch, p, d, 0.3, 0.01, 2);
  return lower(spec, {{"x", g.x}, {"D", g.D}});
}

/// `spec` with its (first) `from` replaced by `to`; `from` must be there.
std::string replaced(std::string spec, const std::string &from,
                     const std::string &to) {
  size_t at = spec.find(from);
  REQUIRE(at != std::string::npos);
  return spec.replace(at, from.size(), to);
}

/// `spec` (a tinyLista) with its layer step's argument of the soft
/// threshold replaced by `step`.
std::string withStep(const std::string &spec, const std::string &step) {
  return replaced(spec, "Wu @ x + We @ y", step);
}

/// An op of a hand-written plan.
abi::Op planOp(abi::OpCode code, std::vector<int64_t> args, int64_t id,
               abi::Shape shape) {
  abi::Op op;
  op.code = code;
  op.args = std::move(args);
  op.id = id;
  op.shape = std::move(shape);
  return op;
}

/// A parameter or an input of a hand-written plan.
abi::Param planParam(int64_t id, const std::string &name, abi::Shape shape) {
  abi::Param p;
  p.id = id;
  p.name = name;
  p.shape = std::move(shape);
  return p;
}
abi::Input planInput(int64_t id, const std::string &name, abi::Role role,
                     abi::Shape shape) {
  return {id, name, role, std::move(shape)};
}

/// A hand-written plan: one algorithm whose only state, y, starts as the
/// value of `op`, with parameters `params`, inputs `inputs` and no layers
/// (which the plan format does not allow, so it is built typed).
abi::Plan initOnlyPlan(const abi::Op &op, std::vector<abi::Param> params,
                       std::vector<abi::Input> inputs = {}) {
  abi::State state;
  state.id = 0;
  state.name = "y";
  state.shape = op.shape;
  state.init.ops = {op};
  state.init.yield = {op.id};
  abi::Algorithm a;
  a.name = "a";
  a.params = std::move(params);
  a.inputs = std::move(inputs);
  a.states = {state};
  abi::Plan plan;
  plan.algorithms = {a};
  return plan;
}

/// Binds the inputs of `pipe` (lowered from `low`): the runtime's inputs,
/// its random draws, and its states where the pipeline starts after a
/// layer.
void bindInputs(compiler::InferencePipeline &pipe, const Lowered &low,
                const runtime::ForwardResult &fw,
                std::vector<Halide::Buffer<float>> &keep) {
  for (compiler::InferenceInput &in : pipe.inputs) {
    INFO(in.name);
    torch::Tensor t =
        in.state >= 0 ? fw.states[pipe.firstState][in.state].contiguous()
        : in.name == pipe.stateNames[0] + "0" ? fw.states[0][0]
        : in.name == "samples" ? torch::stack(fw.samples, in.batched ? 1 : 0)
                               : low.inputs.at(in.name);
    keep.push_back(test::toHalide(t));
    in.param.set(keep.back());
  }
}

/// Checks the states of `pipe` (from its firstState + `from` on) against
/// the runtime's forward.
void checkStates(compiler::InferencePipeline &pipe,
                 const runtime::ForwardResult &fw, size_t from = 0) {
  const int64_t batch = fw.states[0][0].size(0);
  for (size_t l = from; l < pipe.states.size(); ++l) {
    const size_t layer = pipe.firstState + l;
    INFO("layer " << layer);
    std::vector<int64_t> full{batch};
    full.insert(full.end(), pipe.stateShapes[0].begin(),
                pipe.stateShapes[0].end());
    std::vector<int> extents(full.rbegin(), full.rend());
    Halide::Buffer<float> out = pipe.states[l][0].realize(extents);
    const torch::Tensor &want = fw.states[layer][0];
    INFO("largest difference "
         << (toTorch(out, full) - want).abs().max().item<double>()
         << ", largest value " << want.abs().max().item<double>());
    CHECK(torch::allclose(toTorch(out, full), want, 1e-4, 1e-5));
  }
}

/// Checks every layer's state against the runtime's forward; with
/// `scheduled`, the pipeline gets the schedules export gives it for the
/// host (register-blocked tiles of rows by instances); with `perLayer`,
/// each layer is lowered on its own (as `export --split layers` does),
/// from the runtime's state before it.
void checkForward(Lowered low, bool scheduled = false, bool perLayer = false) {
  runtime::ForwardResult fw = low.ex->forward(9);
  const Halide::Target host = Halide::get_jit_target_from_environment();
  std::vector<Halide::Buffer<float>> keep;
  if (!perLayer) {
    if (scheduled)
      for (auto &schedule : low.pipe.schedules)
        schedule(host);
    bindInputs(low.pipe, low, fw, keep);
    checkStates(low.pipe, fw);
    return;
  }
  for (int64_t l = 0; l <= low.pipe.layers; ++l) {
    compiler::InferencePipeline stage = compiler::lowerForInference(
        low.plan, low.params, {std::max<int64_t>(0, l - 1), l});
    REQUIRE(stage.states.size() == (l == 0 ? 1u : 2u));
    if (scheduled)
      for (auto &schedule : stage.schedules)
        schedule(host);
    bindInputs(stage, low, fw, keep);
    checkStates(stage, fw, stage.states.size() - 1);
  }
}

void checkForward(const std::string &spec, int64_t batch, int64_t p = 6,
                  int64_t d = 10, bool scheduled = false) {
  checkForward(lower(spec, batch, p, d), scheduled);
}

} // namespace

TEST_CASE("LISTA's forward as one Halide pipeline matches LibTorch",
          "[inference]") {
  checkForward(test::tinyLista(6, 10, 3), 5);
}

TEST_CASE("each layer lowered on its own, from the state before it, "
          "matches LibTorch",
          "[inference]") {
  for (int64_t batch : {1, 37}) {
    INFO("batch " << batch);
    checkForward(lower(test::tinyLista(6, 10, 3), batch, 6, 10), true,
                 /*perLayer=*/true);
  }
  // The states' inputs come after the program's, and only the first
  // layer's pipeline computes the initial state.
  Lowered low = lower(test::tinyLista(6, 10, 3), 4, 6, 10);
  compiler::InferencePipeline second =
      compiler::lowerForInference(low.plan, low.params, {1, 2});
  std::vector<std::string> names;
  for (const compiler::InferenceInput &in : second.inputs)
    names.push_back(in.name);
  CHECK(names == std::vector<std::string>{"x", "y_in"});
  CHECK(second.inputs.back().state == 0);
  CHECK(second.firstState == 1);
  CHECK(second.layers == 3);
  CHECK(second.products == 2);
  CHECK(second.layerOps == low.pipe.layerOps); // of all layers
  CHECK(second.layerOps > 0);
}

TEST_CASE("scheduled products match LibTorch below, at and above a block "
          "of instances, with row tiles that do not divide the rows",
          "[inference]") {
  // Below 32 instances the tiles of rows are shared among threads, from
  // 32 the blocks of instances: both specialisations are run.
  for (int64_t batch : {1, 3, 8, 13, 37}) {
    INFO("batch " << batch);
    checkForward(test::tinyLista(6, 10, 2), batch, 6, 10, true);
    checkForward(test::tinyLista(8, 300, 2), batch, 8, 300, true);
    // Matrices that are not constants (the given D, and D'), packed into
    // panels by the pipeline itself.
    std::string ista =
        withStep(test::tinyLista(8, 300, 2), "y - D' @ (D @ y - x) * 0.01");
    checkForward(ista, batch, 8, 300, true);
    // A product read by the output and by another product: one computed
    // on its own, one in the output's tiles (see the next case).
    checkForward(withStep(test::tinyLista(6, 40, 2),
                          "We @ y + D' @ (D @ (We @ y)) * 0.01"),
                 batch, 6, 40, true);
  }
}

TEST_CASE("a product that only a layer's output reads is computed in that "
          "output's tiles",
          "[inference]") {
  // LISTA: both products of a layer feed only its soft-threshold.
  compiler::InferencePipeline lista =
      lower(test::tinyLista(6, 10, 3), 4, 6, 10).pipe;
  CHECK(lista.products == 6);
  CHECK(lista.productsInTiles == 6);
  // D @ y is read by the subtraction inside the step, not by the layer's
  // output: it keeps tiles of its own; D' @ (...) is computed in the
  // output's.
  std::string ista =
      withStep(test::tinyLista(8, 40, 2), "y - D' @ (D @ y - x) * 0.01");
  compiler::InferencePipeline p = lower(ista, 4, 8, 40).pipe;
  CHECK(p.products == 4);
  CHECK(p.productsInTiles == 2);
  // We @ y (one product after CSE) is read by the output and by D @ (...):
  // it is computed once, on its own; D' @ (...) in the output's tiles.
  compiler::InferencePipeline twice =
      lower(withStep(test::tinyLista(6, 10, 2),
                     "We @ y + D' @ (D @ (We @ y)) * 0.01"),
            4, 6, 10)
          .pipe;
  CHECK(twice.products == 6);
  CHECK(twice.productsInTiles == 2);
}

TEST_CASE("the products' GPU schedules, with constant and run-time "
          "matrices, compile to CUDA without a GPU",
          "[inference]") {
  compiler::InferencePipeline pipe =
      lower(withStep(test::tinyLista(8, 40, 2),
                     "Wu @ x + We @ y - D' @ (D @ y - x) * 0.01"),
            4, 8, 40)
          .pipe;
  Halide::Target cuda =
      Halide::get_host_target().with_feature(Halide::Target::CUDA);
  for (auto &schedule : pipe.schedules)
    schedule(cuda);
  // The schedules put the layer outputs on the GPU too.
  Halide::Func final = pipe.states.back()[0];
  std::vector<Halide::Argument> args;
  for (const compiler::InferenceInput &in : pipe.inputs)
    args.push_back(in.param);
  std::string path =
      (std::filesystem::temp_directory_path() /
       ("unroll-inference-cuda-" + std::to_string(getpid()) + ".s"))
          .string();
  REQUIRE_NOTHROW(final.compile_to_assembly(path, args, cuda));
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)),
                   std::istreambuf_iterator<char>());
  std::filesystem::remove(path);
  CHECK(text.find("halide_cuda_run") != std::string::npos);
}

TEST_CASE("a shared matrix times per-instance matrices and stacks is one "
          "scheduled product over all their vectors",
          "[inference]") {
  // The initial state is one product of a trained matrix W and a data
  // input X (per instance), on either side, X a matrix or a stack.
  struct Case {
    std::vector<int64_t> w, x, out;
    bool wLeft;
  };
  const Case cases[] = {{{5, 4}, {4, 6}, {5, 6}, true},
                        {{40, 4}, {3, 4, 6}, {3, 40, 6}, true},
                        {{4, 7}, {3, 4}, {3, 7}, false},
                        {{4, 37}, {2, 3, 4}, {2, 3, 37}, false}};
  for (const Case &c : cases)
    for (int64_t batch : {1, 3, 37}) {
      INFO("W " << c.w[0] << "x" << c.w[1] << ", X of rank " << c.x.size()
                << ", batch " << batch);
      abi::Op op = planOp(abi::OpCode::Matmul,
                          c.wLeft ? std::vector<int64_t>{2, 3}
                                  : std::vector<int64_t>{3, 2},
                          1, c.out);
      abi::Plan plan = initOnlyPlan(op, {planParam(2, "W", c.w)},
                                    {planInput(3, "X", abi::Role::Data, c.x)});
      torch::manual_seed(5);
      torch::Tensor W = torch::randn(c.w);
      std::vector<int64_t> xs{batch};
      xs.insert(xs.end(), c.x.begin(), c.x.end());
      torch::Tensor X = torch::randn(xs);
      compiler::InferencePipeline pipe =
          compiler::lowerForInference(plan, {{"param.W", test::toHalide(W)}});
      CHECK(pipe.products == 1);
      for (auto &schedule : pipe.schedules)
        schedule(Halide::get_jit_target_from_environment());
      Halide::Buffer<float> xb = test::toHalide(X);
      pipe.inputs[0].param.set(xb);
      std::vector<int64_t> full{batch};
      full.insert(full.end(), c.out.begin(), c.out.end());
      std::vector<int> extents(full.rbegin(), full.rend());
      torch::Tensor got = toTorch(pipe.states[0][0].realize(extents), full);
      torch::Tensor want = c.wLeft ? torch::matmul(W, X) : torch::matmul(X, W);
      CHECK(torch::allclose(got, want, 1e-4, 1e-5));
    }
}

TEST_CASE("a random initial state becomes an input of the pipeline",
          "[inference]") {
  checkForward(replaced(test::tinyLista(6, 10, 2), "init  y = zeros()",
                        "init  y ~ normal(0, 1)"),
               4);
}

TEST_CASE("ops without an inference lowering are reported by name",
          "[inference]") {
  abi::Op lse = planOp(abi::OpCode::Logsumexp, {2}, 1, {2});
  lse.axis = 0;
  abi::Plan plan =
      initOnlyPlan(lse, {}, {planInput(2, "x", abi::Role::Data, {2, 3})});
  CHECK_THROWS_WITH(compiler::lowerForInference(plan, {}),
                    Catch::Contains("export does not support the op "
                                    "'logsumexp' yet"));
}

TEST_CASE("export inverts matrices of parameters and numbers only, and not "
          "singular ones",
          "[inference]") {
  // A program whose initial state inverts a trained W.
  abi::Plan plan = initOnlyPlan(planOp(abi::OpCode::Inverse, {2}, 1, {2, 2}),
                                {planParam(2, "W", {2, 2})});
  Halide::Buffer<float> W(2, 2);
  // Halide's buffers are (column, row).
  W(0, 0) = 1, W(1, 0) = 2, W(0, 1) = 3, W(1, 1) = 6;
  CHECK_THROWS_WITH(
      compiler::lowerForInference(plan, {{"param.W", W}}),
      "export: a trained matrix that the layers invert is singular");
  W(1, 1) = 7; // [[1, 2], [3, 7]]^-1 = [[7, -2], [-3, 1]]
  compiler::InferencePipeline pipe =
      compiler::lowerForInference(plan, {{"param.W", W}});
  Halide::Buffer<float> inv = pipe.states[0][0].realize({2, 2, 1});
  CHECK(inv(0, 0, 0) == Approx(7));
  CHECK(inv(1, 0, 0) == Approx(-2));
  CHECK(inv(0, 1, 0) == Approx(-3));
  CHECK(inv(1, 1, 0) == Approx(1));
  CHECK_THROWS_WITH(
      lower(withStep(test::tinyLista(6, 10, 2), "Wu @ x + inv(D' @ D) @ y"), 4,
            6, 10),
      "export inverts square matrices of trained parameters and numbers "
      "only, not of the inputs");
  // A matrix computed from parameters and numbers is a constant too (the
  // ADMM step's I + rho G'G).
  CHECK_NOTHROW(lower(withStep(test::tinyLista(6, 10, 2),
                               "Wu @ x + inv(eye(10) + 2 * (We' @ We)) @ y"),
                      4, 6, 10));
}

TEST_CASE("export convolves with shared kernels only", "[inference]") {
  // A program whose initial state convolves a per-instance image with a
  // per-instance kernel (both data inputs).
  abi::Plan plan =
      initOnlyPlan(planOp(abi::OpCode::Conv2d, {3, 2}, 1, {1, 4, 4}), {},
                   {planInput(2, "k", abi::Role::Data, {1, 1, 3, 3}),
                    planInput(3, "x", abi::Role::Data, {1, 4, 4})});
  CHECK_THROWS_WITH(compiler::lowerForInference(plan, {}),
                    "export supports conv2d of an image with a shared kernel "
                    "only");
  // The same with the kernel shared (given) lowers.
  plan.algorithms[0].inputs[0].role = abi::Role::Given;
  CHECK_NOTHROW(compiler::lowerForInference(plan, {}));
}

TEST_CASE("GLOW-Prox's forward (squeezes, slices, concatenations, 1x1 and "
          "3x3 convolutions, an inverted matrix) matches LibTorch",
          "[inference]") {
  // Two levels of two flow steps on 2-channel 8x6 images, random
  // parameters so that no flow is the identity.
  std::string spec =
      test::readFile(test::sourcePath("examples/glow_prox.unroll"));
  spec = replaced(spec, "c = 1, h = 28, w = 28", "c = 2, h = 8, w = 6");
  spec = replaced(spec, "levels = 2, depth = 4, hidden = 32",
                  "levels = 2, depth = 2, hidden = 3");
  spec = replaced(spec, "layers = 5", "layers = 2");
  torch::manual_seed(3);
  const int64_t batch = GENERATE(1, 5);
  INFO("batch " << batch);
  torch::Tensor M = (torch::rand({2, 8, 6}) > 0.3).to(torch::kFloat32);
  std::map<std::string, torch::Tensor> inputs{
      {"x", torch::randn({batch, 2, 8, 6})},
      {"ytrue", torch::randn({batch, 2, 8, 6})},
      {"M", M}};
  // Scheduled: inlined, every convolution would recompute the ones
  // before it.
  Lowered low = lower(spec, inputs, /*randomParams=*/true);
  // Per flow step (2 layers, forward and inverse flows, 2 levels of 2
  // steps: 16), a 1x1 and two 3x3 convolutions. Stored with their sums:
  // the ReLU after each first 3x3 (16), and in the inverse flows the
  // actnorm after each 1x1 (8).
  CHECK(low.pipe.reductions == 48);
  CHECK(low.pipe.reductionsFused == 24);
  checkForward(std::move(low), true);
  // And a layer at a time, as export compiles a program this big.
  if (batch > 1) {
    torch::manual_seed(3);
    checkForward(lower(spec, inputs, /*randomParams=*/true), true,
                 /*perLayer=*/true);
  }
}

TEST_CASE("SURF's forward (minibatches, softmax, graph filters, stacked "
          "matrix products) matches LibTorch",
          "[inference]") {
  std::string spec = test::readFile(test::sourcePath("examples/surf.unroll"));
  spec =
      replaced(spec, "agents = 100, features = 64, classes = 10, samples = 50",
               "agents = 6, features = 4, classes = 3, samples = 5");
  spec = replaced(spec, "layers = 10", "layers = 2");
  spec = replaced(spec, "minibatch(10, X, Y)", "minibatch(3, X, Y)");
  spec =
      replaced(spec, "mlp(2 * (features + 1), 64", "mlp(2 * (features + 1), 5");
  torch::manual_seed(4);
  const int64_t batch = GENERATE(1, 3);
  INFO("batch " << batch);
  std::map<std::string, torch::Tensor> inputs{
      {"X", torch::randn({batch, 6, 5, 4})},
      {"Y",
       torch::one_hot(torch::randint(3, {batch, 6, 5}), 3).to(torch::kFloat32)},
      {"S", torch::rand({6, 6}) / 3}};
  Lowered low = lower(spec, inputs);
  // The initial state and one block of draws per layer come from the
  // caller.
  std::vector<std::string> names;
  for (const compiler::InferenceInput &in : low.pipe.inputs)
    names.push_back(in.name);
  CHECK(names == std::vector<std::string>{"X", "Y", "S", "w0", "samples"});
  CHECK(low.pipe.inputs.back().shape == std::vector<int64_t>{2, 6, 3});
  // Per layer, the graph filter's three powers of S and the MLP's two
  // products with its weights are scheduled products; the per-agent
  // products are not.
  CHECK(low.pipe.products == 10);
  checkForward(std::move(low), true);
  // A layer at a time: the second layer's pipeline reads the second
  // block of draws.
  checkForward(lower(spec, inputs), true, /*perLayer=*/true);
}

TEST_CASE("stop_gradient lowers as its operand", "[inference]") {
  checkForward(
      withStep(test::tinyLista(6, 10, 3), "Wu @ x + We @ stop_gradient(y)"), 4);
}
