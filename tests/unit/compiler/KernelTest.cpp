// Halide kernels generated from fused regions, JIT-compiled for the host,
// against LibTorch eager execution of the same regions (the runtime's
// Executor): forward values and, through Halide's automatic
// differentiation, the adjoints of every operand.
#include "CompilerTestUtil.h"
#include "RuntimeTestUtil.h"

#include "compiler/export/KernelLibrary.h"
#include "compiler/kernels/HalideKernels.h"
#include "compiler/kernels/KernelJIT.h"
#include "compiler/plan/PlanLowering.h"
#include "runtime/Data.h"
#include "runtime/Executor.h"
#include "runtime/KernelLibrary.h"
#include "runtime/Random.h"
#include "runtime/Run.h"
#include "runtime/Trainer.h"

#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>

using namespace unroll;
using nlohmann::json;

namespace {

/// A Halide view of a LibTorch tensor (no copy); dims reversed, since
/// Halide's dimension 0 is the innermost.
Halide::Buffer<float> view(const torch::Tensor &t) {
  std::vector<halide_dimension_t> dims;
  for (int64_t d = t.dim() - 1; d >= 0; --d)
    dims.push_back({0, static_cast<int32_t>(t.size(d)),
                    static_cast<int32_t>(t.stride(d))});
  return Halide::Buffer<float>(t.data_ptr<float>(),
                               static_cast<int>(dims.size()), dims.data());
}

/// A fresh directory for one test's files.
std::filesystem::path scratchDir() {
  static int n = 0;
  auto d = std::filesystem::temp_directory_path() /
           ("unroll-kernel-test-" + std::to_string(::getpid()) + "-" +
            std::to_string(++n));
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d;
}

/// A program's kernels as the runtime gets them: JIT-compiled in this
/// process (`unrollc train`), or compiled ahead of time into a kernel
/// library and loaded from it (`unrollc compile`, then `unroll-run`).
struct ProgramKernels {
  ProgramKernels(const json &plan, bool library) {
    if (!library) {
      jit = std::make_unique<compiler::JitKernels>(abi::readPlan(plan));
      abi = jit->abi();
      return;
    }
    std::string path = (scratchDir() / "kernels.so").string();
    std::ostringstream log;
    compiler::buildKernelLibrary(plan.dump(), path, {}, log);
    lib = runtime::KernelLibrary::open(path, plan.dump());
    abi = lib->kernels();
  }
  std::unique_ptr<compiler::JitKernels> jit;
  std::unique_ptr<runtime::KernelLibrary> lib;
  const unroll_kernels *abi = nullptr;
};

/// The operand expanded to the kernel's full rank: stride 0 where it is
/// broadcast (over the batch, or leading axes of lower rank).
torch::Tensor expandTo(const torch::Tensor &t, bool batched,
                       const std::vector<int64_t> &full) {
  torch::Tensor x = t;
  if (!batched)
    x = x.unsqueeze(0);
  while (x.dim() < static_cast<int64_t>(full.size()))
    x = x.unsqueeze(1); // missing per-instance axes are leading ones
  return x.expand(full);
}

/// An adjoint `g` over the kernel's full shape summed back to the shape of
/// operand `t`: over the axes it was broadcast along (see expandTo).
torch::Tensor reduceTo(const torch::Tensor &g, const torch::Tensor &t,
                       bool batched) {
  std::vector<int64_t> s(t.sizes().begin(), t.sizes().end());
  if (!batched)
    s.insert(s.begin(), 1);
  while (s.size() < static_cast<size_t>(g.dim()))
    s.insert(s.begin() + 1, 1);
  return g.sum_to_size(s).reshape(t.sizes());
}

/// Every kernel of `spec`: the Halide kernel and the eager execution of
/// the same fused op agree in value and gradient.
void checkKernels(const std::string &spec, int64_t batch,
                  bool library = false) {
  json plan = test::fusedPlanFor(spec);
  auto algs = runtime::parsePlan(plan.dump());
  std::vector<compiler::FusedKernel> kernels =
      compiler::buildKernels(abi::readPlan(plan));
  REQUIRE(!kernels.empty());
  // Each kernel's first fused op: in the first layer, the loss or a
  // constraint.
  const abi::Algorithm &alg = algs[0];
  std::vector<const abi::Body *> bodies{&alg.layers[0].body};
  if (alg.loss)
    bodies.push_back(&*alg.loss);
  for (const abi::Constraint &c : alg.constraints)
    bodies.push_back(&c.body);
  std::vector<const abi::Op *> fusedOps;
  for (auto &kern : kernels) {
    const abi::Op *found = nullptr;
    for (const abi::Body *b : bodies)
      for (const abi::Op &op : b->ops)
        if (!found && op.code == abi::OpCode::Fused && op.kernel == kern.id)
          found = &op;
    if (found)
      fusedOps.push_back(found);
  }
  REQUIRE(fusedOps.size() == kernels.size());

  // The same kernels through the runtime's C interface, as training calls
  // them: every adjoint in one call, and one operand's alone.
  ProgramKernels provider(plan, library);
  const unroll_kernels &abi = *provider.abi;

  torch::manual_seed(5);
  for (size_t k = 0; k < kernels.size(); ++k) {
    INFO("kernel " << k);
    compiler::FusedKernel &kern = kernels[k];
    // Operands and adjoints span the domain (for a chain that ends in a
    // reduction, the reduced value's shape); the value is the result's.
    std::vector<int64_t> full{batch}, resultFull{batch};
    full.insert(full.end(), kern.domainShape.begin(), kern.domainShape.end());
    resultFull.insert(resultFull.end(), kern.resultShape.begin(),
                      kern.resultShape.end());
    CHECK(kern.reduces ==
          (kern.domainShape != kern.resultShape ||
           fusedOps[k]->body->ops.back().code == abi::OpCode::Reduce));

    // Eager: operand 0 per instance, the others shared, so that kernels
    // see broadcasting along the batch (and along axes, for lower ranks).
    std::vector<torch::Tensor> eagerIn;
    std::vector<runtime::RValue> args;
    for (size_t i = 0; i < kern.inputShapes.size(); ++i) {
      bool batched = i == 0;
      std::vector<int64_t> s = kern.inputShapes[i];
      if (batched)
        s.insert(s.begin(), batch);
      // Positive values keep log and sqrt defined.
      torch::Tensor t = (torch::rand(s) + 0.5).requires_grad_(true);
      eagerIn.push_back(t);
      args.push_back({t, batched});
    }
    runtime::Executor ex(algs[0]);
    torch::Tensor eager = ex.body(*fusedOps[k]->body, args)[0].t;
    eager = eager.expand(resultFull);

    std::vector<torch::Tensor> expanded;
    for (size_t i = 0; i < eagerIn.size(); ++i) {
      expanded.push_back(expandTo(eagerIn[i].detach(), args[i].batched, full));
      kern.inputs[i].set(view(expanded.back()));
    }
    torch::Tensor out = torch::empty(resultFull);
    Halide::Buffer<float> outBuf = view(out);
    kern.forward.realize(outBuf);
    CHECK(torch::allclose(out, eager.detach(), 1e-5, 1e-6));

    torch::Tensor dout = torch::randn(resultFull);
    eager.backward(dout);
    kern.gradOutput.set(view(dout));
    for (size_t i = 0; i < eagerIn.size(); ++i) {
      INFO("operand " << i);
      torch::Tensor g = torch::empty(full);
      Halide::Buffer<float> gBuf = view(g);
      kern.gradInputs[i].realize(gBuf);
      // Adjoints come over the result's domain; broadcast operands sum
      // them over the broadcast axes.
      torch::Tensor reduced = reduceTo(g, eagerIn[i], args[i].batched);
      REQUIRE(eagerIn[i].grad().defined());
      CHECK(torch::allclose(reduced, eagerIn[i].grad(), 1e-4, 1e-5));
    }

    std::vector<unroll_tensor> in;
    for (const torch::Tensor &t : expanded)
      in.push_back(runtime::kernelView(t));
    unroll_tensor d = runtime::kernelView(dout);
    std::vector<torch::Tensor> all;
    std::vector<unroll_tensor> outs;
    for (size_t i = 0; i < expanded.size(); ++i) {
      all.push_back(torch::full(full, std::nanf("")));
      outs.push_back(runtime::kernelView(all.back()));
    }
    char err[512] = {0};
    REQUIRE(abi.run(abi.ctx, kern.id, UNROLL_KERNEL_ALL_ADJOINTS, in.data(),
                    static_cast<int32_t>(in.size()), &d, outs.data(), err,
                    sizeof err) == 0);
    for (size_t i = 0; i < expanded.size(); ++i) {
      INFO("operand " << i << ", all adjoints in one call");
      torch::Tensor reduced = reduceTo(all[i], eagerIn[i], args[i].batched);
      CHECK(torch::allclose(reduced, eagerIn[i].grad(), 1e-4, 1e-5));
      torch::Tensor one = torch::full(full, std::nanf(""));
      unroll_tensor o = runtime::kernelView(one);
      REQUIRE(abi.run(abi.ctx, kern.id, static_cast<int32_t>(i), in.data(),
                      static_cast<int32_t>(in.size()), &d, &o, err,
                      sizeof err) == 0);
      CHECK(torch::equal(one, all[i]));
    }
  }
}

} // namespace

