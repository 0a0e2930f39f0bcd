#include "compiler/kernels/InferenceLowering.h"

#include "compiler/kernels/CudaKernels.h"

#include "compiler/kernels/HalideKernels.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <functional>
#include <optional>
#include <set>

namespace unroll::compiler {

using Halide::Expr;
using Halide::Func;
using Halide::Var;
using nlohmann::json;

namespace {

/// Below this batch size a product's tiles of rows are shared among the
/// threads instead of its blocks of instances, which are too few to keep
/// the threads busy.
constexpr int kRowParallelBatch = 32;

/// Rows of a product's tile, and of the panels constant weights are packed
/// into: two AVX-512 vectors.
constexpr int kPanelRows = 32;

/// Elements a thread computes per task of a stored value: tasks of one
/// short row each (SURF's 65 floats) are taken by the threads in turn, and
/// the rows' shared cache lines went back and forth between them.
constexpr int64_t kTaskElements = 8192;

/// Multiply-adds a thread does per task of a product's tiles.
constexpr int64_t kTaskMultiplyAdds = 1 << 18;

/// A value while lowering: a Func over its axes (innermost first) and, if
/// per instance, the batch axis last.
struct HV {
  Func f;
  std::vector<int64_t> shape;
  bool batched = false;
  /// The checkpoint's values, when f reads a parameter directly.
  Halide::Buffer<float> constant;
  /// Whether reading f is cheap: it is stored (an input, a parameter, a
  /// layer output, a reduction or a product), or reads one stored value
  /// along the same innermost axis (a slice, an expansion; not a
  /// transpose, which a reduction vectorised along that axis would
  /// gather). A reduction stores the operands that are not, so that it
  /// does not recompute them for every term of its sums.
  bool stored = false;
  /// Where f is a reduction's value, its index among the reductions; a
  /// convolution's, among the convolutions.
  int reduction = -1, conv = -1;
};

/// A 3-D convolution's Funcs (conv2d): `acc` sums the taps (an update over
/// `r`) for a few output channels and one vector of pixels at a time, in
/// registers; `out` stores it (or an element-by-element op of it that is
/// its only reader).
struct Conv {
  Func out, acc;
  Halide::RDom r;
  int64_t channels = 0, width = 0;
};

/// Computes `v` (values per instance or shared) once, vectorised along its
/// innermost axis and parallel over its outermost axis and the instances
/// (with `batchTasks`, tasks of that many instances if it has no other
/// axis).
void scheduleStored(const HV &v, const Halide::Target &t, int batchTasks = 1) {
  Func f = v.f;
  f.compute_root();
  if (t.has_gpu_feature()) {
    scheduleForGpu(f);
    return;
  }
  std::vector<Var> args = f.args();
  if (args.empty())
    return; // one shared number
  if (!v.shape.empty()) {
    // Vectors that fit the innermost axis, the last one shifted inwards
    // (overlapping the one before): guarded instead, a vector that holds
    // fewer elements than its lanes has its inline sums computed one
    // element at a time. SURF's per-agent products (10 columns) ran at
    // scalar speed so.
    const int n = static_cast<int>(v.shape.back());
    f.bound(args[0], 0, n);
    int lanes = t.natural_vector_size<float>();
    while (lanes > n)
      lanes /= 2;
    if (lanes > 1)
      f.vectorize(args[0], lanes, Halide::TailStrategy::ShiftInwards);
  }
  if (args.size() > 2) {
    // A batch of one instance uses every thread too.
    Var tasks("tasks");
    int64_t row = 1;
    for (size_t k = 0; k + 2 < args.size(); ++k)
      row *= v.shape[v.shape.size() - 1 - k];
    const int rowsPerTask = static_cast<int>(
        std::max<int64_t>(1, kTaskElements / std::max<int64_t>(1, row)));
    f.fuse(args[args.size() - 2], args.back(), tasks)
        .parallel(tasks, rowsPerTask, Halide::TailStrategy::GuardWithIf);
  } else if (args.size() == 2) {
    f.parallel(args.back(), batchTasks, Halide::TailStrategy::GuardWithIf);
  }
  if (v.shape.empty()) // values per instance: vectors of instances
    f.vectorize(args[0], t.natural_vector_size<float>(),
                Halide::TailStrategy::GuardWithIf);
}

/// The Funcs of one product of a shared W over the batch (sharedProduct),
/// kept unscheduled until it is known whether the product gets tiles of its
/// own or is computed inside the tiles of the layer output that is its
/// only reader.
struct Product {
  int64_t id = -1; ///< the matmul op's
  Func out, acc, yt, packed;
  Var row, col, panel;
  Halide::RDom r;
  int64_t rows = 0;
  int panels = 0;
  bool constant = false; ///< W packed at export time
  /// Columns (vectors multiplied) per instance.
  int64_t columns = 1;
  /// The length of the sums (W's columns).
  int64_t depth = 0;
};

/// Ops that combine their operands element by element (with broadcasting),
/// lowered by `elementwise`.
bool isElementwise(const std::string &name) {
  return name == "add" || name == "sub" || name == "mul" || name == "div" ||
         name == "pow" || name == "max" || name == "min" || name == "unary";
}

std::vector<Var> axes(size_t rank) {
  std::vector<Var> v;
  for (size_t i = 0; i < rank; ++i)
    v.emplace_back("x" + std::to_string(i));
  return v;
}

/// `v` read at result coordinates `idx` (tensor order, the result's rank)
/// with right-aligned broadcasting, and at batch `b` if it is per instance.
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

class Lowering {
public:
  Lowering(const json &alg,
           const std::map<std::string, Halide::Buffer<float>> &params)
      : alg_(alg), params_(params) {
    for (const json &op : alg["prelude"])
      prelude_[op["id"].get<int64_t>()] = &op;
    countUses(alg["prelude"], json::array());
    for (const json &s : alg["states"])
      if (s.contains("init"))
        countUses(s["init"]["ops"], s["init"]["yield"]);
    for (const json &layer : alg["layers"])
      countUses(layer["body"]["ops"], layer["body"]["yield"]);
  }

