#include "runtime/Executor.h"

#include "runtime/Random.h"

#include <algorithm>
#include <cassert>
#include <set>

namespace unroll::runtime {

using torch::Tensor;

namespace {

/// The kernel's view of `t` (with a leading batch axis if `batched`)
/// broadcast to `full` [B or 1, shape...]: its axes aligned to the right,
/// stride 0 where it has none or has size 1 against a larger extent. Strides
/// are set directly rather than by reshape and expand: those are four LibTorch
/// ops per operand and call, which cost more than a small kernel.
unroll_tensor broadcastView(const Tensor &t, bool batched,
                            c10::IntArrayRef full) {
  const int64_t rank = static_cast<int64_t>(full.size());
  if (rank > UNROLL_MAX_RANK)
    throw PlanError("a fused op of rank " + std::to_string(rank) +
                    " exceeds the kernels' limit of " +
                    std::to_string(UNROLL_MAX_RANK));
  assert(t.scalar_type() == torch::kFloat32);
  unroll_tensor v{};
  v.data = t.data_ptr<float>();
  v.rank = static_cast<int32_t>(rank);
  const int64_t lead = batched ? 1 : 0;
  const int64_t offset = rank - (t.dim() - lead); // axes t lacks, batch incl.
  for (int64_t d = 0; d < rank; ++d) {
    v.sizes[d] = full[d];
    int64_t td = d == 0 ? (batched ? 0 : -1) : d - offset + lead;
    if (d > 0 && td < lead)
      td = -1;
    assert(td < 0 || t.size(td) == full[d] || t.size(td) == 1);
    v.strides[d] = td >= 0 && t.size(td) == full[d] ? t.stride(td) : 0;
  }
  return v;
}

} // namespace

unroll_tensor kernelView(const Tensor &t) {
  return broadcastView(t, true, t.sizes());
}

namespace {

/// Runs `kernel` with `operand` (UNROLL_KERNEL_VALUE, an operand's index or
/// UNROLL_KERNEL_ALL_ADJOINTS) on `in` into `outs`.
void call(const unroll_kernels &k, int64_t kernel, int32_t operand,
          const std::vector<unroll_tensor> &in, const Tensor *dresult,
          const std::vector<Tensor> &outs) {
  std::vector<unroll_tensor> o;
  for (const Tensor &t : outs)
    o.push_back(kernelView(t));
  unroll_tensor d{};
  if (dresult)
    d = kernelView(*dresult);
  // pickDevice keeps the tensors where the kernels were compiled for.
  assert(outs.empty() ||
         outs[0].device().is_cuda() == (k.device == UNROLL_KERNELS_CUDA));
  char err[1024] = {0};
  if (k.run(k.ctx, kernel, operand, in.data(), static_cast<int32_t>(in.size()),
            dresult ? &d : nullptr, o.data(), err, sizeof err) != 0)
    throw PlanError(std::string("generated kernel ") + std::to_string(kernel) +
                    " failed: " + err);
}

/// How FusedFunction forms a kernel operand from its inputs.
enum OperandKind : int64_t {
  Shared = 0,  // one input, no batch axis
  Batched = 1, // one input with a leading batch axis
  Product = 2, // two inputs, W [n, k] and v [B, k]: the operand is v W^T
};

/// The shape of `t` (with a leading batch axis if `batched`) at per-instance
/// rank `r`, before broadcasting: [B or 1, 1.., shape], size-1 axes where it
/// has none.
std::vector<int64_t> alignedShape(const Tensor &t, bool batched, int64_t r) {
  std::vector<int64_t> s{batched ? t.size(0) : 1};
  int64_t inRank = t.dim() - (batched ? 1 : 0);
  for (int64_t i = inRank; i < r; ++i)
    s.push_back(1);
  for (int64_t d = batched ? 1 : 0; d < t.dim(); ++d)
    s.push_back(t.size(d));
  return s;
}

/// A fused op as one node of the autograd graph: the kernel's value
/// forward, the kernel's operand adjoints backward. Operands that are
/// products of a shared matrix and a vector per instance (`Wu @ x` in a
/// LISTA layer) are computed inside, and operands are broadcast inside,
/// so that neither adds nodes of its own (each costs microseconds
/// backward, which is most of a small layer's time).
struct FusedFunction : public torch::autograd::Function<FusedFunction> {
  // A TensorList (not a std::vector) so that autograd sees every input.
  // `kinds` says how operands come from inputs (OperandKind), `full` is
  // the kernel's shape [B or 1, shape...].
  static Tensor forward(torch::autograd::AutogradContext *ctx,
                        at::TensorList inputs, int64_t kernel, int64_t provider,
                        std::vector<int64_t> kinds, std::vector<int64_t> full,
                        bool reduces) {
    std::vector<Tensor> saved = inputs.vec();
    size_t in = 0;
    for (int64_t kind : kinds) {
      if (kind == Product) {
        saved.push_back(
            torch::mm(inputs[in + 1].detach(), inputs[in].detach().t()));
        in += 2;
      } else {
        ++in;
      }
    }
    std::vector<unroll_tensor> operands = kernelOperands(saved, kinds, full);
    // A reduction yields one value per instance.
    Tensor out = torch::empty(reduces ? std::vector<int64_t>{full[0]} : full,
                              inputs[0].options().requires_grad(false));
    call(*reinterpret_cast<const unroll_kernels *>(provider), kernel,
         UNROLL_KERNEL_VALUE, operands, nullptr, {out});
    ctx->save_for_backward(saved);
    ctx->saved_data["kernel"] = kernel;
    ctx->saved_data["provider"] = provider;
    ctx->saved_data["kinds"] = kinds;
    ctx->saved_data["full"] = full;
    return out;
  }

