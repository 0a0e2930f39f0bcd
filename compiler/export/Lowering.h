#pragma once
// The inference lowering's internals, shared by its files; the interface
// is InferenceLowering.h.

#include "compiler/export/InferenceLowering.h"

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace unroll::compiler::lowering {

using abi::Op;
using abi::OpCode;
using Halide::Expr;
using Halide::Func;
using Halide::Var;

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
  /// Whether f is a function of numbers and trained parameters alone (no
  /// input, no random draw): export can compute it once (`constant`).
  bool foldable = false;
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
void scheduleStored(const HV &v, const Halide::Target &t, int batchTasks = 1);

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

std::vector<Var> axes(size_t rank);

/// `v` read at result coordinates `idx` (tensor order, the result's rank)
/// with right-aligned broadcasting, and at batch `b` if it is per instance.
Expr at(const HV &v, const std::vector<Expr> &idx,
        const std::vector<int64_t> &rshape, const Expr &b);

/// Lowers one algorithm: the plan walk (InferenceLowering.cpp), products
/// as tiled GEMMs (InferenceProducts.cpp), convolutions and the other ops
/// with a lowering of their own (InferenceOps.cpp), and the schedules
/// (InferenceSchedules.cpp).
class Lowering {

public:
  Lowering(const abi::Algorithm &alg,
           const std::map<std::string, Halide::Buffer<float>> &params);

  InferencePipeline run(const StateRange &range);

private:
  /// A layer's stored output and the products computed in its tiles
  /// (indices into products_).
  struct Output {
    HV v;
    std::vector<size_t> absorbed;
  };

  void countUses(const std::vector<Op> &ops, const std::vector<int64_t> &yield);

  /// Ops in a body, with those of its fused regions.
  static int64_t opsIn(const abi::Body &b);

  /// The minibatches a body draws (ops at its top level, as `lower` meets
  /// them).
  static int64_t minibatches(const abi::Body &b);

  int uses(int64_t id) const;

  /// Whether `p` is read once, by the value `yielded` of a layer (of
  /// `shape`) itself or by the elementwise op that computes it, which is
  /// read by nothing else: then it can be computed in that output's tiles.
  bool readOnlyBy(const Product &p, const std::vector<Op> &ops, int64_t yielded,
                  const std::vector<int64_t> &shape) const;

  /// Every schedule of the pipeline: the products', the other
  /// reductions', then the layer outputs'.
  std::vector<std::function<void(const Halide::Target &)>> schedules();

  /// Computes `owner` (rows by columns: a layer output's vector per
  /// instance, or a product's columns, `batch` of them if defined) in tiles
  /// of one panel's rows by 8 columns, and inside each tile the sums of
  /// `parts` (products with the same rows) in registers over their whole k
  /// loops, each streaming its packed panel.
  static void tile(Func owner, const std::vector<Product> &parts,
                   const Halide::Target &t, const Expr &batch);

  InferenceInput makeInput(const std::string &name,
                           const std::vector<int64_t> &shape, bool batched);

  void bindParam(const abi::Param &p);

  HV get(int64_t id);

  /// `v`, a reduction: computed once and stored.
  HV reduction(HV v);

  /// `r`, an op of `op` applied element by element to `a`, stored in place
  /// of the one reduction among `a` that nothing else reads (the others
  /// cheap to read, and none broadcast): the reduction's sums are then
  /// computed inside r's loops instead of into an array of their own that
  /// r reads back. GLOW-Prox's ReLU after each coupling's first
  /// convolution was such a pass over its hidden channels.
  HV fuseReduction(const Op &op, const std::vector<HV> &a, HV r);

  /// `v` as an operand that a reduction reads many times: stored first
  /// unless reading it is already cheap. SURF's per-agent products read a
  /// minibatch's gathered samples and the softmax's exponentials that way;
  /// recomputed for every term they took most of its exported forward.
  HV operand(HV v);

  /// A per-instance value (a shared one repeated over the batch).
  HV perInstance(const HV &v);

  std::vector<HV> body(const abi::Body &b, const std::vector<HV> &args);

  /// Defines a Func of `shape` (batched if `batched`) from an expression
  /// of its coordinates (tensor order) and the batch variable.
  HV define(const std::vector<int64_t> &shape, bool batched,
            const std::function<Expr(const std::vector<Expr> &, Expr)> &e);

  void lower(const Op &op);

  /// x [ci, h, w] convolved with a shared kernel k [co, ci, kh, kw], zero
  /// padded to keep h and w (as the runtime's conv2d).
  HV conv2d(const HV &x, const HV &k, const std::vector<int64_t> &shape,
            bool batched);

  /// Schedules convolution `c`: `out` in tiles of one vector of pixels by
  /// a block of output channels, parallel over the blocks, rows and
  /// instances; in each tile the taps accumulate in registers (a vector
  /// read of the padded image, then one multiply-add per channel of the
  /// block). Summed per output vector instead, each tap read a vector
  /// and a weight for one multiply-add.
  static void scheduleConv(Conv c, const Halide::Target &t);

  /// The inverse of a matrix of parameters and numbers, computed here:
  /// a constant of the exported model.
  HV inverse(HV m);

  /// [m, k] @ [k] -> [m], [k] @ [k, n] -> [n], [m, k] @ [k, n] -> [m, n];
  /// either side may be per instance.
  HV matmul(HV x, HV y, const std::vector<int64_t> &shape, bool batched,
            int64_t id);

  /// Stacks of matrices (or vectors) multiplied as LibTorch's matmul
  /// multiplies them: the axes before the last two (one for a vector) are
  /// the stack's, right-aligned and broadcast where one side has size 1.
  HV stackedMatmul(const HV &x, const HV &y, const std::vector<int64_t> &shape,
                   bool batched);

  /// exp(x - max) / sum(exp(x - max)) along `axis`; the max and the sum
  /// are computed once per row, not once per element.
  HV softmax(HV x, int64_t axis);

  /// sum_k h_k S^k x, S^k x along x's first axis (the nodes), each power
  /// computed once from the one before.
  HV graphFilter(const HV &S, const HV &x, const HV &h);

  /// `size` samples along axis 1 of each operand, the same for all of
  /// them: sample j of node n is floor(u * available) for the draw u in
  /// [0, 1) that the caller supplies in `samples` (as the runtime scales
  /// its own draws), one [nodes, size] block per minibatch in the order
  /// the layers draw them.
  void minibatch(const Op &op, const std::vector<HV> &a);

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
                   const std::vector<int64_t> &shape, int64_t id);

  const abi::Algorithm &alg_;
  const std::map<std::string, Halide::Buffer<float>> &params_;
  std::map<int64_t, const Op *> prelude_;
  std::map<int64_t, const abi::Input *> inputsById_;
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

} // namespace unroll::compiler::lowering