TEST_CASE("kernels of LISTA's fused soft-threshold match eager LibTorch",
          "[kernels]") {
  checkKernels(test::tinyLista(6, 10, 2), 7);
}

TEST_CASE("kernels with rank and scalar broadcasting match eager LibTorch",
          "[kernels]") {
  checkKernels(R"(
problem toy(m: int, n: int) {
  data x : mat[m, n]
  var  y : mat[m, n]
  minimize 0.5 * sqnorm(y - x)
}
unrolled net(layers = 2) solves toy(m = 3, n = 5) {
  init  y = zeros()
  param w : vec[n] shared = ones()
  step { y = tanh(y * w + x) - 0.5 * sigmoid(y) + sqrt(exp(y * y)) }
}
)",
               4);
}

TEST_CASE("kernels of losses and constraints, chains that end in a "
          "reduction, match eager LibTorch",
          "[kernels]") {
  // mean, sum, 1-norm, squared and plain 2-norm over all axes; the
  // innermost extent 16 is a multiple of the vector width (partial sums
  // per lane), 5 is not.
  for (const char *size : {"p = 6, d = 16", "p = 4, d = 5"}) {
    INFO(size);
    checkKernels(R"(
import losses
import prox
problem sc(p: int, d: int) {
  data  x : vec[p]
  given D : mat[p, d]
  var   y : vec[d]
  minimize 0.5 * sqnorm(x - D @ y) + 0.1 * norm1(y)
}
unrolled net(layers = 2) solves sc()" +
                     std::string(size) + R"() {
  init  y = zeros()
  param W : mat[d, p] per layer = normal(0, 0.1)
  step { y = tanh(W @ x + y) }
}
train net {
  target ystar = solve(sc, fista, tol = 1e-6)
  loss   mse(y[L], ystar) + mae(y[L], ystar)
  descend distance(y, ystar) by 0.05
  descend objective(g, y) by 0.05 where g(v) = sum(exp(0.1 * v)) + norm1(v) + 0.5 * sqnorm(v)
}
)",
                 5);
  }
}

