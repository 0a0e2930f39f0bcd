#include "compiler/eval/Evaluator.h"

#include "compiler/dialect/UnrollDialect.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <utility>

namespace unroll::eval {

namespace {

using namespace mlir;

int64_t count(const std::vector<int64_t> &shape) {
  return std::accumulate(shape.begin(), shape.end(), int64_t{1},
                         std::multiplies<int64_t>());
}

std::vector<int64_t> shapeOf(Value v) {
  auto s = cast<RankedTensorType>(v.getType()).getShape();
  return std::vector<int64_t>(s.begin(), s.end());
}

Tensor zeros(std::vector<int64_t> shape) {
  Tensor t;
  t.data.assign(count(shape), 0.0);
  t.shape = std::move(shape);
  return t;
}

/// The flat index into `in` (broadcast to `out`) of output element `flat`.
int64_t broadcastIndex(int64_t flat, const std::vector<int64_t> &out,
                       const std::vector<int64_t> &in) {
  int64_t idx = 0, stride = 1;
  size_t off = out.size() - in.size();
  for (size_t d = out.size(); d-- > 0;) {
    int64_t coord = flat % out[d];
    flat /= out[d];
    if (d >= off) {
      int64_t n = in[d - off];
      idx += (n == 1 ? 0 : coord) * stride;
      stride *= n;
    }
  }
  return idx;
}

template <typename F>
Tensor binary(const Tensor &a, const Tensor &b, const std::vector<int64_t> &out,
              F f) {
  Tensor r = zeros(out);
  for (int64_t i = 0; i < static_cast<int64_t>(r.size()); ++i)
    r.data[i] = f(a.data[broadcastIndex(i, out, a.shape)],
                  b.data[broadcastIndex(i, out, b.shape)]);
  return r;
}

double unaryFn(StringRef fn, double x) {
  if (fn == "neg")
    return -x;
  if (fn == "abs")
    return std::fabs(x);
  if (fn == "sign")
    return x > 0 ? 1 : x < 0 ? -1 : 0;
  if (fn == "relu")
    return x > 0 ? x : 0;
  if (fn == "step")
    return x > 0 ? 1 : 0;
  if (fn == "exp")
    return std::exp(x);
  if (fn == "log")
    return std::log(x);
  if (fn == "sqrt")
    return std::sqrt(x);
  if (fn == "tanh")
    return std::tanh(x);
  if (fn == "sigmoid")
    return 1 / (1 + std::exp(-x));
  if (fn == "square")
    return x * x;
  throw EvalError("unknown elementwise function " + fn.str());
}

/// a @ b under the DSL's rules (shapes already verified).
Tensor matmul(const Tensor &a, const Tensor &b,
              const std::vector<int64_t> &out) {
  Tensor r = zeros(out);
  if (a.shape.size() == 3 && b.shape.size() == 3) {
    int64_t B = a.shape[0], M = a.shape[1], N = a.shape[2], K = b.shape[2];
    for (int64_t q = 0; q < B; ++q)
      for (int64_t i = 0; i < M; ++i)
        for (int64_t k = 0; k < K; ++k) {
          double s = 0;
          for (int64_t j = 0; j < N; ++j)
            s += a.data[(q * M + i) * N + j] * b.data[(q * N + j) * K + k];
          r.data[(q * M + i) * K + k] = s;
        }
    return r;
  }
  int64_t N = a.shape.back();
  int64_t rows = count(a.shape) / N;
  int64_t K = b.shape.size() == 2 ? b.shape[1] : 1;
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t k = 0; k < K; ++k) {
      double s = 0;
      for (int64_t j = 0; j < N; ++j)
        s += a.data[i * N + j] * b.data[j * K + k];
      r.data[i * K + k] = s;
    }
  return r;
}

Tensor transpose(const Tensor &a) {
  std::vector<int64_t> out = a.shape;
  size_t n = out.size();
  std::swap(out[n - 1], out[n - 2]);
  Tensor r = zeros(out);
  int64_t M = a.shape[n - 2], N = a.shape[n - 1], B = count(a.shape) / (M * N);
  for (int64_t q = 0; q < B; ++q)
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j)
        r.data[q * M * N + j * M + i] = a.data[q * M * N + i * N + j];
  return r;
}