  InferencePipeline run(const StateRange &range) {
    InferencePipeline out;
    out.algorithm = alg_["name"];
    const json &layers = alg_["layers"];
    out.layers = static_cast<int64_t>(layers.size());
    const int64_t from = range.from, to = range.to < 0 ? out.layers : range.to;
    assert(0 <= from && from <= to && to <= out.layers);
    out.firstState = from;
    for (const json &layer : layers)
      out.layerOps += opsIn(layer["body"]);
    for (const json &in : alg_["inputs"])
      inputsById_[in["id"].get<int64_t>()] = &in;
    for (const json &p : alg_["params"])
      bindParam(p);
    // The layers before the range drew their minibatches first.
    if (from > 0) {
      for (const json &s : alg_["states"])
        if (s.contains("init"))
          draws_ += minibatches(s["init"]);
      for (int64_t l = 0; l < from; ++l)
        draws_ += minibatches(layers[l]["body"]);
    }
    // States: drawn at random -> an input; otherwise their init body; or,
    // after the first layer, an input of the state's value there.
    std::vector<Func> initial;
    for (const json &s : alg_["states"]) {
      const size_t i = out.stateNames.size();
      std::vector<int64_t> shape = s["shape"].get<std::vector<int64_t>>();
      out.stateNames.push_back(s["name"]);
      out.stateShapes.push_back(shape);
      HV v;
      if (from > 0) {
        InferenceInput in =
            makeInput(s["name"].get<std::string>() + "_in", shape, true);
        in.note = "the state after layer " + std::to_string(from);
        in.state = static_cast<int>(i);
        stateInputs_.push_back(in);
        v = HV{Func(in.param), shape, true};
        v.stored = true;
        values_[layers[from - 1]["results"][i].get<int64_t>()] = v;
      } else if (s.value("random", false)) {
        InferenceInput in =
            makeInput(s["name"].get<std::string>() + "0", shape, true);
        in.note = "a draw of the initial " + s["name"].get<std::string>();
        randomStates_.push_back(in);
        v = HV{Func(in.param), shape, true};
        v.stored = true;
        values_[s["id"].get<int64_t>()] = v;
      } else {
        v = perInstance(body(s["init"], {})[0]);
        values_[s["id"].get<int64_t>()] = v;
      }
      initial.push_back(v.f);
    }
    out.states.push_back(initial);
    for (int64_t l = from; l < to; ++l) {
      const json &layer = layers[l];
      std::vector<HV> args;
      for (const json &id : layer["state"])
        args.push_back(get(id.get<int64_t>()));
      const size_t firstProduct = products_.size();
      std::vector<HV> res = body(layer["body"], args);
      std::vector<Func> next;
      for (size_t i = 0; i < res.size(); ++i) {
        HV v = perInstance(res[i]);
        // Layer outputs are computed once, not recomputed by every user.
        Func stored("layer" + layer["index"].dump() + "_" + out.stateNames[i]);
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
        values_[layer["results"][i].get<int64_t>()] = v;
        next.push_back(stored);
        // The products that only this output reads are computed inside
        // its tiles, not into arrays of their own that it reads back.
        std::vector<size_t> absorbed;
        for (size_t p = firstProduct; p < products_.size(); ++p)
          if (readOnlyBy(products_[p], layer["body"]["ops"],
                         layer["body"]["yield"][i].get<int64_t>(), v.shape))
            absorbed.push_back(p);
        outputs_.push_back({v, absorbed});
      }
      out.states.push_back(next);
    }
    // Data inputs first, then given ones, then random initial states.
    for (bool data : {true, false})
      for (const json &in : alg_["inputs"]) {
        auto it = usedInputs_.find(in["id"].get<int64_t>());
        if (it != usedInputs_.end() && (in["role"] == "data") == data)
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

private:
  /// A layer's stored output and the products computed in its tiles
  /// (indices into products_).
  struct Output {
    HV v;
    std::vector<size_t> absorbed;
  };

  void countUses(const json &ops, const json &yield) {
    for (const json &op : ops)
      for (const json &a : op["args"])
        ++uses_[a.get<int64_t>()];
    for (const json &y : yield)
      ++uses_[y.get<int64_t>()];
  }

  /// Ops in a body, with those of its fused regions.
  static int64_t opsIn(const json &b) {
    int64_t n = 0;
    for (const json &op : b["ops"])
      n += 1 + (op.contains("body") ? opsIn(op["body"]) : 0);
    return n;
  }

  /// The minibatches a body draws (ops at its top level, as `lower` meets
  /// them).
  static int64_t minibatches(const json &b) {
    int64_t n = 0;
    for (const json &op : b["ops"])
      n += op["op"] == "minibatch";
    return n;
  }

  int uses(int64_t id) const {
    auto it = uses_.find(id);
    return it == uses_.end() ? 0 : it->second;
  }

  /// Whether `p` is read once, by the value `yielded` of a layer (of
  /// `shape`) itself or by the elementwise op that computes it, which is
  /// read by nothing else: then it can be computed in that output's tiles.
  bool readOnlyBy(const Product &p, const json &ops, int64_t yielded,
                  const std::vector<int64_t> &shape) const {
    if (uses(p.id) != 1 || shape != std::vector<int64_t>{p.rows})
      return false;
    if (p.id == yielded)
      return true;
    if (uses(yielded) != 1)
      return false;
    for (const json &op : ops)
      if (op["id"].get<int64_t>() == yielded) {
        const std::string name = op["op"];
        if (name != "fused" && !isElementwise(name))
          return false;
        for (const json &a : op["args"])
          if (a.get<int64_t>() == p.id)
            return true;
      }
    return false;
  }

  /// Every schedule of the pipeline: the products', the other
  /// reductions', then the layer outputs'.
  std::vector<std::function<void(const Halide::Target &)>> schedules() {
    std::vector<bool> inTiles(products_.size(), false);
    for (const Output &o : outputs_)
      for (size_t p : o.absorbed)
        inTiles[p] = true;
    std::vector<std::function<void(const Halide::Target &)>> out;
    Expr batch = batch_;
    for (size_t p = 0; p < products_.size(); ++p) {
      Product prod = products_[p];
      bool absorbed = inTiles[p];
      out.push_back([prod, absorbed, batch](const Halide::Target &t) mutable {
        const bool gpu = t.has_gpu_feature();
        if (absorbed && !gpu)
          return; // the output's tiles compute it
        // Exact bounds: the columns' extent inferred from readers that
        // decode column numbers does not simplify, and the register tile
        // needs to know its blocks have 8 columns.
        const Expr columns =
            batch.defined() ? batch * static_cast<int>(prod.columns) : Expr();
        prod.out.bound(prod.out.args()[0], 0, static_cast<int>(prod.rows));
        if (columns.defined())
          prod.out.bound(prod.col, 0, columns);
        if (gpu) {
          // One GPU thread per output, summing over k on its own.
          if (!prod.constant) {
            prod.packed.compute_root().bound(prod.panel, 0, prod.panels);
            scheduleForGpu(prod.packed);
          }
          prod.out.compute_root();
          Var thread = scheduleForGpu(prod.out);
          prod.acc.compute_at(prod.out, thread);
        } else {
          tile(prod.out, {prod}, t, columns);
        }
      });
    }
    // The reductions are vectorised with the inline sums (every reduction
    // here is one): scalar sums would leave the vector units idle.
    for (const HV &v : reductions_)
      out.push_back([v](const Halide::Target &t) { scheduleStored(v, t); });
    for (const Conv &c : convs_)
      out.push_back([c](const Halide::Target &t) { scheduleConv(c, t); });
    for (const HV &v : operands_)
      out.push_back([v](const Halide::Target &t) { scheduleStored(v, t, 16); });
    for (const Output &o : outputs_) {
      Output output = o;
      std::vector<Product> parts;
      for (size_t p : o.absorbed)
        parts.push_back(products_[p]);
      out.push_back([output, parts, batch](const Halide::Target &t) mutable {
        if (!t.has_gpu_feature() && !parts.empty())
          tile(output.v.f, parts, t, batch);
        else // tasks of 16 instances of a vector: one row is too little
          scheduleStored(output.v, t, 16);
      });
    }
    return out;
  }

  /// Computes `owner` (rows by columns: a layer output's vector per
  /// instance, or a product's columns, `batch` of them if defined) in tiles
  /// of one panel's rows by 8 columns, and inside each tile the sums of
  /// `parts` (products with the same rows) in registers over their whole k
  /// loops, each streaming its packed panel.
  static void tile(Func owner, const std::vector<Product> &parts,
                   const Halide::Target &t, const Expr &batch) {
    const int vec = t.natural_vector_size<float>();
    const auto guard = Halide::TailStrategy::GuardWithIf;
    Var i = owner.args()[0], b = owner.args()[1];
    Var io("io"), ii("ii"), bo("bo"), bi("bi");
    // Tiles start at multiples of kPanelRows: one tile, one panel.
    // From kRowParallelBatch instances on, the last block of instances
    // shifts inwards (recomputing some) so that every tile has 8 and the
    // register tile carries no guards; below, it is guarded and the
    // tiles of rows are shared among the threads instead of the blocks
    // of instances, which are too few to keep them busy.
    auto tileRows = [&](Halide::Stage s, Halide::TailStrategy instances) {
      s.split(i, io, ii, kPanelRows, guard)
          .split(b, bo, bi, 8, instances)
          .reorder(ii, bi, io, bo)
          .vectorize(ii, vec, guard)
          .unroll(ii)
          .unroll(bi);
    };
    owner.compute_root();
    if (batch.defined()) {
      Halide::Stage small = owner.specialize(batch < kRowParallelBatch);
      tileRows(small, guard);
      small.parallel(io);
      tileRows(owner, Halide::TailStrategy::ShiftInwards);
      // Tasks of several blocks of columns where a block is little work
      // (SURF's: a few microseconds, about what the thread pool takes to
      // hand a task out), yet at least 16 tasks.
      int64_t blockWork = 0;
      for (const Product &p : parts)
        blockWork += p.panels * kPanelRows * 8 * p.depth;
      const int perTask = static_cast<int>(std::max<int64_t>(
          1, kTaskMultiplyAdds / std::max<int64_t>(1, blockWork)));
      Var task("task");
      owner
          .split(bo, task, bo,
                 Halide::max(1, Halide::min(perTask, batch / (8 * 16))),
                 Halide::TailStrategy::GuardWithIf)
          .parallel(task);
    } else {
      // No input is per instance (the layers read no data and the initial
      // state is not drawn): the batch is only the output's extent, which
      // may be below a block.
      tileRows(owner, guard);
      owner.parallel(io);
    }
    for (Product p : parts) {
      if (!p.constant)
        p.packed.compute_root()
            .bound(p.panel, 0, p.panels)
            .vectorize(p.row, vec)
            .parallel(p.panel);
      p.yt.compute_at(owner, bo).bound_storage(p.col, 8);
      // A tile's accumulators cover its whole panel (the padding rows are
      // zeros or copies) and have the same size in every tile and every
      // specialisation: a constant-size stack array the compiler keeps in
      // registers, not a heap allocation sized per tile.
      p.acc.compute_at(owner, io)
          .bound(p.row, 0, kPanelRows)
          .bound_storage(p.col, 8)
          .store_in(Halide::MemoryType::Stack)
          .vectorize(p.row, vec)
          .unroll(p.row)
          .unroll(p.col);
      p.acc.update()
          .reorder(p.row, p.col, p.r.x, p.panel)
          .vectorize(p.row, vec)
          .unroll(p.row)
          .unroll(p.col);
    }
  }

  InferenceInput makeInput(const std::string &name,
                           const std::vector<int64_t> &shape, bool batched) {
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

  void bindParam(const json &p) {
    std::string key = "param." + p["name"].get<std::string>();
    if (p.contains("layer"))
      key += "." + std::to_string(p["layer"].get<int64_t>());
    std::vector<int64_t> shape = p["shape"].get<std::vector<int64_t>>();
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
    values_[p["id"].get<int64_t>()] = HV{f, shape, false, buf, true};
  }

  HV get(int64_t id) {
    auto it = values_.find(id);
    if (it != values_.end())
      return it->second;
    if (auto in = inputsById_.find(id); in != inputsById_.end()) {
      const json &j = *in->second;
      InferenceInput input =
          makeInput(j["name"], j["shape"].get<std::vector<int64_t>>(),
                    j["role"] == "data");
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
  HV reduction(HV v) {
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
  HV fuseReduction(const json &op, const std::vector<HV> &a, HV r) {
    int fused = -1;
    for (size_t i = 0; i < a.size(); ++i) {
      if ((a[i].reduction >= 0 || a[i].conv >= 0) &&
          uses(op["args"][i].get<int64_t>()) == 1 && a[i].shape == r.shape &&
          a[i].batched == r.batched && fused < 0) {
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
  HV operand(HV v) {
    if (!v.stored && operandNames_.insert(v.f.name()).second)
      operands_.push_back(v);
    v.stored = true;
    return v;
  }

  /// A per-instance value (a shared one repeated over the batch).
  HV perInstance(const HV &v) {
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

  std::vector<HV> body(const json &b, const std::vector<HV> &args) {
    for (size_t i = 0; i < args.size(); ++i)
      values_[b["args"][i].get<int64_t>()] = args[i];
    for (const json &op : b["ops"])
      lower(op);
    std::vector<HV> out;
    for (const json &y : b["yield"])
      out.push_back(get(y.get<int64_t>()));
    return out;
  }

  /// Defines a Func of `shape` (batched if `batched`) from an expression
  /// of its coordinates (tensor order) and the batch variable.
  HV define(const std::vector<int64_t> &shape, bool batched,
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

  void lower(const json &op) {
    const std::string name = op["op"];
    std::vector<HV> a;
    for (const json &id : op["args"])
      a.push_back(get(id.get<int64_t>()));
    std::vector<int64_t> shape = op.contains("shape")
                                     ? op["shape"].get<std::vector<int64_t>>()
                                     : std::vector<int64_t>{};
    bool batched = false;
    for (const HV &v : a)
      batched |= v.batched;
    HV r;
    if (name == "constant") {
      float c = op["value"].get<float>();
      r = define(shape, false, [&](auto &, Expr) { return Expr(c); });
      r.stored = true;
    } else if (name == "fill") {
      // A scalar spread over the shape.
      r = define(shape, a[0].batched,
                 [&](auto &, Expr b) { return at(a[0], {}, {}, b); });
      r.stored = a[0].stored;
    } else if (name == "eye") {
      r = define(shape, false, [&](auto &idx, Expr) {
        return Halide::select(idx[0] == idx[1], 1.f, 0.f);
      });
      r.stored = true;
    } else if (name == "probe") {
      return; // a named value for training; no new value
    } else if (name == "transpose") {
      r = define(shape, a[0].batched, [&](auto &idx, Expr b) {
        std::vector<Expr> t = idx;
        std::swap(t[t.size() - 1], t[t.size() - 2]);
        return at(a[0], t, a[0].shape, b);
      });
      // A trained matrix stays a constant (for products to pack it here).
      if (a[0].constant.defined() && shape.size() == 2)
        r.constant = a[0].constant.transposed(0, 1);
    } else if (name == "matmul") {
      r = matmul(a[0], a[1], shape, batched, op["id"].get<int64_t>());
    } else if (name == "fused") {
      const json &body = op["body"];
      r = define(shape, batched, [&](auto &idx, Expr b) {
        std::vector<Expr> operands;
        for (const HV &v : a)
          operands.push_back(at(v, idx, shape, b));
        return fusedExpr(body, operands);
      });
      r = fuseReduction(op, a, r);
    } else if (isElementwise(name)) {
      r = define(shape, batched, [&](auto &idx, Expr b) {
        std::vector<Expr> args;
        for (const HV &v : a)
          args.push_back(at(v, idx, shape, b));
        return elementwise(op, args);
      });
      r = fuseReduction(op, a, r);
    } else if (name == "slice") {
      const int64_t axis = op["axis"].get<int64_t>();
      const int start = static_cast<int>(op["start"].get<int64_t>());
      r = define(shape, batched, [&](auto &idx, Expr b) {
        std::vector<Expr> t = idx;
        t[axis] = t[axis] + start;
        return at(a[0], t, a[0].shape, b);
      });
      r.stored = a[0].stored;
    } else if (name == "concat") {
      const int64_t axis = op["axis"].get<int64_t>();
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
          e = e.defined() ? Halide::select(
                                idx[axis] < static_cast<int>(ends[k]), part, e)
                          : part;
        }
        return e;
      });
    } else if (name == "squeeze2d") {
      // y[4c + 2di + dj, i, j] = x[c, 2i + di, 2j + dj].
      r = define(shape, batched, [&](auto &idx, Expr b) {
        Expr c = idx[0];
        return at(a[0], {c / 4, 2 * idx[1] + (c % 4) / 2, 2 * idx[2] + c % 2},
                  a[0].shape, b);
      });
    } else if (name == "unsqueeze2d") {
      r = define(shape, batched, [&](auto &idx, Expr b) {
        Expr h = idx[1], w = idx[2];
        return at(a[0], {4 * idx[0] + 2 * (h % 2) + w % 2, h / 2, w / 2},
                  a[0].shape, b);
      });
    } else if (name == "conv1x1") {
      // [co, c] applied at every pixel of [c, h, w].
      a[0] = operand(a[0]);
      a[1] = operand(a[1]);
      Halide::RDom c(0, static_cast<int>(a[1].shape[1]), "c");
      r = define(shape, batched, [&](auto &idx, Expr b) {
        return Halide::sum(at(a[1], {idx[0], c.x}, a[1].shape, b) *
                           at(a[0], {c.x, idx[1], idx[2]}, a[0].shape, b));
      });
      r = reduction(r);
    } else if (name == "conv2d") {
      r = conv2d(a[0], a[1], shape, batched);
    } else if (name == "inverse") {
      r = inverse(a[0]);
    } else if (name == "expand") {
      const int64_t axis = op["axis"].get<int64_t>();
      r = define(shape, a[0].batched, [&](auto &idx, Expr b) {
        std::vector<Expr> t = idx;
        t.erase(t.begin() + axis);
        return at(a[0], t, a[0].shape, b);
      });
      r.stored = a[0].stored;
    } else if (name == "softmax") {
      r = softmax(a[0], op["axis"].get<int64_t>());
    } else if (name == "graph_filter") {
      r = graphFilter(a[0], a[1], a[2]);
    } else if (name == "minibatch") {
      minibatch(op, a);
      return;
    } else {
      throw ExportError("export does not support the op '" + name +
                        "' yet (used by the layers of '" +
                        alg_["name"].get<std::string>() + "')");
    }
    values_[op["id"].get<int64_t>()] = r;
  }

  /// x [ci, h, w] convolved with a shared kernel k [co, ci, kh, kw], zero
  /// padded to keep h and w (as the runtime's conv2d).
  HV conv2d(const HV &x, const HV &k, const std::vector<int64_t> &shape,
            bool batched) {
    if (k.batched || x.shape.size() != 3 || k.shape.size() != 4)
      throw ExportError("export supports conv2d of an image with a shared "
                        "kernel only");
    const int ci = static_cast<int>(k.shape[1]);
    const int kh = static_cast<int>(k.shape[2]),
              kw = static_cast<int>(k.shape[3]);
    const int h = static_cast<int>(x.shape[1]),
              w = static_cast<int>(x.shape[2]);
    // The image zero-padded, stored: each tap then reads a plain vector
    // of pixels (a tap of the image itself, clamped at the borders and
    // selected, is a gather).
    HV padded = define({x.shape[0], h + kh - 1, w + kw - 1}, x.batched,
                       [&](auto &idx, Expr b) {
                         Expr y = idx[1] - kh / 2, xx = idx[2] - kw / 2;
                         Expr inside = y >= 0 && y < h && xx >= 0 && xx < w;
                         Expr pixel = at(x,
                                         {idx[0], Halide::clamp(y, 0, h - 1),
                                          Halide::clamp(xx, 0, w - 1)},
                                         x.shape, b);
                         return Halide::select(inside, pixel, 0.0f);
                       });
    padded = operand(padded);
    Conv c;
    c.r = Halide::RDom(0, ci, 0, kh, 0, kw, "tap");
    c.channels = shape[0];
    c.width = shape[2];
    std::vector<Var> vs = axes(3);
    std::vector<Var> def = vs;
    Var b("b");
    if (batched)
      def.push_back(b);
    std::vector<Expr> idx{vs[2], vs[1], vs[0]};
    c.acc = Func("conv");
    c.acc(def) = 0.0f;
    c.acc(def) +=
        at(k, {idx[0], c.r.x, c.r.y, c.r.z}, k.shape, b) *
        at(padded, {c.r.x, idx[1] + c.r.y, idx[2] + c.r.z}, padded.shape, b);
    c.out = Func("conv_out");
    c.out(def) = c.acc(std::vector<Expr>(def.begin(), def.end()));
    HV out{c.out, shape, batched};
    out.stored = true;
    out.conv = static_cast<int>(convs_.size());
    convs_.push_back(c);
    return out;
  }

  /// Schedules convolution `c`: `out` in tiles of one vector of pixels by
  /// a block of output channels, parallel over the blocks, rows and
  /// instances; in each tile the taps accumulate in registers (a vector
  /// read of the padded image, then one multiply-add per channel of the
  /// block). Summed per output vector instead, each tap read a vector
  /// and a weight for one multiply-add.
  static void scheduleConv(Conv c, const Halide::Target &t) {
    Func out = c.out;
    out.compute_root();
    if (t.has_gpu_feature()) {
      Var thread = scheduleForGpu(out);
      c.acc.compute_at(out, thread);
      return;
    }
    std::vector<Var> args = out.args(); // w, h, co[, b]
    const int width = static_cast<int>(c.width);
    int lanes = t.natural_vector_size<float>();
    while (lanes > width)
      lanes /= 2;
    int block = 8;
    while (c.channels % block != 0)
      block /= 2;
    Var w = args[0], h = args[1], co = args[2];
    Var wo("wo"), wi("wi"), coo("coo"), coi("coi"), task("task");
    out.bound(w, 0, width)
        .bound(co, 0, static_cast<int>(c.channels))
        .split(w, wo, wi, lanes, Halide::TailStrategy::ShiftInwards)
        .split(co, coo, coi, block)
        .reorder(wi, coi, wo, h, coo)
        .vectorize(wi)
        .unroll(coi);
    if (args.size() > 3)
      out.fuse(coo, args[3], task).parallel(task);
    else
      out.parallel(coo);
    c.acc.compute_at(out, wo)
        .bound_storage(w, lanes)
        .bound_storage(co, block)
        .store_in(Halide::MemoryType::Stack)
        .vectorize(w)
        .unroll(co);
    c.acc.update().reorder(w, co, c.r.z, c.r.y, c.r.x).vectorize(w).unroll(co);
  }

  /// The inverse of a trained matrix, computed here (Gauss-Jordan with
  /// partial pivoting in double): it is a constant of the exported model.
  HV inverse(const HV &m) {
    if (!m.constant.defined() || m.shape.size() != 2 ||
        m.shape[0] != m.shape[1])
      throw ExportError("export inverts trained square matrices only");
    const int n = static_cast<int>(m.shape[0]);
    std::vector<double> a(static_cast<size_t>(n) * n), inv(a.size(), 0.0);
    for (int i = 0; i < n; ++i) {
      inv[i * n + i] = 1;
      for (int j = 0; j < n; ++j)
        a[i * n + j] = m.constant(j, i);
    }
    // Float32 entries: a pivot this far below the largest entry is
    // rounding, and its inverse would be noise.
    double scale = 0;
    for (double v : a)
      scale = std::max(scale, std::abs(v));
    for (int col = 0; col < n; ++col) {
      int pivot = col;
      for (int i = col + 1; i < n; ++i)
        if (std::abs(a[i * n + col]) > std::abs(a[pivot * n + col]))
          pivot = i;
      if (std::abs(a[pivot * n + col]) <= 1e-6 * scale)
        throw ExportError("export: a trained matrix that the layers invert "
                          "is singular");
      for (int j = 0; j < n; ++j) {
        std::swap(a[col * n + j], a[pivot * n + j]);
        std::swap(inv[col * n + j], inv[pivot * n + j]);
      }
      const double d = a[col * n + col];
      for (int j = 0; j < n; ++j) {
        a[col * n + j] /= d;
        inv[col * n + j] /= d;
      }
      for (int i = 0; i < n; ++i)
        if (i != col && a[i * n + col] != 0) {
          const double f = a[i * n + col];
          for (int j = 0; j < n; ++j) {
            a[i * n + j] -= f * a[col * n + j];
            inv[i * n + j] -= f * inv[col * n + j];
          }
        }
    }
    Halide::Buffer<float> buf(n, n);
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < n; ++j)
        buf(j, i) = static_cast<float>(inv[i * n + j]);
    Func f;
    Var x0("x0"), x1("x1");
    f(x0, x1) = buf(x0, x1);
    return HV{f, m.shape, false, buf, true};
  }

  /// [m, k] @ [k] -> [m], [k] @ [k, n] -> [n], [m, k] @ [k, n] -> [m, n];
  /// either side may be per instance.
  HV matmul(HV x, HV y, const std::vector<int64_t> &shape, bool batched,
            int64_t id) {
    if (x.shape.empty() || y.shape.empty())
      throw ExportError("export supports matrix and vector products only");
    // A shared matrix times per-instance vectors or stacks: one GEMM.
    if (x.shape.size() == 2 && !x.batched && y.batched)
      return sharedProduct(
          x, false, y, y.shape.size() == 1 ? 0 : y.shape.size() - 2, shape, id);
    if (y.shape.size() == 2 && !y.batched && x.batched)
      return sharedProduct(y, true, x, x.shape.size() - 1, shape, id);
    x = operand(x);
    y = operand(y);
    if (x.shape.size() > 2 || y.shape.size() > 2)
      return stackedMatmul(x, y, shape, batched);
    int64_t k = x.shape.back();
    Halide::RDom r(0, static_cast<int>(k));
    HV out = define(shape, batched, [&](auto &idx, Expr b) {
      std::vector<Expr> xi, yi; // tensor order
      size_t used = 0;
      if (x.shape.size() == 2)
        xi.push_back(idx[used++]);
      xi.push_back(r.x);
      yi.push_back(r.x);
      if (y.shape.size() == 2)
        yi.push_back(idx[used++]);
      auto call = [&](const HV &v, std::vector<Expr> t) {
        std::vector<Expr> args(t.rbegin(), t.rend());
        if (v.batched)
          args.push_back(b);
        return v.f(args);
      };
      return Halide::sum(call(x, xi) * call(y, yi));
    });
    return reduction(out);
  }

  /// Stacks of matrices (or vectors) multiplied as LibTorch's matmul
  /// multiplies them: the axes before the last two (one for a vector) are
  /// the stack's, right-aligned and broadcast where one side has size 1.
  HV stackedMatmul(const HV &x, const HV &y, const std::vector<int64_t> &shape,
                   bool batched) {
    const bool xv = x.shape.size() == 1, yv = y.shape.size() == 1;
    const size_t tail = (xv ? 0 : 1) + (yv ? 0 : 1);
    const std::vector<int64_t> lead(shape.begin(), shape.end() - tail);
    Halide::RDom r(0, static_cast<int>(x.shape.back()), "r");
    HV out = define(shape, batched, [&](auto &idx, Expr b) {
      const std::vector<Expr> stack(idx.begin(), idx.end() - tail);
      auto read = [&](const HV &v, const std::vector<Expr> &last) {
        const size_t vl = v.shape.size() - last.size();
        std::vector<Expr> t;
        for (size_t j = 0; j < vl; ++j) {
          const size_t ri = lead.size() - vl + j;
          t.push_back(v.shape[j] == 1 && lead[ri] != 1 ? Expr(0) : stack[ri]);
        }
        t.insert(t.end(), last.begin(), last.end());
        std::vector<Expr> args(t.rbegin(), t.rend());
        if (v.batched)
          args.push_back(b);
        return v.f(args);
      };
      const Expr m = xv ? Expr() : idx[idx.size() - tail];
      const Expr n = yv ? Expr() : idx.back();
      return Halide::sum(
          read(x, xv ? std::vector<Expr>{r.x} : std::vector<Expr>{m, r.x}) *
          read(y, yv ? std::vector<Expr>{r.x} : std::vector<Expr>{r.x, n}));
    });
    return reduction(out);
  }

  /// exp(x - max) / sum(exp(x - max)) along `axis`; the max and the sum
  /// are computed once per row, not once per element.
  HV softmax(HV x, int64_t axis) {
    x = operand(x);
    std::vector<int64_t> rows = x.shape;
    rows.erase(rows.begin() + axis);
    Halide::RDom k(0, static_cast<int>(x.shape[axis]), "k");
    auto along = [&](std::vector<Expr> idx, const Expr &j) {
      idx.insert(idx.begin() + axis, j);
      return idx;
    };
    HV mx = define(rows, x.batched, [&](auto &idx, Expr b) {
      return Halide::maximum(at(x, along(idx, k.x), x.shape, b));
    });
    HV sum = define(rows, x.batched, [&](auto &idx, Expr b) {
      return Halide::sum(Halide::exp(at(x, along(idx, k.x), x.shape, b) -
                                     at(mx, idx, rows, b)));
    });
    reduction(mx);
    reduction(sum);
    return define(x.shape, x.batched, [&](auto &idx, Expr b) {
      std::vector<Expr> row = idx;
      row.erase(row.begin() + axis);
      return Halide::exp(at(x, idx, x.shape, b) - at(mx, row, rows, b)) /
             at(sum, row, rows, b);
    });
  }

  /// sum_k h_k S^k x, S^k x along x's first axis (the nodes), each power
  /// computed once from the one before.
  HV graphFilter(const HV &S, const HV &x, const HV &h) {
    if (S.batched || h.batched || S.shape.size() != 2 || h.shape.size() != 1)
      throw ExportError("export supports graph_filter with a shared shift "
                        "operator and shared taps only");
    std::vector<HV> powers{x};
    for (int64_t k = 1; k < h.shape[0]; ++k) {
      const HV prev = powers.back();
      if (x.batched) {
        powers.push_back(sharedProduct(S, false, prev, 0, x.shape, -1));
        continue;
      }
      Halide::RDom m(0, static_cast<int>(S.shape[1]), "m");
      HV next = define(x.shape, false, [&](auto &idx, Expr b) {
        std::vector<Expr> t = idx;
        t[0] = m.x;
        return Halide::sum(at(S, {idx[0], m.x}, S.shape, b) *
                           at(prev, t, x.shape, b));
      });
      next = reduction(next);
      powers.push_back(next);
    }
    return define(x.shape, x.batched, [&](auto &idx, Expr b) {
      Expr e;
      for (size_t k = 0; k < powers.size(); ++k) {
        Expr term = at(h, {Expr(static_cast<int>(k))}, h.shape, b) *
                    at(powers[k], idx, x.shape, b);
        e = e.defined() ? e + term : term;
      }
      return e;
    });
  }

  /// `size` samples along axis 1 of each operand, the same for all of
  /// them: sample j of node n is floor(u * available) for the draw u in
  /// [0, 1) that the caller supplies in `samples` (as the runtime scales
  /// its own draws), one [nodes, size] block per minibatch in the order
  /// the layers draw them.
  void minibatch(const json &op, const std::vector<HV> &a) {
    const int64_t size = op["size"].get<int64_t>();
    const int64_t nodes = a[0].shape[0], avail = a[0].shape[1];
    bool batched = false;
    for (const HV &v : a)
      batched |= v.batched;
    if (!samples_) {
      samples_ = makeInput("samples", {0, nodes, size}, batched);
      // As many draws as the layers take (more than a stage's own).
      samples_->param.dim(2).set_extent(Expr());
      samples_->note = "uniform draws in [0, 1) that pick the minibatches";
    } else if (samples_->shape[1] != nodes || samples_->shape[2] != size ||
               samples_->batched != batched) {
      throw ExportError("export supports minibatches of one size, from one "
                        "number of nodes, only");
    }
    const int k = static_cast<int>(draws_ + samples_->shape[0]++);
    Func u(samples_->param);
    const json &ids = op["ids"];
    for (size_t i = 0; i < a.size(); ++i) {
      const HV v = a[i];
      std::vector<int64_t> shape = v.shape;
      shape[1] = size;
      values_[ids[i].get<int64_t>()] =
          define(shape, batched, [&](auto &idx, Expr b) {
            std::vector<Expr> draw{idx[1], idx[0], k};
            if (batched)
              draw.push_back(b);
            Expr j = Halide::cast<int>(
                Halide::floor(u(draw) * static_cast<float>(avail)));
            std::vector<Expr> t = idx;
            t[1] = Halide::clamp(j, 0, static_cast<int>(avail - 1));
            return at(v, t, v.shape, b);
          });
    }
  }

  /// A shared matrix W [m, k] applied to the vectors of a per-instance `y`
  /// along its axis `axis` (tensor order): the result has y's shape with
  /// that axis of size m. Every other axis of y and the batch together
  /// index the vectors, the columns of one GEMM. That covers W @ y for a
  /// vector y, W @ Y along Y's rows, X @ W' along X's last axis (W passed
  /// as `wT`, its transpose) and a graph filter's S @ x along the nodes.
  ///
  /// W is packed into panels of kPanelRows rows, each stored k-major (zero
  /// rows pad the last), and a tile of one panel's rows by 8 columns
  /// accumulates in registers over the whole k loop while it streams its
  /// panel contiguously.
  HV sharedProduct(const HV &w, bool transposed, const HV &y, size_t axis,
                   const std::vector<int64_t> &shape, int64_t id) {
    Var kk("kk"), row("row"), panel("panel"), col("col");
    const int m = static_cast<int>(shape[axis]);
    const int k = static_cast<int>(y.shape[axis]);
    const int panels = (m + kPanelRows - 1) / kPanelRows;
    // W's entry (row n, column c), in the order of W as given.
    auto entry = [&](const Expr &n, const Expr &c) {
      return transposed ? w.f(n, c) : w.f(c, n);
    };
    Halide::RDom r(0, k, "r");
    Func packed("packed"), acc("acc"), out("product");
    bool constant = w.constant.defined();
    if (constant) {
      // Trained weights are constants: packed once, here.
      Halide::Buffer<float> src =
          transposed ? w.constant.transposed(0, 1) : w.constant;
      Halide::Buffer<float> buf(kPanelRows, k, panels);
      buf.fill(0.0f);
      for (int n = 0; n < m; ++n)
        for (int c = 0; c < k; ++c)
          buf(n % kPanelRows, c, n / kPanelRows) = src(c, n);
      packed(row, kk, panel) = buf(row, kk, panel);
    } else {
      // The padding rows repeat the last row; their sums are never stored.
      packed(row, kk, panel) =
          entry(Halide::min(panel * kPanelRows + row, m - 1), kk);
    }
    // Column numbers: the axes other than `axis`, innermost first, then
    // the batch. `stride[j]` is the step of Halide axis j (0 for axis).
    const size_t rank = shape.size(), rowArg = rank - 1 - axis;
    std::vector<int64_t> stride(rank, 0);
    int64_t columns = 1;
    for (size_t j = 0; j < rank; ++j)
      if (j != rowArg) {
        stride[j] = columns;
        columns *= shape[rank - 1 - j];
      }
    // The columns' vectors interleaved (column innermost): a tile's
    // broadcasts of y at one k read one address plus constant offsets.
    Func yt("yt");
    {
      std::vector<Expr> args;
      for (size_t j = 0; j < rank; ++j)
        args.push_back(j == rowArg ? Expr(kk)
                                   : (col / static_cast<int>(stride[j])) %
                                         static_cast<int>(shape[rank - 1 - j]));
      args.push_back(col / static_cast<int>(columns)); // the instance
      yt(col, kk) = y.f(args);
    }
    acc(row, col, panel) = 0.0f;
    acc(row, col, panel) += packed(row, r, panel) * yt(col, r);
    Var i("i");
    out(i, col) = acc(i % kPanelRows, col, i / kPanelRows);
    Product p;
    p.id = id;
    p.out = out;
    p.acc = acc;
    p.yt = yt;
    p.packed = packed;
    p.row = row;
    p.col = col;
    p.panel = panel;
    p.r = r;
    p.rows = m;
    p.depth = k;
    p.panels = panels;
    p.constant = constant;
    p.columns = columns;
    products_.push_back(p);
    if (rank == 1)
      return HV{out, shape, true, {}, true};
    // The result read back from the product's columns.
    std::vector<Var> vs = axes(rank);
    Expr c = Var("b") * static_cast<int>(columns);
    for (size_t j = 0; j < rank; ++j)
      if (j != rowArg)
        c += vs[j] * static_cast<int>(stride[j]);
    std::vector<Var> def = vs;
    def.push_back(Var("b"));
    Func result("product_" + std::to_string(id));
    result(def) = out(vs[rowArg], c);
    return HV{result, shape, true, {}, true};
  }

  const json &alg_;
  const std::map<std::string, Halide::Buffer<float>> &params_;
  std::map<int64_t, const json *> prelude_;
  std::map<int64_t, const json *> inputsById_;
  std::map<int64_t, InferenceInput> usedInputs_;
  std::vector<InferenceInput> randomStates_;
  std::vector<InferenceInput> stateInputs_;
  /// The minibatches' draws, once a layer draws one.
  std::optional<InferenceInput> samples_;
  /// Draws before the first one lowered: the layers before the range's.
  int64_t draws_ = 0;
  std::vector<HV> reductions_;
  std::vector<Conv> convs_;
  size_t reductionsFused_ = 0;
  /// Values that reductions read, stored (see operand).
  std::vector<HV> operands_;
  std::set<std::string> operandNames_;
  std::vector<Product> products_;
  std::vector<Output> outputs_;
  std::map<int64_t, int> uses_;
  /// The batch size of the exported function (the extent of a per
  /// instance input), undefined if no input is per instance.
  Expr batch_;
  std::map<int64_t, HV> values_;
};

} // namespace

InferencePipeline
lowerForInference(const json &plan,
                  const std::map<std::string, Halide::Buffer<float>> &params,
                  const StateRange &range) {
  for (const json &alg : plan["algorithms"])
    if (alg.contains("train") || plan["algorithms"].size() == 1)
      return Lowering(alg, params).run(range);
  throw ExportError("the program has no trained algorithm");
}

} // namespace unroll::compiler
