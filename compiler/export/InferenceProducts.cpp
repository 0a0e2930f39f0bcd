// Products of the inference lowering: a shared matrix times per-instance
// vectors, matrices or stacks as one tiled GEMM over all their vectors,
// with constant weights packed into panels at export time.
#include "compiler/export/Lowering.h"

#include "compiler/kernels/CudaKernels.h"
#include "compiler/kernels/HalideKernels.h"

#include <algorithm>
#include <cassert>
#include <cmath>

namespace unroll::compiler::lowering {

/// [m, k] @ [k] -> [m], [k] @ [k, n] -> [n], [m, k] @ [k, n] -> [m, n];
/// either side may be per instance.
HV Lowering::matmul(HV x, HV y, const std::vector<int64_t> &shape, bool batched,
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
HV Lowering::stackedMatmul(const HV &x, const HV &y,
                           const std::vector<int64_t> &shape, bool batched) {
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
HV Lowering::sharedProduct(const HV &w, bool transposed, const HV &y,
                           size_t axis, const std::vector<int64_t> &shape,
                           int64_t id) {
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

} // namespace unroll::compiler::lowering