  /// The kernel's operands from the inputs followed by the products.
  static std::vector<unroll_tensor>
  kernelOperands(const std::vector<Tensor> &saved,
                 const std::vector<int64_t> &kinds, c10::IntArrayRef full) {
    size_t nInputs = 0;
    for (int64_t kind : kinds)
      nInputs += kind == Product ? 2 : 1;
    std::vector<unroll_tensor> operands;
    size_t in = 0, prod = nInputs;
    for (int64_t kind : kinds) {
      if (kind == Product) {
        operands.push_back(broadcastView(saved[prod++], true, full));
        in += 2;
      } else {
        operands.push_back(broadcastView(saved[in++], kind != Shared, full));
      }
    }
    return operands;
  }

  /// Whether backward can add to `grad`, the existing gradient of the
  /// parameter `t`, instead of returning a gradient for autograd to add.
  static bool inPlace(const Tensor &t, const Tensor &grad) {
    return grad.defined() && !torch::GradMode::is_enabled() &&
           grad.sizes() == t.sizes() && grad.is_contiguous();
  }

  static torch::autograd::variable_list
  backward(torch::autograd::AutogradContext *ctx,
           torch::autograd::variable_list grads) {
    auto saved = ctx->get_saved_variables();
    auto *k = reinterpret_cast<const unroll_kernels *>(
        ctx->saved_data["provider"].toInt());
    int64_t kernel = ctx->saved_data["kernel"].toInt();
    std::vector<int64_t> kinds = ctx->saved_data["kinds"].toIntVector();
    std::vector<int64_t> full = ctx->saved_data["full"].toIntVector();
    std::vector<unroll_tensor> operands = kernelOperands(saved, kinds, full);
    Tensor dres = grads[0].contiguous();
    // Every operand's adjoint in one call (one pass over the data), each
    // over the operands' shape.
    std::vector<Tensor> gs;
    for (size_t i = 0; i < operands.size(); ++i)
      gs.push_back(torch::empty(full, dres.options()));
    call(*k, kernel, UNROLL_KERNEL_ALL_ADJOINTS, operands, &dres, gs);
    torch::autograd::variable_list out;
    size_t in = 0;
    for (size_t i = 0; i < kinds.size(); ++i) {
      if (kinds[i] == Product) {
        // z = v W^T: dW = dz^T v, dv = dz W.
        Tensor dz = gs[i].reshape({gs[i].size(0), -1});
        const Tensor &w = saved[in], &v = saved[in + 1];
        Tensor wGrad = w.is_leaf() ? w.grad() : Tensor();
        if (!ctx->needs_input_grad(in)) {
          out.emplace_back();
        } else if (inPlace(w, wGrad)) {
          // A parameter whose gradient already exists (an optimizer's flat
          // buffer between zero_grad and step): the GEMM accumulates into
          // it, which spares a temporary and the AccumulateGrad add.
          wGrad.addmm_(dz.t(), v.detach());
          out.emplace_back();
        } else {
          out.push_back(torch::mm(dz.t(), v.detach()));
        }
        out.push_back(ctx->needs_input_grad(in + 1)
                          ? torch::mm(dz, saved[in].detach())
                          : Tensor());
        in += 2;
        continue;
      }
      // Summed over the axes the operand was broadcast along.
      const Tensor &t = saved[in];
      Tensor tGrad = t.is_leaf() ? t.grad() : Tensor();
      Tensor g;
      if (ctx->needs_input_grad(in))
        g = at::sum_to(gs[i],
                       alignedShape(t, kinds[i] == Batched,
                                    static_cast<int64_t>(full.size()) - 1))
                .reshape(t.sizes());
      if (g.defined() && inPlace(t, tGrad)) {
        tGrad.add_(g);
        g = Tensor();
      }
      out.push_back(g);
      ++in;
    }
    for (int j = 0; j < 5; ++j)
      out.emplace_back(); // kernel, provider, kinds, full, reduces
    return out;
  }
};

/// One fused op that ends in a reduction, run on every layer's value of
/// its argument (a descent constraint's measure at every layer) as one node
/// of the autograd graph: the kernel once per layer on that layer's value,
/// with no stacked copy of the layers' values or of the per-instance
/// values it reads besides (the target), and backward only the adjoints
/// that are needed. Stacking them cost two copies of every layer's states
/// and a node per layer backward.
struct LayerwiseFusedFunction
    : public torch::autograd::Function<LayerwiseFusedFunction> {
  /// `inputs` are the `layers` values of the argument, then one input per
  /// operand that is not the argument; `kinds` says for each operand
  /// whether it is the argument (Layer) or which input (Shared or
  /// Batched) it is; `full` is the kernel's operand shape [B, shape...].
  static constexpr int64_t Layer = 3;

  static Tensor forward(torch::autograd::AutogradContext *ctx,
                        at::TensorList inputs, int64_t layers, int64_t kernel,
                        int64_t provider, std::vector<int64_t> kinds,
                        std::vector<int64_t> full) {
    const auto *k = reinterpret_cast<const unroll_kernels *>(provider);
    const std::vector<Tensor> in = inputs.vec();
    Tensor out = torch::empty({layers, full[0]},
                              inputs[0].options().requires_grad(false));
    for (int64_t l = 0; l < layers; ++l)
      call(*k, kernel, UNROLL_KERNEL_VALUE,
           operands(in, inputsOf(kinds, layers, l), kinds, full), nullptr,
           {out.select(0, l)});
    ctx->save_for_backward(in);
    ctx->saved_data["layers"] = layers;
    ctx->saved_data["kernel"] = kernel;
    ctx->saved_data["provider"] = provider;
    ctx->saved_data["kinds"] = kinds;
    ctx->saved_data["full"] = full;
    return out;
  }

  /// For layer `l`, the input each operand comes from.
  static std::vector<size_t> inputsOf(const std::vector<int64_t> &kinds,
                                      int64_t layers, int64_t l) {
    std::vector<size_t> idx;
    size_t other = static_cast<size_t>(layers);
    for (int64_t kind : kinds)
      idx.push_back(kind == Layer ? static_cast<size_t>(l) : other++);
    return idx;
  }

  /// The kernel operands from inputs `idx`, broadcast to `full`.
  static std::vector<unroll_tensor> operands(const std::vector<Tensor> &inputs,
                                             const std::vector<size_t> &idx,
                                             const std::vector<int64_t> &kinds,
                                             c10::IntArrayRef full) {
    std::vector<unroll_tensor> out;
    for (size_t i = 0; i < kinds.size(); ++i)
      out.push_back(broadcastView(inputs[idx[i]], kinds[i] != Shared, full));
    return out;
  }

  static torch::autograd::variable_list
  backward(torch::autograd::AutogradContext *ctx,
           torch::autograd::variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const auto *k = reinterpret_cast<const unroll_kernels *>(
        ctx->saved_data["provider"].toInt());
    const int64_t layers = ctx->saved_data["layers"].toInt();
    const int64_t kernel = ctx->saved_data["kernel"].toInt();
    const std::vector<int64_t> kinds = ctx->saved_data["kinds"].toIntVector();
    const std::vector<int64_t> full = ctx->saved_data["full"].toIntVector();
    const int64_t rank = static_cast<int64_t>(full.size()) - 1;
    Tensor dres = grads[0].contiguous();
    torch::autograd::variable_list out(saved.size());
    // The kernel writes every operand's adjoint; those nobody needs go to
    // one scratch buffer, reused.
    Tensor scratch;
    for (int64_t l = 0; l < layers; ++l) {
      const std::vector<size_t> idx = inputsOf(kinds, layers, l);
      // Layer 0's state (a fixed or random start) usually needs none.
      if (std::none_of(idx.begin(), idx.end(),
                       [&](size_t i) { return ctx->needs_input_grad(i); }))
        continue;
      std::vector<Tensor> gs;
      for (size_t i : idx) {
        if (ctx->needs_input_grad(i)) {
          gs.push_back(torch::empty(full, dres.options()));
        } else {
          if (!scratch.defined())
            scratch = torch::empty(full, dres.options());
          gs.push_back(scratch);
        }
      }
      Tensor d = dres.select(0, l);
      call(*k, kernel, UNROLL_KERNEL_ALL_ADJOINTS,
           operands(saved, idx, kinds, full), &d, gs);
      for (size_t i = 0; i < kinds.size(); ++i) {
        if (!ctx->needs_input_grad(idx[i]))
          continue;
        const Tensor &t = saved[idx[i]];
        Tensor g = at::sum_to(gs[i], alignedShape(t, kinds[i] != Shared, rank))
                       .reshape(t.sizes());
        Tensor &acc = out[idx[i]];
        acc = acc.defined() ? acc + g : g;
      }
    }
    for (int j = 0; j < 5; ++j)
      out.emplace_back(); // layers, kernel, provider, kinds, full
    return out;
  }
};

/// Per-instance rank of a value.
int64_t rank(const RValue &v) { return v.t.dim() - (v.batched ? 1 : 0); }

/// A batched value reshaped to [B, 1.., shape] of per-instance rank `r`, so
/// that right-aligned broadcasting with shared values works.
Tensor alignBatched(const RValue &v, int64_t r) {
  if (!v.batched || rank(v) == r)
    return v.t;
  return v.t.reshape(alignedShape(v.t, true, r));
}

/// A shared value repeated for `n` instances: [n, shape...] (a view).
Tensor perInstance(const Tensor &t, int64_t n) {
  std::vector<int64_t> full{n};
  full.insert(full.end(), t.sizes().begin(), t.sizes().end());
  return t.unsqueeze(0).expand(full);
}

/// Axis `a` of the per-instance value, as a tensor dimension.
int64_t dim(const RValue &v, int64_t a) { return a + (v.batched ? 1 : 0); }

} // namespace

RValue Executor::get(int64_t id) const {
  auto it = env_.find(id);
  if (it == env_.end())
    throw PlanError("plan uses value " + std::to_string(id) +
                    " before defining it");
  return it->second;
}

void Executor::bindInputs(const std::map<std::string, Tensor> &inputs) {
  batch_ = -1;
  for (const abi::Input &in : alg_.inputs) {
    const std::string &name = in.name;
    auto it = inputs.find(name);
    if (it == inputs.end())
      throw PlanError("missing input '" + name + "'");
    bool data = in.role == abi::Role::Data;
    const std::vector<int64_t> &want = in.shape;
    Tensor t = it->second.to(device_, torch::kFloat32);
    std::vector<int64_t> got(t.sizes().begin(), t.sizes().end());
    if (data) {
      if (got.empty())
        throw PlanError("data input '" + name + "' needs a batch axis");
      if (batch_ >= 0 && got[0] != batch_)
        throw PlanError("data inputs disagree on the batch size");
      batch_ = got[0];
      got.erase(got.begin());
    }
    if (got != want)
      throw PlanError("input '" + name + "' has shape " +
                      c10::str(it->second.sizes()) + ", expected " +
                      c10::str(c10::IntArrayRef(want)) +
                      (data ? " per instance" : ""));
    env_[in.id] = RValue{t, data};
  }
  if (batch_ < 0)
    batch_ = 1;
}

void Executor::initParams(uint64_t seed) {
  gen_ = at::make_generator<at::CPUGeneratorImpl>(seed);
  torch::NoGradGuard noGrad;
  for (const Op &op : alg_.prelude)
    run(op);
  for (const abi::Param &p : alg_.params) {
    Tensor t = body(p.init, {})[0].t.clone();
    t.set_requires_grad(true);
    params_[p.id] = t;
    env_[p.id] = RValue{t, false};
  }
}

void Executor::setParam(int64_t id, Tensor t) {
  auto it = params_.find(id);
  if (it == params_.end() || it->second.sizes() != t.sizes())
    throw PlanError("no parameter " + std::to_string(id) + " of shape " +
                    c10::str(t.sizes()));
  it->second = t;
  env_[id] = RValue{t, false};
}

ForwardResult Executor::forward(uint64_t seed, bool noise, double perturb) {
  gen_ = at::make_generator<at::CPUGeneratorImpl>(seed);
  ForwardResult out;
  probes_ = &out.probes;
  samples_ = &out.samples;
  // They point into `out`: reset however this returns.
  struct Reset {
    Executor &ex;
    ~Reset() {
      ex.probes_ = nullptr;
      ex.samples_ = nullptr;
    }
  } reset{*this};
  std::vector<Tensor> state;
  for (const abi::State &s : alg_.states) {
    torch::NoGradGuard noGrad;
    Tensor t;
    // A random initial state: each instance draws its own, all at once
    // (running the body once per instance is a step's worth of small ops).
    // Reset even if the body throws.
    drawPerInstance_ = s.random;
    RValue v;
    try {
      v = body(s.init, {})[0];
    } catch (...) {
      drawPerInstance_ = false;
      throw;
    }
    drawPerInstance_ = false;
    t = v.batched ? v.t : perInstance(v.t, batch_).clone();
    env_[s.id] = RValue{t, true};
    state.push_back(t);
  }
  out.states.push_back(state);
  for (const abi::Layer &layer : alg_.layers) {
    layerIndex_ = static_cast<double>(layer.index);
    std::vector<RValue> args;
    for (int64_t id : layer.state)
      args.push_back(get(id));
    std::vector<RValue> res = body(layer.body, args);
    std::vector<Tensor> next;
    for (size_t i = 0; i < res.size(); ++i) {
      RValue r = res[i];
      if (!r.batched) // a layer that ignores its input: still per instance
        r = RValue{perInstance(r.t, batch_).clone(), true};
      if (noise)
        r.t = addNoise(alg_.states[i].name, r.t);
      if (perturb > 0)
        r.t = r.t + perturb * torch::randn(r.t.sizes(), gen_).to(device_);
      env_[layer.results[i]] = r;
      next.push_back(r.t);
    }
    out.states.push_back(next);
  }
  return out;
}

Tensor Executor::addNoise(const std::string &state, Tensor value) {
  for (const abi::Noise &n : alg_.noise) {
    if (n.on != state)
      continue;
    // The body sees this layer's state (layerIndex_ is the layer).
    std::vector<RValue> ab = body(n.body, {RValue{value, true}});
    int64_t r = value.dim() - 1;
    Tensor a = alignBatched(ab[0], r), b = alignBatched(ab[1], r);
    // Random numbers come from the CPU generator on every device, so that
    // a seed means the same draws on CPU and GPU.
    bool normal = n.distribution == abi::Distribution::Normal;
    Tensor scale = normal ? b : b - a;
    // With a noise kernel: shifted and scaled as it draws.
    if (Tensor u = kernelDraw(value.sizes(), normal, a, scale); u.defined()) {
      value = u.add_(value);
      continue;
    }
    Tensor u = (normal ? torch::randn(value.sizes(), gen_)
                       : torch::rand(value.sizes(), gen_))
                   .to(device_);
    // The draw is shifted and scaled first, so that the state gets one add,
    // one node backward; where the shift and scale need no gradient (the
    // usual case), in place on the fresh draw, which spares three
    // temporaries per layer.
    if (!a.requires_grad() && !scale.requires_grad() &&
        at::infer_size(at::infer_size(a.sizes(), scale.sizes()), u.sizes()) ==
            u.sizes())
      value = u.mul_(scale).add_(a).add_(value);
    else
      value = value + (a + scale * u);
  }
  return value;
}

Tensor Executor::kernelDraw(c10::IntArrayRef sizes, bool normal,
                            const Tensor &shift, const Tensor &scale) {
  const int64_t n = c10::multiply_integers(sizes);
  // torch::randn draws fewer than 16 elements otherwise (one at a time, in
  // double); the kernel takes float constants.
  if (!kernels_ || !kernels_->noise || kernels_->device != UNROLL_KERNELS_CPU ||
      !device_.is_cpu() || n == 0 || (normal && n < 16) || shift.dim() != 0 ||
      scale.dim() != 0 || shift.requires_grad() || scale.requires_grad())
    return Tensor();
  const int64_t count = unroll_noise_words(normal, n);
  if (words_.numel() < count)
    words_ = torch::empty({count}, torch::kInt32);
  generatorWords(gen_, reinterpret_cast<uint32_t *>(words_.data_ptr<int32_t>()),
                 count);
  unroll_tensor w{};
  w.data = reinterpret_cast<float *>(words_.data_ptr<int32_t>());
  w.rank = 1;
  w.sizes[0] = count;
  w.strides[0] = 1;
  Tensor out =
      torch::empty(sizes, torch::TensorOptions().dtype(torch::kFloat32));
  unroll_tensor o = kernelView(out.view({n}));
  unroll_noise_draw h{normal ? 1 : 0, shift.item<float>(), scale.item<float>()};
  char err[1024] = {0};
  if (kernels_->noise(kernels_->ctx, &w, &o, &h, err, sizeof err) != 0)
    throw PlanError(std::string("the generated noise kernel failed: ") + err);
  return out;
}

const std::set<int64_t> &Executor::absorbedProducts(const Body &b) {
  auto [it, fresh] = absorbedCache_.try_emplace(&b);
  if (!fresh)
    return it->second;
  std::map<int64_t, int> uses;
  std::map<int64_t, const Op *> user;
  for (const Op &op : b.ops)
    for (int64_t id : op.args) {
      ++uses[id];
      user[id] = &op;
    }
  for (int64_t id : b.yield)
    ++uses[id];
  for (const Op &op : b.ops) {
    if (op.code != OpCode::Matmul)
      continue;
    auto u = user.find(op.id);
    if (uses[op.id] == 1 && u != user.end() && u->second->code == OpCode::Fused)
      it->second.insert(op.id);
  }
  return it->second;
}

std::vector<RValue> Executor::body(const Body &b,
                                   const std::vector<RValue> &args) {
  if (b.args.size() != args.size())
    throw PlanError("a plan body gets the wrong number of arguments");
  for (size_t i = 0; i < args.size(); ++i)
    env_[b.args[i]] = args[i];
  const std::set<int64_t> *outer = absorbed_;
  absorbed_ = kernels_ ? &absorbedProducts(b) : nullptr;
  try {
    for (const Op &op : b.ops)
      run(op);
  } catch (...) {
    absorbed_ = outer;
    products_.clear();
    throw;
  }
  absorbed_ = outer;
  std::vector<RValue> out;
  for (int64_t y : b.yield)
    out.push_back(get(y));
  return out;
}

std::vector<RValue> Executor::bodyStacked(const Body &b,
                                          const std::vector<RValue> &args,
                                          int64_t copies) {
  std::set<int64_t> local(b.args.begin(), b.args.end());
  std::map<int64_t, RValue> saved;
  auto tile = [&](int64_t i) {
    if (local.count(i) || saved.count(i))
      return;
    auto it = env_.find(i);
    if (it == env_.end() || !it->second.batched)
      return;
    saved[i] = it->second;
    const Tensor &t = it->second.t;
    std::vector<int64_t> full{copies};
    full.insert(full.end(), t.sizes().begin(), t.sizes().end());
    std::vector<int64_t> flat(t.sizes().begin(), t.sizes().end());
    flat[0] *= copies;
    it->second.t = t.unsqueeze(0).expand(full).reshape(flat);
  };
  for (const Op &op : b.ops) {
    for (int64_t id : op.args)
      tile(id);
    if (op.id >= 0)
      local.insert(op.id);
    local.insert(op.ids.begin(), op.ids.end());
  }
  for (int64_t id : b.yield)
    tile(id);
  const int64_t batch = batch_;
  batch_ *= copies;
  auto restore = [&] {
    batch_ = batch;
    for (auto &[id, v] : saved)
      env_[id] = v;
  };
  std::vector<RValue> out;
  try {
    out = body(b, args);
  } catch (...) {
    restore();
    throw;
  }
  restore();
  return out;
}

std::vector<RValue>
Executor::bodyOverLayers(const Body &b, const std::vector<Tensor> &values) {
  const int64_t n = static_cast<int64_t>(values.size());
  const bool oneKernel = kernels_ && n > 0 && b.args.size() == 1 &&
                         b.ops.size() == 1 && b.ops[0].reduces() &&
                         b.yield.size() == 1 && b.yield[0] == b.ops[0].id;
  if (!oneKernel)
    return bodyStacked(b, {RValue{torch::cat(values), true}}, n);
  const Op &op = b.ops[0];
  const int64_t arg = b.args[0];
  std::vector<Tensor> inputs(values.begin(), values.end());
  std::vector<int64_t> kinds;
  for (int64_t id : op.args) {
    if (id == arg) {
      kinds.push_back(LayerwiseFusedFunction::Layer);
      continue;
    }
    RValue v = get(id);
    inputs.push_back(v.t.to(torch::kFloat32));
    kinds.push_back(v.batched ? Batched : Shared);
  }
  const std::vector<int64_t> &domain = op.domain();
  std::vector<int64_t> full{values[0].size(0)};
  full.insert(full.end(), domain.begin(), domain.end());
  Tensor r = LayerwiseFusedFunction::apply(at::TensorList(inputs), n, op.kernel,
                                           reinterpret_cast<int64_t>(kernels_),
                                           kinds, full);
  return {RValue{r.reshape({-1}), true}};
}

namespace {

Tensor unary(abi::UnaryFn fn, const Tensor &x) {
  using abi::UnaryFn;
  switch (fn) {
  case UnaryFn::Neg:
    return -x;
  case UnaryFn::Abs:
    return x.abs();
  case UnaryFn::Sign:
    return x.sign();
  case UnaryFn::Relu:
    return torch::relu(x);
  case UnaryFn::Step:
    return (x > 0).to(torch::kFloat32);
  case UnaryFn::Exp:
    return x.exp();
  case UnaryFn::Log:
    return x.log();
  case UnaryFn::Sqrt:
    return x.sqrt();
  case UnaryFn::Tanh:
    return x.tanh();
  case UnaryFn::Sigmoid:
    return torch::sigmoid(x);
  case UnaryFn::Square:
    return x * x;
  }
  throw PlanError("unknown elementwise function");
}

Tensor reduce(abi::ReduceKind kind, const Tensor &x,
              const std::vector<int64_t> &dims) {
  using abi::ReduceKind;
  if (dims.empty()) // reducing a scalar
    return kind == ReduceKind::Norm || kind == ReduceKind::Norm1 ? x.abs()
           : kind == ReduceKind::Sqnorm                          ? x * x
                                                                 : x;
  switch (kind) {
  case ReduceKind::Sum:
    return x.sum(dims);
  case ReduceKind::Mean:
    return x.mean(dims);
  case ReduceKind::Norm:
    // One op and one node backward (and a zero gradient at zero, where
    // the square root of a sum has an infinite one).
    return torch::linalg::vector_norm(x, 2, dims, false, c10::nullopt);
  case ReduceKind::Norm1:
    return x.abs().sum(dims);
  case ReduceKind::Sqnorm:
    return (x * x).sum(dims);
  }
  throw PlanError("unknown reduction");
}

} // namespace

void Executor::run(const Op &op) {
  std::vector<RValue> a;
  for (int64_t id : op.args)
    a.push_back(get(id));
  const std::vector<int64_t> &shape = op.shape;
  int64_t outRank = static_cast<int64_t>(shape.size());
  bool anyBatched = false;
  for (const RValue &v : a)
    anyBatched |= v.batched;
  auto set = [&](Tensor t, bool batched) { env_[op.id] = RValue{t, batched}; };
  auto opts = torch::TensorOptions().dtype(torch::kFloat32).device(device_);

  switch (op.code) {
  // Constants and layer indices are made once per executor, not on every
  // run of their op (each creation is a conversion and a copy).
  case OpCode::Constant: {
    auto [it, fresh] = constants_.try_emplace(op.id);
    if (fresh)
      it->second = torch::tensor(op.value, opts);
    return set(it->second, false);
  }
  case OpCode::LayerIndex: {
    auto [it, fresh] = layerIndices_.try_emplace(layerIndex_);
    if (fresh)
      it->second = torch::tensor(layerIndex_, opts);
    return set(it->second, false);
  }
  case OpCode::Eye:
    return set(torch::eye(shape[0], opts), false);
  case OpCode::Fill: {
    if (a[0].batched) {
      std::vector<int64_t> full{a[0].t.size(0)};
      full.insert(full.end(), shape.begin(), shape.end());
      std::vector<int64_t> view{a[0].t.size(0)};
      view.insert(view.end(), shape.size(), 1);
      return set(a[0].t.reshape(view).expand(full), true);
    }
    return set(a[0].t.expand(shape), false);
  }
  case OpCode::Random: {
    std::vector<int64_t> drawn = shape;
    if (drawPerInstance_)
      drawn.insert(drawn.begin(), batch_);
    int64_t r = static_cast<int64_t>(shape.size());
    Tensor lo = alignBatched(a[0], r), hi = alignBatched(a[1], r);
    bool batched = drawPerInstance_ || anyBatched;
    const bool normal = op.distribution == abi::Distribution::Normal;
    Tensor scale = normal ? hi : hi - lo;
    if (Tensor s = kernelDraw(drawn, normal, lo, scale); s.defined())
      return set(s, batched);
    Tensor s = (normal ? torch::randn(drawn, gen_) : torch::rand(drawn, gen_))
                   .to(device_);
    return set(lo + scale * s, batched);
  }
  case OpCode::Unary:
    return set(unary(op.fn, a[0].t), a[0].batched);
  case OpCode::Add:
  case OpCode::Sub:
  case OpCode::Mul:
  case OpCode::Div:
  case OpCode::Pow:
  case OpCode::Max:
  case OpCode::Min: {
    Tensor x = alignBatched(a[0], outRank), y = alignBatched(a[1], outRank);
    Tensor r = op.code == OpCode::Add   ? x + y
               : op.code == OpCode::Sub ? x - y
               : op.code == OpCode::Mul ? x * y
               : op.code == OpCode::Div ? x / y
               : op.code == OpCode::Pow ? torch::pow(x, y)
               : op.code == OpCode::Max ? torch::maximum(x, y)
                                        : torch::minimum(x, y);
    return set(r, anyBatched);
  }
  case OpCode::Matmul: {
    Tensor x = a[0].t, y = a[1].t;
    bool lv = rank(a[0]) == 1, rv = rank(a[1]) == 1;
    // A shared matrix times one vector per instance (W @ y in every LISTA
    // or ISTA layer): one GEMM, y [B, k] @ W^T, instead of B products.
    if (!a[0].batched && a[1].batched && rank(a[0]) == 2 && rv) {
      // A product only a fused kernel reads: computed inside its node.
      if (absorbed_ && absorbed_->count(op.id) &&
          x.scalar_type() == torch::kFloat32 &&
          y.scalar_type() == torch::kFloat32) {
        products_[op.id] = {x, y};
        return set(Tensor(), true);
      }
      return set(torch::matmul(y, x.t()), true);
    }
    if (lv)
      x = x.unsqueeze(-2);
    if (rv)
      y = y.unsqueeze(-1);
    if (anyBatched) {
      // Batch axis in front of both, then a stack of matrices times one
      // matrix gets a size-1 stack axis so that the batch axes line up.
      if (!a[0].batched)
        x = x.unsqueeze(0);
      if (!a[1].batched)
        y = y.unsqueeze(0);
      while (x.dim() < y.dim())
        x = x.unsqueeze(1);
      while (y.dim() < x.dim())
        y = y.unsqueeze(1);
    }
    Tensor r = torch::matmul(x, y);
    if (rv)
      r = r.squeeze(-1);
    if (lv)
      r = r.squeeze(rv ? -1 : -2);
    return set(r, anyBatched);
  }
  case OpCode::Transpose:
    return set(a[0].t.transpose(-1, -2), a[0].batched);
  case OpCode::Reduce: {
    const Tensor &x = a[0].t;
    std::vector<int64_t> dims;
    if (op.axis)
      dims.push_back(dim(a[0], *op.axis));
    else
      for (int64_t d = a[0].batched ? 1 : 0; d < x.dim(); ++d)
        dims.push_back(d);
    return set(reduce(op.reduce, x, dims), a[0].batched);
  }
  case OpCode::Outer: {
    Tensor x = a[0].t.unsqueeze(-1), y = a[1].t.unsqueeze(-2);
    return set(x * y, anyBatched);
  }
  case OpCode::Expand: {
    int64_t ax = dim(a[0], *op.axis);
    std::vector<int64_t> full(a[0].t.sizes().begin(), a[0].t.sizes().end());
    full.insert(full.begin() + ax, shape[*op.axis]);
    return set(a[0].t.unsqueeze(ax).expand(full), a[0].batched);
  }
  case OpCode::SumTo: {
    // Sum the axes broadcasting added (leading ones, and size-1 targets).
    Tensor x = a[0].t;
    int64_t lead = rank(a[0]) - outRank, off = a[0].batched ? 1 : 0;
    for (int64_t i = 0; i < lead; ++i)
      x = x.sum(off);
    for (int64_t d = 0; d < outRank; ++d)
      if (shape[d] == 1 && x.size(d + off) != 1)
        x = x.sum(d + off, /*keepdim=*/true);
    return set(x, a[0].batched);
  }
  case OpCode::Concat: {
    int64_t axis = *op.axis;
    if (anyBatched) {
      std::vector<Tensor> parts;
      for (const RValue &v : a)
        parts.push_back(v.batched ? v.t : perInstance(v.t, batch_));
      return set(torch::cat(parts, axis + 1), true);
    }
    return set(torch::cat({a[0].t, a[1].t}, axis), false);
  }
  case OpCode::Slice: {
    int64_t axis = *op.axis;
    return set(a[0].t.narrow(dim(a[0], axis), op.start, shape[axis]),
               a[0].batched);
  }
  case OpCode::Squeeze2d:
  case OpCode::Unsqueeze2d: {
    // y[4c + 2di + dj, i, j] = x[c, 2i + di, 2j + dj], per instance.
    Tensor x = a[0].batched ? a[0].t : a[0].t.unsqueeze(0);
    int64_t n = x.size(0);
    Tensor r;
    if (op.code == OpCode::Squeeze2d) {
      int64_t C = x.size(1), H = x.size(2), W = x.size(3);
      r = x.reshape({n, C, H / 2, 2, W / 2, 2})
              .permute({0, 1, 3, 5, 2, 4})
              .reshape({n, 4 * C, H / 2, W / 2});
    } else {
      int64_t C = x.size(1) / 4, H = x.size(2), W = x.size(3);
      r = x.reshape({n, C, 2, 2, H, W})
              .permute({0, 1, 4, 2, 5, 3})
              .reshape({n, C, 2 * H, 2 * W});
    }
    return set(a[0].batched ? r : r.squeeze(0), a[0].batched);
  }
  case OpCode::Conv2d:
  case OpCode::Conv2dTranspose: {
    bool transposed = op.code == OpCode::Conv2dTranspose;
    Tensor x = a[0].batched ? a[0].t : a[0].t.unsqueeze(0);
    Tensor k = a[1].t;
    int64_t kh = k.size(-2), kw = k.size(-1);
    std::vector<int64_t> pad{kh / 2, kw / 2};
    auto conv = [&](const Tensor &in, const Tensor &w, int64_t groups) {
      return transposed ? torch::conv_transpose2d(in, w, {}, 1, pad, 0, groups)
                        : torch::conv2d(in, w, {}, 1, pad, 1, groups);
    };
    if (!a[1].batched) {
      Tensor r = conv(x, k, 1);
      return set(a[0].batched ? r : r.squeeze(0), a[0].batched);
    }
    // A kernel per instance (an adjoint inside a gradient): one group each.
    int64_t n = k.size(0);
    if (!a[0].batched)
      x = x.expand({n, x.size(1), x.size(2), x.size(3)});
    Tensor r = conv(x.reshape({1, n * x.size(1), x.size(2), x.size(3)}),
                    k.reshape({n * k.size(1), k.size(2), kh, kw}), n);
    return set(r.reshape({n, -1, x.size(2), x.size(3)}), true);
  }
  case OpCode::Conv2dKernelAdjoint: {
    // sum over pixels of g [o, h, w] times the kernel-sized patches of x.
    int64_t n = anyBatched ? batch_ : 1;
    auto batchOf = [&](const RValue &v) {
      return v.batched ? v.t : perInstance(v.t, n);
    };
    Tensor x = batchOf(a[0]), g = batchOf(a[1]);
    int64_t kh = shape[2], kw = shape[3];
    Tensor cols = torch::nn::functional::unfold(
        x, torch::nn::functional::UnfoldFuncOptions({kh, kw}).padding(
               {kh / 2, kw / 2}));
    Tensor r = torch::bmm(g.reshape({n, g.size(1), -1}), cols.transpose(1, 2))
                   .reshape({n, shape[0], shape[1], kh, kw});
    return set(anyBatched ? r : r.squeeze(0), anyBatched);
  }
  case OpCode::Reshape: {
    std::vector<int64_t> full;
    if (a[0].batched)
      full.push_back(a[0].t.size(0));
    full.insert(full.end(), shape.begin(), shape.end());
    return set(a[0].t.reshape(full), a[0].batched);
  }
  case OpCode::Conv1x1: {
    // [co, c] applied at every pixel of [.., c, h, w].
    Tensor r = torch::einsum("...oc,...chw->...ohw", {a[1].t, a[0].t});
    return set(r, anyBatched);
  }
  case OpCode::Inverse:
    return set(torch::inverse(a[0].t), a[0].batched);
  case OpCode::StopGradient:
    return set(a[0].t.detach(), a[0].batched);
  case OpCode::Logsumexp:
    return set(torch::logsumexp(a[0].t, dim(a[0], *op.axis)), a[0].batched);
  case OpCode::Softmax:
    return set(torch::softmax(a[0].t, dim(a[0], *op.axis)), a[0].batched);
  case OpCode::GraphFilter: {
    // sum_k h_k S^k x over axis 0 (the nodes) of each instance.
    Tensor S = a[0].t, x = a[1].t, h = a[2].t;
    if (a[0].batched || a[2].batched)
      throw PlanError("graph_filter needs a shared shift operator and taps");
    int64_t nodeDim = a[1].batched ? 1 : 0;
    Tensor pw = x, r = h[0] * x;
    for (int64_t k = 1; k < h.size(0); ++k) {
      pw = torch::tensordot(S, pw, {1}, {nodeDim});
      if (nodeDim == 1)
        pw = pw.movedim(0, 1);
      r = r + h[k] * pw;
    }
    return set(r, a[1].batched);
  }
  case OpCode::Minibatch: {
    // One draw of `size` sample indices per instance and node, shared by
    // every operand so that samples stay paired.
    const int64_t size = op.size;
    const RValue &first = a[0];
    int64_t nodes = first.t.size(first.batched ? 1 : 0);
    int64_t avail = first.t.size(first.batched ? 2 : 1);
    int64_t copies = anyBatched ? batch_ : 1;
    // Uniform draws scaled to indices (rather than randint), so that an
    // exported model, which takes the draws as an input, picks the same
    // samples from the same draws.
    Tensor u = torch::rand({copies, nodes, size}, gen_);
    if (samples_)
      samples_->push_back(anyBatched ? u : u.squeeze(0));
    Tensor idx = (u * static_cast<float>(avail))
                     .floor()
                     .clamp_max(static_cast<double>(avail - 1))
                     .to(torch::kLong)
                     .to(device_);
    for (size_t i = 0; i < a.size(); ++i) {
      Tensor t = a[i].batched ? a[i].t : perInstance(a[i].t, copies);
      std::vector<int64_t> view{copies, nodes, size};
      for (int64_t d = 3; d < t.dim(); ++d)
        view.push_back(1);
      std::vector<int64_t> full(t.sizes().begin(), t.sizes().end());
      full[2] = size;
      Tensor gathered = t.gather(2, idx.reshape(view).expand(full));
      env_[op.ids[i]] =
          RValue{anyBatched ? gathered : gathered.squeeze(0), anyBatched};
    }
    return;
  }
  case OpCode::LipschitzGrad: {
    // 2 sigma u v^T for the top singular triple (its sign cancels).
    auto [u, sv, vh] = torch::linalg_svd(a[0].t, /*full_matrices=*/false);
    Tensor top = u.select(-1, 0).unsqueeze(-1) * vh.select(-2, 0).unsqueeze(-2);
    return set(2 * sv.select(-1, 0).unsqueeze(-1).unsqueeze(-1) * top,
               a[0].batched);
  }
  case OpCode::Lipschitz: {
    Tensor s =
        torch::linalg::matrix_norm(a[0].t, 2, {-2, -1}, false, c10::nullopt);
    return set(s * s, a[0].batched);
  }
  case OpCode::Fused: {
    if (kernels_) {
      const std::vector<int64_t> &domain = op.domain();
      std::vector<int64_t> full{anyBatched ? batch_ : 1};
      full.insert(full.end(), domain.begin(), domain.end());
      std::vector<Tensor> inputs;
      std::vector<int64_t> kinds;
      for (size_t i = 0; i < a.size(); ++i) {
        auto p = products_.find(op.args[i]);
        if (p != products_.end()) {
          inputs.push_back(p->second.first);
          inputs.push_back(p->second.second);
          kinds.push_back(Product);
          products_.erase(p);
          continue;
        }
        inputs.push_back(a[i].t.to(torch::kFloat32));
        kinds.push_back(a[i].batched ? Batched : Shared);
      }
      Tensor r = FusedFunction::apply(at::TensorList(inputs), op.kernel,
                                      reinterpret_cast<int64_t>(kernels_),
                                      kinds, full, op.reduces());
      return set(anyBatched ? r : r.squeeze(0), anyBatched);
    }
    std::vector<RValue> res = body(*op.body, a);
    return set(res[0].t, res[0].batched);
  }
  case OpCode::Probe:
    if (probes_)
      (*probes_)[op.name].push_back(a[0].t);
    return;
  }
  throw PlanError(std::string("the runtime cannot run plan op '") +
                  abi::opName(op.code) + "'");
}

} // namespace unroll::runtime
