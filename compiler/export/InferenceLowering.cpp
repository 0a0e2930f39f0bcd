// The plan walk of the inference lowering: every op of the trained
// algorithm's initial states and layers as a Halide Func.
#include "compiler/export/Lowering.h"

#include "compiler/kernels/CudaKernels.h"
#include "compiler/kernels/HalideKernels.h"

#include <algorithm>
#include <cassert>
#include <cmath>

namespace unroll::compiler::lowering {

std::vector<Var> axes(size_t rank) {
  std::vector<Var> v;
  for (size_t i = 0; i < rank; ++i)
    v.emplace_back("x" + std::to_string(i));
  return v;
}

Expr at(const HV &v, const std::vector<Expr> &idx,
        const std::vector<int64_t> &rshape, const Expr &b) {
  std::vector<Expr> args;
  size_t r = idx.size(), s = v.shape.size();
  for (size_t k = 0; k < s; ++k) {
    size_t ri = r - s + k; // right-aligned
    bool broadcast = v.shape[k] == 1 && rshape[ri] != 1;
    args.insert(args.begin(), broadcast ? Expr(0) : idx[ri]);
  }
  if (v.batched)
    args.push_back(b);
  return v.f(args);
}

Lowering::Lowering(const abi::Algorithm &alg,
                   const std::map<std::string, Halide::Buffer<float>> &params)
    : alg_(alg), params_(params) {
  for (const Op &op : alg.prelude)
    prelude_[op.id] = &op;
  countUses(alg.prelude, {});
  for (const abi::State &s : alg.states)
    countUses(s.init.ops, s.init.yield);
  for (const abi::Layer &layer : alg.layers)
    countUses(layer.body.ops, layer.body.yield);
}

InferencePipeline Lowering::run(const StateRange &range) {
  InferencePipeline out;
  out.algorithm = alg_.name;
  const std::vector<abi::Layer> &layers = alg_.layers;
  out.layers = static_cast<int64_t>(layers.size());
  const int64_t from = range.from, to = range.to < 0 ? out.layers : range.to;
  assert(0 <= from && from <= to && to <= out.layers);
  out.firstState = from;
  for (const abi::Layer &layer : layers)
    out.layerOps += opsIn(layer.body);
  for (const abi::Input &in : alg_.inputs)
    inputsById_[in.id] = &in;
  for (const abi::Param &p : alg_.params)
    bindParam(p);
  // The layers before the range drew their minibatches first.
  if (from > 0) {
    for (const abi::State &s : alg_.states)
      draws_ += minibatches(s.init);
    for (int64_t l = 0; l < from; ++l)
      draws_ += minibatches(layers[l].body);
  }
  // States: drawn at random -> an input; otherwise their init body; or,
  // after the first layer, an input of the state's value there.
  std::vector<Func> initial;
  for (const abi::State &s : alg_.states) {
    const size_t i = out.stateNames.size();
    const std::vector<int64_t> &shape = s.shape;
    out.stateNames.push_back(s.name);
    out.stateShapes.push_back(shape);
    HV v;
    if (from > 0) {
      InferenceInput in = makeInput(s.name + "_in", shape, true);
      in.note = "the state after layer " + std::to_string(from);
      in.state = static_cast<int>(i);
      stateInputs_.push_back(in);
      v = HV{Func(in.param), shape, true};
      v.stored = true;
      values_[layers[from - 1].results[i]] = v;
    } else if (s.random) {
      InferenceInput in = makeInput(s.name + "0", shape, true);
      in.note = "a draw of the initial " + s.name;
      randomStates_.push_back(in);
      v = HV{Func(in.param), shape, true};
      v.stored = true;
      values_[s.id] = v;
    } else {
      v = perInstance(body(s.init, {})[0]);
      values_[s.id] = v;
    }
    initial.push_back(v.f);
  }
  out.states.push_back(initial);
  for (int64_t l = from; l < to; ++l) {
    const abi::Layer &layer = layers[l];
    std::vector<HV> args;
    for (int64_t id : layer.state)
      args.push_back(get(id));
    const size_t firstProduct = products_.size();
    std::vector<HV> res = body(layer.body, args);
    std::vector<Func> next;
    for (size_t i = 0; i < res.size(); ++i) {
      HV v = perInstance(res[i]);
      // Layer outputs are computed once, not recomputed by every user.
      Func stored("layer" + std::to_string(layer.index) + "_" +
                  out.stateNames[i]);
      std::vector<Var> vs = axes(v.shape.size());
      std::vector<Expr> args(vs.begin(), vs.end());
      Var b("b");
      std::vector<Expr> call = args;
      call.push_back(b);
      std::vector<Var> def = vs;
      def.push_back(b);
      stored(def) = v.f(call);
      v.f = stored;
      v.stored = true;
      values_[layer.results[i]] = v;
      next.push_back(stored);
      // The products that only this output reads are computed inside
      // its tiles, not into arrays of their own that it reads back.
      std::vector<size_t> absorbed;
      for (size_t p = firstProduct; p < products_.size(); ++p)
        if (readOnlyBy(products_[p], layer.body.ops, layer.body.yield[i],
                       v.shape))
          absorbed.push_back(p);
      outputs_.push_back({v, absorbed});
    }
    out.states.push_back(next);
  }
  // Data inputs first, then given ones, then random initial states.
  for (bool data : {true, false})
    for (const abi::Input &in : alg_.inputs) {
      auto it = usedInputs_.find(in.id);
      if (it != usedInputs_.end() && (in.role == abi::Role::Data) == data)
        out.inputs.push_back(it->second);
    }
  for (auto &r : randomStates_)
    out.inputs.push_back(r);
  if (samples_)
    out.inputs.push_back(*samples_);
  for (auto &r : stateInputs_)
    out.inputs.push_back(r);
  for (const InferenceInput &in : out.inputs)
    if (in.batched && !batch_.defined())
      batch_ = in.param.dim(static_cast<int>(in.shape.size())).extent();
  out.products = products_.size();
  out.reductions = reductions_.size() + convs_.size();
  out.reductionsFused = reductionsFused_;
  for (const Output &o : outputs_)
    out.productsInTiles += o.absorbed.size();
  out.schedules = schedules();
  return out;
}

void Lowering::countUses(const std::vector<Op> &ops,
                         const std::vector<int64_t> &yield) {
  for (const Op &op : ops)
    for (int64_t a : op.args)
      ++uses_[a];
  for (int64_t y : yield)
    ++uses_[y];
}

/// Ops in a body, with those of its fused regions.
int64_t Lowering::opsIn(const abi::Body &b) {
  int64_t n = 0;
  abi::forEachOp(b, [&](const Op &) { ++n; });
  return n;
}

/// The minibatches a body draws (ops at its top level, as `lower` meets
/// them).
int64_t Lowering::minibatches(const abi::Body &b) {
  int64_t n = 0;
  for (const Op &op : b.ops)
    n += op.code == OpCode::Minibatch;
  return n;
}

int Lowering::uses(int64_t id) const {
  auto it = uses_.find(id);
  return it == uses_.end() ? 0 : it->second;
}

/// Whether `p` is read once, by the value `yielded` of a layer (of
/// `shape`) itself or by the elementwise op that computes it, which is
/// read by nothing else: then it can be computed in that output's tiles.
bool Lowering::readOnlyBy(const Product &p, const std::vector<Op> &ops,
                          int64_t yielded,
                          const std::vector<int64_t> &shape) const {
  if (uses(p.id) != 1 || shape != std::vector<int64_t>{p.rows})
    return false;
  if (p.id == yielded)
    return true;
  if (uses(yielded) != 1)
    return false;
  for (const Op &op : ops)
    if (op.id == yielded) {
      if (op.code != OpCode::Fused && !abi::isElementwise(op.code))
        return false;
      for (int64_t a : op.args)
        if (a == p.id)
          return true;
    }
  return false;
}

InferenceInput Lowering::makeInput(const std::string &name,
                                   const std::vector<int64_t> &shape,
                                   bool batched) {
  InferenceInput in;
  in.name = name;
  in.shape = shape;
  in.batched = batched;
  in.param = Halide::ImageParam(
      Halide::Float(32), static_cast<int>(shape.size()) + (batched ? 1 : 0),
      name);
  // The axes of an instance are dense and of known sizes (the exported
  // function checks the arrays' lengths): constant strides and extents
  // let Halide index and vectorise without the buffer's. Only the
  // batch's stride varies (a state inside the per-layer outputs).
  int stride = 1;
  for (size_t k = 0; k < shape.size(); ++k) {
    const int d = static_cast<int>(k);
    const int extent = static_cast<int>(shape[shape.size() - 1 - k]);
    in.param.dim(d).set_bounds(0, extent).set_stride(stride);
    stride *= extent;
  }
  if (batched)
    in.param.dim(static_cast<int>(shape.size())).set_min(0);
  return in;
}

void Lowering::bindParam(const abi::Param &p) {
  std::string key = "param." + p.name;
  if (p.layer)
    key += "." + std::to_string(*p.layer);
  const std::vector<int64_t> &shape = p.shape;
  auto it = params_.find(key);
  if (it == params_.end())
    throw ExportError("the checkpoint has no '" + key + "'");
  const Halide::Buffer<float> &buf = it->second;
  bool ok = buf.dimensions() == static_cast<int>(shape.size());
  for (size_t k = 0; ok && k < shape.size(); ++k)
    ok = buf.dim(static_cast<int>(shape.size() - 1 - k)).extent() == shape[k];
  if (!ok)
    throw ExportError("the checkpoint's '" + key +
                      "' does not have the shape the program expects");
  std::string fname = key; // Halide reserves '.' in names
  std::replace(fname.begin(), fname.end(), '.', '_');
  Func f(fname);
  std::vector<Var> vs = axes(shape.size());
  f(vs) = buf(std::vector<Expr>(vs.begin(), vs.end()));
  values_[p.id] = HV{f, shape, false, buf, true};
  values_[p.id].foldable = true;
}

HV Lowering::get(int64_t id) {
  auto it = values_.find(id);
  if (it != values_.end())
    return it->second;
  if (auto in = inputsById_.find(id); in != inputsById_.end()) {
    const abi::Input &j = *in->second;
    InferenceInput input =
        makeInput(j.name, j.shape, j.role == abi::Role::Data);
    usedInputs_[id] = input;
    HV v{Func(input.param), input.shape, input.batched};
    v.stored = true;
    values_[id] = v;
    return v;
  }
  if (auto p = prelude_.find(id); p != prelude_.end()) {
    lower(*p->second);
    return values_.at(id);
  }
  throw ExportError("export: the program uses value " + std::to_string(id) +
                    " before it is defined");
}

/// `v`, a reduction: computed once and stored.
HV Lowering::reduction(HV v) {
  v.reduction = static_cast<int>(reductions_.size());
  reductions_.push_back(v);
  v.stored = true;
  return v;
}

/// `r`, an op of `op` applied element by element to `a`, stored in place
/// of the one reduction among `a` that nothing else reads (the others
/// cheap to read, and none broadcast): the reduction's sums are then
/// computed inside r's loops instead of into an array of their own that
/// r reads back. GLOW-Prox's ReLU after each coupling's first
/// convolution was such a pass over its hidden channels.
HV Lowering::fuseReduction(const Op &op, const std::vector<HV> &a, HV r) {
  int fused = -1;
  for (size_t i = 0; i < a.size(); ++i) {
    if ((a[i].reduction >= 0 || a[i].conv >= 0) && uses(op.args[i]) == 1 &&
        a[i].shape == r.shape && a[i].batched == r.batched && fused < 0) {
      fused = static_cast<int>(i);
      continue;
    }
    if (!a[i].stored)
      return r;
  }
  if (fused < 0)
    return r;
  r.stored = true;
  if (a[fused].conv >= 0) {
    // The op's loops are the convolution's tiles.
    r.conv = a[fused].conv;
    convs_[r.conv].out = r.f;
  } else {
    r.reduction = a[fused].reduction;
    reductions_[r.reduction] = r;
  }
  ++reductionsFused_;
  return r;
}

/// `v` as an operand that a reduction reads many times: stored first
/// unless reading it is already cheap. SURF's per-agent products read a
/// minibatch's gathered samples and the softmax's exponentials that way;
/// recomputed for every term they took most of its exported forward.
HV Lowering::operand(HV v) {
  if (!v.stored && operandNames_.insert(v.f.name()).second)
    operands_.push_back(v);
  v.stored = true;
  return v;
}

/// A per-instance value (a shared one repeated over the batch).
HV Lowering::perInstance(const HV &v) {
  if (v.batched)
    return v;
  Func f;
  std::vector<Var> vs = axes(v.shape.size());
  std::vector<Var> def = vs;
  def.push_back(Var("b"));
  f(def) = v.f(std::vector<Expr>(vs.begin(), vs.end()));
  HV out{f, v.shape, true};
  out.stored = v.stored;
  return out;
}

std::vector<HV> Lowering::body(const abi::Body &b,
                               const std::vector<HV> &args) {
  for (size_t i = 0; i < args.size(); ++i)
    values_[b.args[i]] = args[i];
  for (const Op &op : b.ops)
    lower(op);
  std::vector<HV> out;
  for (int64_t y : b.yield)
    out.push_back(get(y));
  return out;
}

/// Defines a Func of `shape` (batched if `batched`) from an expression
/// of its coordinates (tensor order) and the batch variable.
HV Lowering::define(
    const std::vector<int64_t> &shape, bool batched,
    const std::function<Expr(const std::vector<Expr> &, Expr)> &e) {
  std::vector<Var> vs = axes(shape.size());
  std::vector<Expr> idx;
  for (size_t k = 0; k < shape.size(); ++k)
    idx.push_back(vs[shape.size() - 1 - k]);
  Var b("b");
  std::vector<Var> def = vs;
  if (batched)
    def.push_back(b);
  Func f;
  f(def) = e(idx, b);
  return HV{f, shape, batched};
}

void Lowering::lower(const Op &op) {
  const OpCode code = op.code;
  std::vector<HV> a;
  for (int64_t id : op.args)
    a.push_back(get(id));
  const std::vector<int64_t> &shape = op.shape;
  bool batched = false;
  for (const HV &v : a)
    batched |= v.batched;
  HV r;
  if (code == OpCode::Constant) {
    float c = static_cast<float>(op.value);
    r = define(shape, false, [&](auto &, Expr) { return Expr(c); });
    r.stored = true;
  } else if (code == OpCode::Fill) {
    // A scalar spread over the shape.
    r = define(shape, a[0].batched,
               [&](auto &, Expr b) { return at(a[0], {}, {}, b); });
    r.stored = a[0].stored;
  } else if (code == OpCode::Eye) {
    r = define(shape, false, [&](auto &idx, Expr) {
      return Halide::select(idx[0] == idx[1], 1.f, 0.f);
    });
    r.stored = true;
  } else if (code == OpCode::Probe) {
    return; // a named value for training; no new value
  } else if (code == OpCode::Transpose) {
    r = define(shape, a[0].batched, [&](auto &idx, Expr b) {
      std::vector<Expr> t = idx;
      std::swap(t[t.size() - 1], t[t.size() - 2]);
      return at(a[0], t, a[0].shape, b);
    });
    // A trained matrix stays a constant (for products to pack it here).
    if (a[0].constant.defined() && shape.size() == 2)
      r.constant = a[0].constant.transposed(0, 1);
  } else if (code == OpCode::Matmul) {
    r = matmul(a[0], a[1], shape, batched, op.id);
  } else if (code == OpCode::Fused || abi::isElementwise(code)) {
    r = define(shape, batched, [&](auto &idx, Expr b) {
      std::vector<Expr> args;
      for (const HV &v : a)
        args.push_back(at(v, idx, shape, b));
      return code == OpCode::Fused ? fusedExpr(*op.body, args)
                                   : elementwise(op, args);
    });
    r = fuseReduction(op, a, r);
  } else if (code == OpCode::Slice) {
    const int64_t axis = *op.axis;
    const int start = static_cast<int>(op.start);
    r = define(shape, batched, [&](auto &idx, Expr b) {
      std::vector<Expr> t = idx;
      t[axis] = t[axis] + start;
      return at(a[0], t, a[0].shape, b);
    });
    r.stored = a[0].stored;
  } else if (code == OpCode::Concat) {
    const int64_t axis = *op.axis;
    r = define(shape, batched, [&](auto &idx, Expr b) {
      // The last part, then the earlier ones where the index is below
      // their ends.
      std::vector<int64_t> ends;
      int64_t end = 0;
      for (const HV &v : a)
        ends.push_back(end += v.shape[axis]);
      Expr e;
      for (size_t k = a.size(); k-- > 0;) {
        std::vector<Expr> t = idx;
        const int64_t begin = ends[k] - a[k].shape[axis];
        t[axis] = Halide::clamp(t[axis] - static_cast<int>(begin), 0,
                                static_cast<int>(a[k].shape[axis] - 1));
        Expr part = at(a[k], t, a[k].shape, b);
        e = e.defined()
                ? Halide::select(idx[axis] < static_cast<int>(ends[k]), part, e)
                : part;
      }
      return e;
    });
  } else if (code == OpCode::Squeeze2d) {
    // y[4c + 2di + dj, i, j] = x[c, 2i + di, 2j + dj].
    r = define(shape, batched, [&](auto &idx, Expr b) {
      Expr c = idx[0];
      return at(a[0], {c / 4, 2 * idx[1] + (c % 4) / 2, 2 * idx[2] + c % 2},
                a[0].shape, b);
    });
  } else if (code == OpCode::Unsqueeze2d) {
    r = define(shape, batched, [&](auto &idx, Expr b) {
      Expr h = idx[1], w = idx[2];
      return at(a[0], {4 * idx[0] + 2 * (h % 2) + w % 2, h / 2, w / 2},
                a[0].shape, b);
    });
  } else if (code == OpCode::Conv1x1) {
    // [co, c] applied at every pixel of [c, h, w].
    a[0] = operand(a[0]);
    a[1] = operand(a[1]);
    Halide::RDom c(0, static_cast<int>(a[1].shape[1]), "c");
    r = define(shape, batched, [&](auto &idx, Expr b) {
      return Halide::sum(at(a[1], {idx[0], c.x}, a[1].shape, b) *
                         at(a[0], {c.x, idx[1], idx[2]}, a[0].shape, b));
    });
    r = reduction(r);
  } else if (code == OpCode::Conv2d) {
    r = conv2d(a[0], a[1], shape, batched);
  } else if (code == OpCode::Inverse) {
    r = inverse(a[0]);
  } else if (code == OpCode::StopGradient) {
    r = a[0]; // no backward pass in an exported model
  } else if (code == OpCode::Expand) {
    const int64_t axis = *op.axis;
    r = define(shape, a[0].batched, [&](auto &idx, Expr b) {
      std::vector<Expr> t = idx;
      t.erase(t.begin() + axis);
      return at(a[0], t, a[0].shape, b);
    });
    r.stored = a[0].stored;
  } else if (code == OpCode::Softmax) {
    r = softmax(a[0], *op.axis);
  } else if (code == OpCode::GraphFilter) {
    r = graphFilter(a[0], a[1], a[2]);
  } else if (code == OpCode::Minibatch) {
    minibatch(op, a);
    return;
  } else {
    throw ExportError(std::string("export does not support the op '") +
                      abi::opName(code) + "' yet (used by the layers of '" +
                      alg_.name + "')");
  }
  // Numbers and parameters in, a number out: a constant of the model (a
  // draw is not, even of constant parameters).
  r.foldable =
      !batched && code != OpCode::Random && code != OpCode::LayerIndex &&
      std::all_of(a.begin(), a.end(), [](const HV &v) { return v.foldable; });
  values_[op.id] = r;
}

} // namespace unroll::compiler::lowering

namespace unroll::compiler {

InferencePipeline
lowerForInference(const abi::Plan &plan,
                  const std::map<std::string, Halide::Buffer<float>> &params,
                  const StateRange &range) {
  for (const abi::Algorithm &alg : plan.algorithms)
    if (alg.train || plan.algorithms.size() == 1)
      return lowering::Lowering(alg, params).run(range);
  throw ExportError("the program has no trained algorithm");
}

} // namespace unroll::compiler