TEST_CASE("a descent constraint over every layer is one kernel node with "
          "eager's values and gradients",
          "[kernels]") {
  json plan = test::fusedPlanFor(test::tinyLista(6, 16, 3, R"(
train lista {
  target  ystar = solve(sparse_coding, fista, tol = 1e-6)
  loss    mse(y[L], ystar)
  descend distance(y, ystar) by 0.05
  descend objective(f, y) by 0.05
}
)"));
  compiler::JitKernels jit(abi::readPlan(plan));
  auto algs = runtime::parsePlan(plan.dump());
  const std::vector<abi::Constraint> &cons = algs[0].constraints;
  REQUIRE(cons.size() == 2);
  // distance(y, ystar) is one fused op ending in a norm; the objective
  // multiplies by D, so its body is more than one kernel.
  REQUIRE(cons[0].body.ops.size() == 1);
  const int64_t distanceKernel = cons[0].body.ops[0].kernel;
  CHECK(cons[1].body.ops.size() > 1);
  auto g = runtime::syntheticSparse(7, 6, 16, 0.3, 0.01, 4);
  struct Counting {
    const unroll_kernels *inner;
    int64_t kernel;
    int forward = 0, backward = 0;
  } counting{jit.abi(), distanceKernel};
  unroll_kernels counted{
      [](void *ctx, int64_t kernel, int32_t operand, const unroll_tensor *in,
         int32_t n, const unroll_tensor *d, const unroll_tensor *out, char *err,
         int32_t size) {
        auto *c = static_cast<Counting *>(ctx);
        if (kernel == c->kernel)
          ++(operand == UNROLL_KERNEL_VALUE ? c->forward : c->backward);
        return c->inner->run(c->inner->ctx, kernel, operand, in, n, d, out, err,
                             size);
      },
      &counting};
  torch::Tensor ystar;
  std::vector<torch::Tensor> values[2], grads[2];
  for (int compiled = 0; compiled < 2; ++compiled) {
    runtime::Executor ex(algs[0]);
    if (compiled)
      ex.setKernels(&counted);
    ex.bindInputs({{"x", g.x}, {"D", g.D}});
    ex.initParams(2);
    if (!ystar.defined())
      ystar = runtime::solveTargets(ex, 5000, 1e-8);
    ex.bind(algs[0].targets[0].id, {ystar, true});
    runtime::ForwardResult fw = ex.forward(3, /*noise=*/true);
    torch::Tensor weighted = torch::zeros({});
    for (size_t c = 0; c < cons.size(); ++c) {
      runtime::ConstraintValues cv = runtime::constraintValues(ex, fw, c);
      CHECK(cv.firstLayer == 1);
      REQUIRE(cv.values.sizes() == torch::IntArrayRef({3, 7}));
      values[compiled].push_back(cv.values.detach());
      torch::Generator gen = at::make_generator<at::CPUGeneratorImpl>(c + 9);
      weighted = weighted + (cv.values * torch::rand({3, 7}, gen)).sum();
    }
    // Every layer's state (the start too) in a call of its own: no
    // stacked copy of the states (that would be one call).
    if (compiled)
      CHECK(counting.forward == 4);
    weighted.backward();
    for (auto &[id, p] : ex.params())
      grads[compiled].push_back(p.grad().clone());
  }
  // Backward: layers 1..3 only; the start (zeros) needs no gradient.
  CHECK(counting.backward == 3);
  for (size_t c = 0; c < 2; ++c) {
    INFO("constraint " << c);
    CHECK(torch::allclose(values[0][c], values[1][c], 1e-4, 1e-5));
  }
  REQUIRE(grads[0].size() == grads[1].size());
  for (size_t i = 0; i < grads[0].size(); ++i) {
    INFO("parameter " << i);
    CHECK(torch::allclose(grads[0][i], grads[1][i], 1e-4, 1e-6));
  }
}

TEST_CASE("--emit=kernels shares one kernel among identical layers",
          "[kernels]") {
  std::ostringstream os;
  compiler::printKernels(
      abi::readPlan(test::fusedPlanFor(test::tinyLista(6, 10, 3))), os);
  INFO(os.str());
  CHECK(os.str().find("// 1 kernel(s)") == 0);
  CHECK(os.str().find("used by: layer 1, layer 2, layer 3") !=
        std::string::npos);
}

TEST_CASE("compiled and eager backends give the same loss and gradients",
          "[kernels]") {
  json plan = test::fusedPlanFor(test::tinyLista(6, 10, 3, R"(
train lista {
  target  ystar = solve(sparse_coding, fista, tol = 1e-6)
  loss    mse(y[L], ystar)
}
)"));
  compiler::JitKernels jit(abi::readPlan(plan));
  REQUIRE(jit.size() == 2); // the layers' soft-threshold and the loss
  auto algs = runtime::parsePlan(plan.dump());
  auto g = runtime::syntheticSparse(9, 6, 10, 0.3, 0.01, 4);
  std::map<std::string, torch::Tensor> inputs{{"x", g.x}, {"D", g.D}};
  torch::Tensor ystar;
  std::vector<torch::Tensor> losses, grads[2];
  // Counts the kernel calls, so the test knows the compiled path ran.
  struct Counting {
    const unroll_kernels *inner;
    int forward = 0, backward = 0;
  } counting{jit.abi()};
  unroll_kernels counted{
      [](void *ctx, int64_t kernel, int32_t operand, const unroll_tensor *in,
         int32_t n, const unroll_tensor *d, const unroll_tensor *out, char *err,
         int32_t size) {
        auto *c = static_cast<Counting *>(ctx);
        ++(operand == UNROLL_KERNEL_VALUE ? c->forward : c->backward);
        return c->inner->run(c->inner->ctx, kernel, operand, in, n, d, out, err,
                             size);
      },
      &counting};
  for (int compiled = 0; compiled < 2; ++compiled) {
    runtime::Executor ex(algs[0]);
    if (compiled)
      ex.setKernels(&counted);
    ex.bindInputs(inputs);
    ex.initParams(1);
    if (!ystar.defined())
      ystar = runtime::solveTargets(ex, 5000, 1e-8);
    ex.bind(algs[0].targets[0].id, {ystar, true});
    // Twice: the second backward accumulates into existing gradients (the
    // compiled path then adds its weight gradients to them in place).
    std::vector<torch::Tensor> first;
    for (int pass = 0; pass < 2; ++pass) {
      runtime::ForwardResult fw = ex.forward(3);
      torch::Tensor loss =
          ex.body(*algs[0].loss, {{fw.states.back()[0], true}})[0].t.mean();
      loss.backward();
      if (pass == 0) {
        losses.push_back(loss.detach());
        for (auto &[id, p] : ex.params())
          first.push_back(p.grad().clone());
      }
    }
    size_t i = 0;
    for (auto &[id, p] : ex.params()) {
      INFO("parameter " << i);
      CHECK(torch::allclose(p.grad(), 2 * first[i++], 1e-5, 1e-7));
      grads[compiled].push_back(p.grad().clone());
    }
  }
  // One fused op per layer and pass, and the loss's.
  CHECK(counting.forward == 8);
  CHECK(counting.backward > 0);
  CHECK(torch::allclose(losses[0], losses[1], 1e-5, 1e-7));
  REQUIRE(grads[0].size() == grads[1].size());
  for (size_t i = 0; i < grads[0].size(); ++i) {
    INFO("parameter " << i);
    CHECK(torch::allclose(grads[0][i], grads[1][i], 1e-4, 1e-6));
  }
}

TEST_CASE("the compiled Adam step matches LibTorch's", "[kernels]") {
  json plan = test::fusedPlanFor(test::tinyLista(6, 10, 3));
  const bool library = GENERATE(false, true);
  INFO((library ? "kernel library" : "JIT"));
  ProgramKernels kernels(plan, library);
  REQUIRE(kernels.abi->adam);
  auto algs = runtime::parsePlan(plan.dump());
  auto g = runtime::syntheticSparse(5, 6, 10, 0.3, 0.01, 4);
  runtime::PrimalSettings s;
  s.lr = 0.01;
  s.kind = GENERATE(runtime::PrimalSettings::Kind::Adam,
                    runtime::PrimalSettings::Kind::AdamW);
  s.weightDecay = GENERATE(0.0, 0.05);
  INFO(s.name() << ", weight decay " << s.weightDecay);
  runtime::Executor eager(algs[0]), compiled(algs[0]);
  compiled.setKernels(kernels.abi);
  std::unique_ptr<runtime::PrimalOptimizer> adam[2];
  runtime::Executor *ex[2] = {&eager, &compiled};
  for (int i = 0; i < 2; ++i) {
    ex[i]->bindInputs({{"x", g.x}, {"D", g.D}});
    ex[i]->initParams(1);
    adam[i] = runtime::PrimalOptimizer::make(*ex[i], s);
  }
  // The compiled one holds every parameter in one buffer.
  torch::Tensor all = adam[1]->allParams();
  REQUIRE(all.defined());
  CHECK(!adam[0]->allParams().defined());
  int64_t numel = 0;
  for (auto &[id, p] : compiled.params()) {
    const float *at = p.data_ptr<float>();
    CHECK(at >= all.data_ptr<float>());
    CHECK(at + p.numel() <= all.data_ptr<float>() + all.numel());
    numel += p.numel();
  }
  CHECK(numel == all.numel());
  for (int step = 1; step <= 5; ++step) {
    for (int i = 0; i < 2; ++i) {
      adam[i]->zeroGrad();
      // The same gradients for both, by autograd (which accumulates into
      // the compiled one's flat buffer): a loss weighing every parameter.
      torch::Tensor loss = torch::zeros({});
      int64_t k = 0;
      for (auto &[id, p] : ex[i]->params()) {
        torch::Generator gen = at::make_generator<at::CPUGeneratorImpl>(
            static_cast<uint64_t>(100 * step + k++));
        loss = loss + (p * torch::randn(p.sizes(), gen)).sum() +
               (p * p).sum() * step;
      }
      loss.backward();
      adam[i]->step();
    }
    for (auto &[id, p] : eager.params()) {
      INFO("step " << step << ", parameter " << id);
      const torch::Tensor &q = compiled.params().at(id);
      CHECK(torch::allclose(p, q, 1e-5, 1e-7));
      auto m = adam[0]->state(id), n = adam[1]->state(id);
      REQUIRE(m.size() == 3);
      REQUIRE(n.size() == 3);
      CHECK(m.at("step").item<int64_t>() == step);
      CHECK(n.at("step").item<int64_t>() == step);
      CHECK(torch::allclose(m.at("exp_avg"), n.at("exp_avg"), 1e-5, 1e-8));
      CHECK(
          torch::allclose(m.at("exp_avg_sq"), n.at("exp_avg_sq"), 1e-5, 1e-10));
    }
  }
  // And the update did move them.
  runtime::Executor fresh(algs[0]);
  fresh.bindInputs({{"x", g.x}, {"D", g.D}});
  fresh.initParams(1);
  for (auto &[id, p] : fresh.params())
    CHECK(!torch::allclose(p, compiled.params().at(id), 1e-3, 1e-5));
}

TEST_CASE("the compiled noise draws what LibTorch's generator draws",
          "[kernels]") {
  json plan = test::fusedPlanFor(test::tinyLista(6, 10, 3));
  const bool library = GENERATE(false, true);
  INFO((library ? "kernel library" : "JIT"));
  ProgramKernels kernels(plan, library);
  const unroll_kernels &k = *kernels.abi;
  REQUIRE(k.noise);
  auto wordsOf = [](const torch::Tensor &t) {
    unroll_tensor w{};
    w.data = reinterpret_cast<float *>(t.data_ptr<int32_t>());
    w.rank = 1;
    w.sizes[0] = t.numel();
    w.strides[0] = 1;
    return w;
  };
  char err[256] = {0};
  // One group of 16, lengths with a last partial group (whose elements
  // torch::randn draws again from 16 more words), and many groups.
  for (int64_t n : {16, 17, 31, 48, 100, 12800, 12807})
    for (bool normal : {true, false}) {
      INFO(n << (normal ? " normal" : " uniform") << " draws");
      at::Generator a = at::make_generator<at::CPUGeneratorImpl>(9);
      at::Generator b = at::make_generator<at::CPUGeneratorImpl>(9);
      // Part-way into the generator, as after a step's earlier draws.
      torch::randn({100}, a);
      torch::randn({100}, b);
      const int64_t count = unroll_noise_words(normal, n);
      torch::Tensor words = torch::empty({count}, torch::kInt32);
      runtime::generatorWords(
          a, reinterpret_cast<uint32_t *>(words.data_ptr<int32_t>()), count);
      torch::Tensor out = torch::empty({n});
      unroll_tensor w = wordsOf(words), o = runtime::kernelView(out);
      unroll_noise_draw h{normal ? 1 : 0, 0.5f, 2.0f};
      REQUIRE(k.noise(k.ctx, &w, &o, &h, err, sizeof err) == 0);
      torch::Tensor want =
          0.5 + 2 * (normal ? torch::randn({n}, b) : torch::rand({n}, b));
      if (normal) // Halide's fast log, sin and cos against LibTorch's
        CHECK((out - want).abs().max().item<double>() < 1e-5);
      else
        CHECK(torch::equal(out, want));
      CHECK(torch::equal(torch::rand({5}, a), torch::rand({5}, b)));
    }
  // A normal draw below 16 elements (LibTorch draws those one by one) or
  // too few words: an error, not a crash.
  torch::Tensor words = torch::zeros({40}, torch::kInt32);
  torch::Tensor out = torch::empty({8});
  unroll_tensor w = wordsOf(words), o = runtime::kernelView(out);
  unroll_noise_draw h{1, 0.0f, 1.0f};
  CHECK(k.noise(k.ctx, &w, &o, &h, err, sizeof err) != 0);
  CHECK_THAT(err, Catch::Contains("the noise kernel takes"));
  out = torch::empty({30});
  o = runtime::kernelView(out);
  CHECK(k.noise(k.ctx, &w, &o, &h, err, sizeof err) != 0);
  CHECK_THAT(err, Catch::Contains("as many words as the draw takes"));
}

TEST_CASE("a kernel over several per-instance axes, every operand per "
          "instance and dense, gives eager's values and gradients",
          "[kernels]") {
  // The operands' views are dense over 3 x 10 per instance (a product, the
  // data and the state), none broadcast.
  json plan = test::fusedPlanFor(R"(
problem toy(m: int, n: int) {
  data x : mat[m, n]
  var  y : mat[m, n]
  minimize 0.5 * sqnorm(y - x)
}
unrolled net(layers = 2) solves toy(m = 3, n = 10) {
  init  y = x
  param A : mat[m, m] per layer = normal(0, 0.3)
  step { y = tanh(A @ y) * x - sigmoid(y) }
}
)");
  // No shared or lower-rank operand (which would be broadcast, stride 0).
  std::vector<compiler::FusedKernel> kernels =
      compiler::buildKernels(abi::readPlan(plan));
  REQUIRE(kernels.size() == 1);
  for (const auto &shape : kernels[0].inputShapes)
    CHECK(shape == std::vector<int64_t>{3, 10});
  compiler::JitKernels jit(abi::readPlan(plan));
  auto algs = runtime::parsePlan(plan.dump());
  torch::manual_seed(3);
  torch::Tensor x = torch::randn({5, 3, 10});
  torch::Tensor finals[2];
  std::vector<torch::Tensor> grads[2];
  for (int compiled = 0; compiled < 2; ++compiled) {
    runtime::Executor ex(algs[0]);
    if (compiled)
      ex.setKernels(jit.abi());
    ex.bindInputs({{"x", x}});
    ex.initParams(1);
    runtime::ForwardResult fw = ex.forward(0);
    finals[compiled] = fw.states.back()[0].detach();
    (fw.states.back()[0] * torch::cos(x)).sum().backward();
    for (auto &[id, p] : ex.params())
      grads[compiled].push_back(p.grad().clone());
  }
  CHECK(torch::allclose(finals[0], finals[1], 1e-5, 1e-6));
  REQUIRE(grads[0].size() == 2);
  for (size_t i = 0; i < grads[0].size(); ++i) {
    INFO("parameter " << i);
    CHECK(torch::allclose(grads[0][i], grads[1][i], 1e-4, 1e-6));
  }
}

TEST_CASE("kernel libraries (unrollc compile) match eager LibTorch",
          "[kernels][library]") {
  // The kernels above, compiled ahead of time and loaded as the runtime
  // loads them: layers, broadcasting, losses and constraints.
  checkKernels(test::tinyLista(6, 10, 2), 7, /*library=*/true);
  checkKernels(R"(
import losses
import prox
problem sc(p: int, d: int) {
  data  x : vec[p]
  given D : mat[p, d]
  var   y : vec[d]
  minimize 0.5 * sqnorm(x - D @ y) + 0.1 * norm1(y)
}
unrolled net(layers = 2) solves sc(p = 6, d = 16) {
  init  y = zeros()
  param W : mat[d, p] per layer = normal(0, 0.1)
  param w : vec[d] shared = ones()
  step { y = tanh(W @ x + y * w) - 0.5 * sigmoid(y) }
}
train net {
  target ystar = solve(sc, fista, tol = 1e-6)
  loss   mse(y[L], ystar) + mae(y[L], ystar)
  descend distance(y, ystar) by 0.05
}
)",
               5, /*library=*/true);
}

TEST_CASE("a kernel library is refused for another program, another "
          "interface or a damaged file",
          "[kernels][library]") {
  json plan = test::fusedPlanFor(test::tinyLista(6, 10, 2));
  json other = test::fusedPlanFor(test::tinyLista(6, 12, 2));
  auto dir = scratchDir();
  std::string path = (dir / "kernels.so").string();
  std::ostringstream log;
  compiler::KernelLibrarySummary s =
      compiler::buildKernelLibrary(plan.dump(), path, {}, log);
  CHECK(s.kernels == 1);
  // Forward, all adjoints in one pass; Adam's update; normal and uniform
  // noise.
  CHECK(s.pipelines == 5);
  CHECK(!std::filesystem::exists(path + ".tmp" + std::to_string(::getpid())));
  auto lib = runtime::KernelLibrary::open(path, plan.dump());
  CHECK(lib->kernels()->device == UNROLL_KERNELS_CPU);
  // Training settings may change, as for resuming a run.
  json longer = plan;
  for (json &a : longer["algorithms"])
    if (a.contains("train"))
      a["train"]["epochs"] = 99;
  CHECK_NOTHROW(runtime::KernelLibrary::open(path, longer.dump()));
  CHECK_THROWS_WITH(runtime::KernelLibrary::open(path, other.dump()),
                    Catch::Contains("was compiled from another program"));
  CHECK_THROWS_WITH(
      runtime::KernelLibrary::open((dir / "none.so").string(), plan.dump()),
      Catch::Contains("does not exist; compile the program with `unrollc "
                      "compile SPEC -o DIR`"));
  {
    std::ofstream bad(dir / "bad.so");
    bad << "not a shared object";
  }
  CHECK_THROWS_WITH(
      runtime::KernelLibrary::open((dir / "bad.so").string(), plan.dump()),
      Catch::Contains("cannot load kernel library") &&
          Catch::Contains("is it damaged"));
  // A truncated library would crash dlopen (SIGBUS): refused before.
  {
    std::ifstream whole(path, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(whole)),
                      std::istreambuf_iterator<char>());
    std::ofstream cut(dir / "cut.so", std::ios::binary);
    cut << bytes.substr(0, bytes.size() / 2);
  }
  CHECK_THROWS_WITH(
      runtime::KernelLibrary::open((dir / "cut.so").string(), plan.dump()),
      Catch::Contains("truncated"));
  // An unknown kernel number or wrong operands: an error, not a crash.
  char err[256] = {0};
  const unroll_kernels &k = *lib->kernels();
  CHECK(k.run(k.ctx, 42, UNROLL_KERNEL_VALUE, nullptr, 0, nullptr, nullptr, err,
              sizeof err) != 0);
  CHECK(std::string(err) == "no such kernel in this library");
  torch::Tensor t = torch::zeros({2, 3, 4});
  unroll_tensor v = runtime::kernelView(t);
  unroll_tensor three[3] = {v, v, v};
  CHECK(k.run(k.ctx, 0, UNROLL_KERNEL_VALUE, three, 3, nullptr, &v, err,
              sizeof err) != 0);
  CHECK_THAT(err, Catch::Contains("has rank 3, expected 2"));
  CHECK(k.run(k.ctx, 0, UNROLL_KERNEL_VALUE, three, 2, nullptr, &v, err,
              sizeof err) != 0);
  CHECK_THAT(err, Catch::Contains("takes 3 operands"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("a CUDA kernel library builds without a GPU, every stage on the "
          "device",
          "[kernels][library]") {
  // buildKernelLibrary refuses (InternalError) a pipeline that would run a
  // stage on the host; the reductions' sums and accumulated adjoints are
  // the stages at risk.
  json plan = test::fusedPlanFor(test::tinyLista(6, 16, 2, R"(
import losses
train lista {
  target  ystar = solve(sparse_coding, fista, tol = 1e-6)
  loss    mse(y[L], ystar)
  descend distance(y, ystar) by 0.05
}
)"));
  auto dir = scratchDir();
  std::string path = (dir / "kernels.so").string();
  std::ostringstream log;
  compiler::KernelLibraryOptions o;
  o.target = "host-cuda";
  compiler::KernelLibrarySummary s =
      compiler::buildKernelLibrary(plan.dump(), path, o, log);
  CHECK(s.kernels == 3);
  CHECK(s.target.find("cuda") != std::string::npos);
  // Loading needs no GPU either (libcuda is opened at the first call).
  auto lib = runtime::KernelLibrary::open(path, plan.dump());
  CHECK(lib->kernels()->device == UNROLL_KERNELS_CUDA);
  CHECK(lib->kernels()->adam == nullptr);
  std::filesystem::remove_all(dir);
}