/// A shape seen as [outer, n, inner] around `axis`.
struct AxisSplit {
  int64_t outer, n, inner;
};
AxisSplit splitAt(const std::vector<int64_t> &shape, int64_t axis) {
  return {count(std::vector<int64_t>(shape.begin(), shape.begin() + axis)),
          shape[axis],
          count(std::vector<int64_t>(shape.begin() + axis + 1, shape.end()))};
}

/// Sums `a` over `axis` (or, with the axis dropped, expands `a` along it).
Tensor sumAxis(const Tensor &a, int64_t axis, const std::vector<int64_t> &out) {
  Tensor r = zeros(out);
  auto [outer, n, inner] = splitAt(a.shape, axis);
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t k = 0; k < n; ++k)
      for (int64_t i = 0; i < inner; ++i)
        r.data[o * inner + i] += a.data[(o * n + k) * inner + i];
  return r;
}

/// The largest eigenvalue of D^T D (the squared spectral norm of D) and its
/// unit eigenvector, by power iteration run to convergence in float64.
std::pair<double, std::vector<double>> topSingular(const Tensor &d) {
  int64_t M = d.shape[0], N = d.shape[1];
  std::vector<double> v(N, 1.0 / std::sqrt(static_cast<double>(N))), w(N);
  // A fixed, uneven start so that no eigenvector is missed by symmetry.
  for (int64_t j = 0; j < N; ++j)
    v[j] += 1e-3 * static_cast<double>(j);
  double lambda = 0;
  for (int it = 0; it < 100000; ++it) {
    std::vector<double> dv(M, 0.0);
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j)
        dv[i] += d.data[i * N + j] * v[j];
    std::fill(w.begin(), w.end(), 0.0);
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j)
        w[j] += d.data[i * N + j] * dv[i];
    double norm = 0, change = 0;
    for (double x : w)
      norm += x * x;
    norm = std::sqrt(norm);
    if (norm == 0)
      return {0.0, v};
    for (int64_t j = 0; j < N; ++j) {
      double next = w[j] / norm;
      change = std::max(change, std::fabs(next - v[j]));
      v[j] = next;
    }
    lambda = norm;
    if (change < 1e-15)
      break;
  }
  return {lambda, v};
}

class Interpreter {
public:
  Interpreter(Env env, double layerIndex)
      : env_(std::move(env)), layerIndex_(layerIndex) {}

  std::vector<Tensor> run(Block &block, const std::vector<Tensor> &args) {
    if (args.size() != block.getNumArguments())
      throw EvalError("wrong number of block arguments");
    for (auto [a, t] : llvm::zip(block.getArguments(), args))
      env_[a] = t;
    for (Operation &op : block) {
      if (op.hasTrait<OpTrait::IsTerminator>()) {
        std::vector<Tensor> out;
        for (Value v : op.getOperands())
          out.push_back(get(v));
        return out;
      }
      step(op);
    }
    throw EvalError("block has no terminator");
  }

private:
  const Tensor &get(Value v) {
    auto it = env_.find(v);
    if (it == env_.end())
      throw EvalError("value used before it is defined");
    return it->second;
  }
  void set(Operation &op, Tensor t) { env_[op.getResult(0)] = std::move(t); }

