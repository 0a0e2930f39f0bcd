// The ops of the inference lowering with a lowering of their own:
// convolutions, the inverse of a trained matrix, softmax, graph filters and
// minibatches.
#include "compiler/export/Lowering.h"

#include "compiler/kernels/CudaKernels.h"
#include "compiler/kernels/HalideKernels.h"

#include <algorithm>
#include <cassert>
#include <cmath>

namespace unroll::compiler::lowering {

/// x [ci, h, w] convolved with a shared kernel k [co, ci, kh, kw], zero
/// padded to keep h and w (as the runtime's conv2d).
HV Lowering::conv2d(const HV &x, const HV &k, const std::vector<int64_t> &shape,
                    bool batched) {
  if (k.batched || x.shape.size() != 3 || k.shape.size() != 4)
    throw ExportError("export supports conv2d of an image with a shared "
                      "kernel only");
  const int ci = static_cast<int>(k.shape[1]);
  const int kh = static_cast<int>(k.shape[2]),
            kw = static_cast<int>(k.shape[3]);
  const int h = static_cast<int>(x.shape[1]), w = static_cast<int>(x.shape[2]);
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

/// The inverse of a matrix of trained parameters and numbers (a
/// parameter, or I + rho G'G of a learned rho), computed here (Gauss-Jordan
/// with partial pivoting in double): it is a constant of the exported
/// model.
HV Lowering::inverse(HV m) {
  if (!m.foldable || m.shape.size() != 2 || m.shape[0] != m.shape[1])
    throw ExportError("export inverts square matrices of trained parameters "
                      "and numbers only, not of the inputs");
  if (!m.constant.defined())
    m.constant = m.f.realize(
        {static_cast<int>(m.shape[1]), static_cast<int>(m.shape[0])});
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
  HV out{f, m.shape, false, buf, true};
  out.foldable = true;
  return out;
}

/// exp(x - max) / sum(exp(x - max)) along `axis`; the max and the sum
/// are computed once per row, not once per element.
HV Lowering::softmax(HV x, int64_t axis) {
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
    return Halide::sum(
        Halide::exp(at(x, along(idx, k.x), x.shape, b) - at(mx, idx, rows, b)));
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
HV Lowering::graphFilter(const HV &S, const HV &x, const HV &h) {
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
void Lowering::minibatch(const Op &op, const std::vector<HV> &a) {
  const int64_t size = op.size;
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
  for (size_t i = 0; i < a.size(); ++i) {
    const HV v = a[i];
    std::vector<int64_t> shape = v.shape;
    shape[1] = size;
    values_[op.ids[i]] = define(shape, batched, [&](auto &idx, Expr b) {
      std::vector<Expr> draw{idx[1], idx[0], k};
      if (batched)
        draw.push_back(b);
      Expr j =
          Halide::cast<int>(Halide::floor(u(draw) * static_cast<float>(avail)));
      std::vector<Expr> t = idx;
      t[1] = Halide::clamp(j, 0, static_cast<int>(avail - 1));
      return at(v, t, v.shape, b);
    });
  }
}

} // namespace unroll::compiler::lowering