  void step(Operation &op) {
    auto out = op.getNumResults() == 1 ? shapeOf(op.getResult(0))
                                       : std::vector<int64_t>{};
    if (auto c = dyn_cast<ir::ConstantOp>(op))
      return set(op, Tensor::scalar(c.getValue().convertToDouble()));
    if (isa<ir::LayerIndexOp>(op))
      return set(op, Tensor::scalar(layerIndex_));
    if (auto f = dyn_cast<ir::FillOp>(op)) {
      Tensor t = zeros(out);
      std::fill(t.data.begin(), t.data.end(), get(f.getValue()).data[0]);
      return set(op, t);
    }
    if (isa<ir::EyeOp>(op)) {
      Tensor t = zeros(out);
      for (int64_t i = 0; i < out[0]; ++i)
        t.data[i * out[0] + i] = 1;
      return set(op, t);
    }
    if (auto u = dyn_cast<ir::UnaryOp>(op)) {
      Tensor t = get(u.getOperand());
      for (double &x : t.data)
        x = unaryFn(u.getFn(), x);
      return set(op, t);
    }
    if (isa<ir::AddOp, ir::SubOp, ir::MulOp, ir::DivOp, ir::PowOp, ir::MaxOp,
            ir::MinOp>(op)) {
      const Tensor &a = get(op.getOperand(0)), &b = get(op.getOperand(1));
      StringRef n = op.getName().stripDialect();
      return set(op, binary(a, b, out, [&](double x, double y) {
                   if (n == "add")
                     return x + y;
                   if (n == "sub")
                     return x - y;
                   if (n == "mul")
                     return x * y;
                   if (n == "div")
                     return x / y;
                   if (n == "pow")
                     return std::pow(x, y);
                   if (n == "max")
                     return std::max(x, y);
                   return std::min(x, y);
                 }));
    }
    if (auto m = dyn_cast<ir::MatmulOp>(op))
      return set(op, matmul(get(m.getLhs()), get(m.getRhs()), out));
    if (auto t = dyn_cast<ir::TransposeOp>(op))
      return set(op, transpose(get(t.getOperand())));
    if (auto o = dyn_cast<ir::OuterOp>(op)) {
      const Tensor &a = get(o.getLhs()), &b = get(o.getRhs());
      Tensor r = zeros(out);
      for (size_t i = 0; i < a.size(); ++i)
        for (size_t j = 0; j < b.size(); ++j)
          r.data[i * b.size() + j] = a.data[i] * b.data[j];
      return set(op, r);
    }
    if (auto e = dyn_cast<ir::ExpandOp>(op)) {
      const Tensor &a = get(e.getOperand());
      Tensor r = zeros(out);
      auto [outer, n, inner] = splitAt(out, e.getAxis());
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t k = 0; k < n; ++k)
          for (int64_t i = 0; i < inner; ++i)
            r.data[(o * n + k) * inner + i] = a.data[o * inner + i];
      return set(op, r);
    }
    if (auto s = dyn_cast<ir::SumToOp>(op)) {
      const Tensor &a = get(s.getOperand());
      Tensor r = zeros(out);
      for (int64_t i = 0; i < static_cast<int64_t>(a.size()); ++i)
        r.data[broadcastIndex(i, a.shape, out)] += a.data[i];
      return set(op, r);
    }
    if (auto r = dyn_cast<ir::ReduceOp>(op)) {
      const Tensor &a = get(r.getOperand());
      StringRef k = r.getKind();
      if (auto ax = r.getAxis()) {
        Tensor s = sumAxis(a, *ax, out);
        if (k == "mean")
          for (double &x : s.data)
            x /= static_cast<double>(a.shape[*ax]);
        return set(op, s);
      }
      double acc = 0;
      for (double x : a.data)
        acc += k == "norm1"                     ? std::fabs(x)
               : (k == "norm" || k == "sqnorm") ? x * x
                                                : x;
      if (k == "mean")
        acc /= static_cast<double>(a.size());
      if (k == "norm")
        acc = std::sqrt(acc);
      return set(op, Tensor::scalar(acc));
    }
    if (auto c = dyn_cast<ir::ConcatOp>(op)) {
      const Tensor &a = get(c.getLhs()), &b = get(c.getRhs());
      int64_t ax = c.getAxis();
      Tensor r = zeros(out);
      auto [outer, n, inner] = splitAt(out, ax);
      int64_t na = a.shape[ax], nb = b.shape[ax];
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t k = 0; k < n; ++k)
          for (int64_t i = 0; i < inner; ++i)
            r.data[(o * n + k) * inner + i] =
                k < na ? a.data[(o * na + k) * inner + i]
                       : b.data[(o * nb + k - na) * inner + i];
      return set(op, r);
    }
    if (auto sl = dyn_cast<ir::SliceOp>(op)) {
      const Tensor &a = get(sl.getOperand());
      int64_t ax = sl.getAxis(), st = sl.getStart();
      Tensor r = zeros(out);
      auto [outer, n, inner] = splitAt(out, ax);
      int64_t na = a.shape[ax];
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t k = 0; k < n; ++k)
          for (int64_t i = 0; i < inner; ++i)
            r.data[(o * n + k) * inner + i] =
                a.data[(o * na + st + k) * inner + i];
      return set(op, r);
    }
    if (isa<ir::Squeeze2dOp, ir::Unsqueeze2dOp>(op)) {
      // y[4c + 2di + dj, i, j] = x[c, 2i + di, 2j + dj]
      bool squeeze = isa<ir::Squeeze2dOp>(op);
      const Tensor &a = get(op.getOperand(0));
      const std::vector<int64_t> &big = squeeze ? a.shape : out;
      Tensor r = zeros(out);
      int64_t C = big[0], H = big[1], W = big[2];
      for (int64_t c = 0; c < C; ++c)
        for (int64_t y = 0; y < H; ++y)
          for (int64_t x = 0; x < W; ++x) {
            int64_t bigIdx = (c * H + y) * W + x;
            int64_t sc = 4 * c + 2 * (y % 2) + x % 2;
            int64_t smallIdx = (sc * (H / 2) + y / 2) * (W / 2) + x / 2;
            if (squeeze)
              r.data[smallIdx] = a.data[bigIdx];
            else
              r.data[bigIdx] = a.data[smallIdx];
          }
      return set(op, r);
    }
    if (isa<ir::Conv2dOp, ir::Conv2dTransposeOp, ir::Conv2dKernelAdjointOp>(
            op)) {
      // One loop over every tap of the convolution y = conv2d(x, k); the
      // op and its two adjoints differ only in what they accumulate.
      const Tensor &a = get(op.getOperand(0)), &b = get(op.getOperand(1));
      bool kernelAdjoint = isa<ir::Conv2dKernelAdjointOp>(op);
      const std::vector<int64_t> &ks = kernelAdjoint ? out : b.shape;
      int64_t CO = ks[0], CI = ks[1], KH = ks[2], KW = ks[3], H = a.shape[1],
              W = a.shape[2];
      Tensor r = zeros(out);
      for (int64_t o = 0; o < CO; ++o)
        for (int64_t i = 0; i < H; ++i)
          for (int64_t j = 0; j < W; ++j)
            for (int64_t c = 0; c < CI; ++c)
              for (int64_t u = 0; u < KH; ++u)
                for (int64_t v = 0; v < KW; ++v) {
                  int64_t yi = i + u - KH / 2, xj = j + v - KW / 2;
                  if (yi < 0 || yi >= H || xj < 0 || xj >= W)
                    continue;
                  int64_t kIdx = ((o * CI + c) * KH + u) * KW + v;
                  int64_t xIdx = (c * H + yi) * W + xj;
                  int64_t yIdx = (o * H + i) * W + j;
                  if (isa<ir::Conv2dOp>(op)) // x = a, k = b
                    r.data[yIdx] += b.data[kIdx] * a.data[xIdx];
                  else if (kernelAdjoint) // x = a, dy = b
                    r.data[kIdx] += b.data[yIdx] * a.data[xIdx];
                  else // dy = a, k = b: back along the taps that read x
                    r.data[xIdx] += b.data[kIdx] * a.data[yIdx];
                }
      return set(op, r);
    }
    if (auto rs = dyn_cast<ir::ReshapeOp>(op)) {
      Tensor t = get(rs.getOperand());
      t.shape = out;
      return set(op, t);
    }
    if (isa<ir::LipschitzOp, ir::LipschitzGradOp>(op)) {
      const Tensor &d = get(op.getOperand(0));
      auto [sigma2, v] = topSingular(d);
      if (isa<ir::LipschitzOp>(op))
        return set(op, Tensor::scalar(sigma2));
      // 2 D v v^T
      int64_t M = d.shape[0], N = d.shape[1];
      Tensor r = zeros(out);
      for (int64_t i = 0; i < M; ++i) {
        double dv = 0;
        for (int64_t j = 0; j < N; ++j)
          dv += d.data[i * N + j] * v[j];
        for (int64_t j = 0; j < N; ++j)
          r.data[i * N + j] = 2 * dv * v[j];
      }
      return set(op, r);
    }
    if (auto cv = dyn_cast<ir::Conv1x1Op>(op)) {
      const Tensor &x = get(cv.getInput()), &w = get(cv.getWeight());
      int64_t CO = w.shape[0], CI = w.shape[1], P = x.shape[1] * x.shape[2];
      Tensor r = zeros(out);
      for (int64_t o = 0; o < CO; ++o)
        for (int64_t c = 0; c < CI; ++c)
          for (int64_t p = 0; p < P; ++p)
            r.data[o * P + p] += w.data[o * CI + c] * x.data[c * P + p];
      return set(op, r);
    }
    if (auto sg = dyn_cast<ir::StopGradientOp>(op))
      return set(op, get(sg.getOperand()));
    if (auto inv = dyn_cast<ir::InverseOp>(op)) {
      // Gauss-Jordan with partial pivoting.
      Tensor a = get(inv.getOperand());
      int64_t n = a.shape[0];
      Tensor r = zeros(out);
      for (int64_t i = 0; i < n; ++i)
        r.data[i * n + i] = 1;
      for (int64_t col = 0; col < n; ++col) {
        int64_t piv = col;
        for (int64_t i = col + 1; i < n; ++i)
          if (std::fabs(a.data[i * n + col]) > std::fabs(a.data[piv * n + col]))
            piv = i;
        if (a.data[piv * n + col] == 0)
          throw EvalError("inverse of a singular matrix");
        for (int64_t j = 0; j < n; ++j) {
          std::swap(a.data[col * n + j], a.data[piv * n + j]);
          std::swap(r.data[col * n + j], r.data[piv * n + j]);
        }
        double d = a.data[col * n + col];
        for (int64_t j = 0; j < n; ++j) {
          a.data[col * n + j] /= d;
          r.data[col * n + j] /= d;
        }
        for (int64_t i = 0; i < n; ++i) {
          if (i == col)
            continue;
          double f = a.data[i * n + col];
          for (int64_t j = 0; j < n; ++j) {
            a.data[i * n + j] -= f * a.data[col * n + j];
            r.data[i * n + j] -= f * r.data[col * n + j];
          }
        }
      }
      return set(op, r);
    }
    if (isa<ir::ProbeOp>(op))
      return; // only marks a value for the runtime to record
    if (auto f = dyn_cast<ir::FusedOp>(op)) {
      std::vector<Tensor> args;
      for (Value v : f.getInputs())
        args.push_back(get(v));
      return set(
          op,
          Interpreter(Env(), layerIndex_).run(f.getBody().front(), args)[0]);
    }
    if (auto ls = dyn_cast<ir::LogSumExpOp>(op)) {
      const Tensor &a = get(ls.getOperand());
      auto [outer, n, inner] = splitAt(a.shape, ls.getAxis());
      Tensor r = zeros(out);
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t i = 0; i < inner; ++i) {
          double m = -INFINITY;
          for (int64_t k = 0; k < n; ++k)
            m = std::max(m, a.data[(o * n + k) * inner + i]);
          double acc = 0;
          for (int64_t k = 0; k < n; ++k)
            acc += std::exp(a.data[(o * n + k) * inner + i] - m);
          r.data[o * inner + i] = m + std::log(acc);
        }
      return set(op, r);
    }
    if (auto sm = dyn_cast<ir::SoftmaxOp>(op)) {
      Tensor a = get(sm.getOperand());
      auto [outer, n, inner] = splitAt(a.shape, sm.getAxis());
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t i = 0; i < inner; ++i) {
          double m = -INFINITY, acc = 0;
          for (int64_t k = 0; k < n; ++k)
            m = std::max(m, a.data[(o * n + k) * inner + i]);
          for (int64_t k = 0; k < n; ++k)
            acc += std::exp(a.data[(o * n + k) * inner + i] - m);
          for (int64_t k = 0; k < n; ++k) {
            double &v = a.data[(o * n + k) * inner + i];
            v = std::exp(v - m) / acc;
          }
        }
      return set(op, a);
    }
    if (auto gf = dyn_cast<ir::GraphFilterOp>(op)) {
      const Tensor &S = get(gf.getShift()), &x = get(gf.getSignal()),
                   &h = get(gf.getTaps());
      int64_t n = S.shape[0], rest = static_cast<int64_t>(x.size()) / n;
      Tensor r = zeros(out), pw = x; // pw = S^k x
      for (size_t k = 0; k < h.size(); ++k) {
        if (k > 0) {
          Tensor next = zeros(x.shape);
          for (int64_t i = 0; i < n; ++i)
            for (int64_t j = 0; j < n; ++j)
              for (int64_t c = 0; c < rest; ++c)
                next.data[i * rest + c] +=
                    S.data[i * n + j] * pw.data[j * rest + c];
          pw = next;
        }
        for (size_t i = 0; i < r.size(); ++i)
          r.data[i] += h.data[k] * pw.data[i];
      }
      return set(op, r);
    }
    throw EvalError("the evaluator does not run '" +
                    op.getName().getStringRef().str() + "'");
  }

  Env env_;
  double layerIndex_;
};

} // namespace

std::vector<Tensor> evaluate(mlir::Block &block,
                             const std::vector<Tensor> &args, Env env,
                             double layerIndex) {
  return Interpreter(std::move(env), layerIndex).run(block, args);
}

} // namespace unroll::eval
