#include "dsl/Builtins.h"

#include "dsl/Sema.h"
#include "dsl/SemaExpr.h"

#include <algorithm>

namespace unroll::dsl {

namespace {

const std::vector<std::string> kUnary = {
    "abs", "sign", "relu", "exp", "log", "sqrt", "tanh", "sigmoid", "square"};

struct Ctx {
  Sema &S;
  const std::string &name;
  const std::vector<Type> &args;
  const std::vector<SourceLoc> &locs;
  SourceLoc call;

  bool arity(size_t lo, size_t hi) {
    size_t n = args.size();
    if (n >= lo && n <= hi)
      return true;
    std::string want = lo == hi ? std::to_string(lo)
                       : hi == SIZE_MAX
                           ? "at least " + std::to_string(lo)
                           : std::to_string(lo) + " or " + std::to_string(hi);
    S.error(call, "'" + name + "' takes " + want +
                      (lo == 1 && hi == 1 ? " argument" : " arguments") +
                      ", got " + std::to_string(n));
    return false;
  }
  /// Checks the argument count and whether any argument's type is unknown;
  /// true means "return `early` now".
  bool start(size_t lo, size_t hi, Type &early) {
    if (!arity(lo, hi)) {
      early = Type::error();
      return true;
    }
    if (anyUnknown()) {
      early = unknown();
      return true;
    }
    return false;
  }
  bool anyUnknown() const {
    return std::any_of(args.begin(), args.end(),
                       [](const Type &t) { return t.isUnknown(); });
  }
  Type unknown() const {
    for (auto &t : args)
      if (t.isError())
        return Type::error();
    return Type::any();
  }
  // Requires a tensor (ints promote to scalars) of rank `rank` (-1: any,
  // -2: at least 1).
  bool tensor(size_t i, int rank, const char *what) {
    Type t = args[i].kind == Type::Kind::Int ? Type::scalar() : args[i];
    bool ok =
        t.isTensor() &&
        (rank == -1 ||
         (rank == -2 ? t.rank() >= 1 : t.rank() == static_cast<size_t>(rank)));
    if (!ok)
      S.error(locs[i], "argument " + std::to_string(i + 1) + " of '" + name +
                           "' must be " + what + ", got " + S.typeStr(args[i]));
    return ok;
  }
  Type t(size_t i) const {
    return args[i].kind == Type::Kind::Int ? Type::scalar() : args[i];
  }
  bool axis(size_t i, size_t rank, size_t &out) {
    if (args[i].kind == Type::Kind::Int) {
      Dim v = args[i].intValue.substitute(S.bindings);
      if (v.isConstant() && v.value() >= 0 &&
          static_cast<size_t>(v.value()) < rank) {
        out = static_cast<size_t>(v.value());
        return true;
      }
    }
    S.error(locs[i], "axis of '" + name + "' must be a constant from 0 to " +
                         std::to_string(rank == 0 ? 0 : rank - 1));
    return false;
  }
  Type fail() { return Type::error(); }
};

Type check(Ctx &c) {
  const std::string &n = c.name;
  Sema &S = c.S;
  if (std::find(kUnary.begin(), kUnary.end(), n) != kUnary.end()) {
    if (Type early; c.start(1, 1, early))
      return early;
    return c.tensor(0, -1, "a tensor") ? c.t(0) : c.fail();
  }
  if (n == "max" || n == "min") {
    if (!c.arity(2, 2))
      return c.fail();
    return elementwiseType(S, 'm', c.t(0), c.t(1), c.call, "'" + n + "'");
  }
  if (n == "sum" || n == "mean") {
    if (Type early; c.start(1, 2, early))
      return early;
    if (!c.tensor(0, -1, "a tensor"))
      return c.fail();
    if (c.args.size() == 1)
      return Type::scalar();
    size_t ax;
    Type x = c.t(0);
    if (!c.axis(1, x.rank(), ax))
      return c.fail();
    x.shape.erase(x.shape.begin() + ax);
    return x;
  }
  if (n == "norm" || n == "norm1" || n == "sqnorm") {
    if (Type early; c.start(1, 1, early))
      return early;
    return c.tensor(0, -1, "a tensor") ? Type::scalar() : c.fail();
  }
  if (n == "eye") {
    if (Type early; c.start(1, 1, early))
      return early;
    if (c.args[0].kind != Type::Kind::Int) {
      S.error(c.locs[0], "argument 1 of 'eye' must be an integer size, got " +
                             S.typeStr(c.args[0]));
      return c.fail();
    }
    return Type::tensor({c.args[0].intValue, c.args[0].intValue});
  }
  if (n == "stop_gradient") {
    if (Type early; c.start(1, 1, early))
      return early;
    return c.tensor(0, -1, "a tensor") ? c.t(0) : c.fail();
  }
  if (n == "inv") {
    if (Type early; c.start(1, 1, early))
      return early;
    if (!c.tensor(0, 2, "a square matrix"))
      return c.fail();
    Type m = c.t(0);
    if (!S.sameDim(m.shape[0], m.shape[1])) {
      S.error(c.locs[0], "argument 1 of 'inv' must be a square matrix, got " +
                             S.typeStr(m));
      return c.fail();
    }
    return m;
  }
  if (n == "lipschitz") {
    if (Type early; c.start(1, 1, early))
      return early;
    return c.tensor(0, 2, "a matrix") ? Type::scalar() : c.fail();
  }
  if (n == "normal" || n == "uniform") {
    if (!c.arity(2, 2))
      return c.fail();
    if (c.anyUnknown())
      return c.args[0].isError() || c.args[1].isError() ? c.fail()
                                                        : Type::dist();
    return c.tensor(0, 0, "a scalar") && c.tensor(1, 0, "a scalar")
               ? Type::dist()
               : c.fail();
  }
  if (n == "zeros" || n == "ones") {
    return c.arity(0, 0) ? Type::dist() : c.fail();
  }
  if (n == "concat") {
    if (Type early; c.start(3, 3, early))
      return early;
    if (!c.tensor(0, -2, "a tensor") || !c.tensor(1, -2, "a tensor"))
      return c.fail();
    Type a = c.t(0), b = c.t(1);
    size_t ax;
    if (!c.axis(2, a.rank(), ax))
      return c.fail();
    bool ok = a.rank() == b.rank();
    for (size_t i = 0; ok && i < a.rank(); ++i)
      ok = i == ax || S.sameDim(a.shape[i], b.shape[i]);
    if (!ok) {
      S.error(c.call, "cannot concatenate " + S.typeStr(a) + " and " +
                          S.typeStr(b) + " along axis " + std::to_string(ax));
      return c.fail();
    }
    try {
      a.shape[ax] = a.shape[ax] + b.shape[ax];
    } catch (DimError &e) {
      S.error(c.call, e.what());
      return c.fail();
    }
    return a;
  }
  if (n == "diff") {
    // Forward differences x[i + 1] - x[i] along an axis (the last by
    // default): one entry fewer along it.
    if (Type early; c.start(1, 2, early))
      return early;
    if (!c.tensor(0, -2, "a tensor"))
      return c.fail();
    Type x = c.t(0);
    size_t ax = x.rank() - 1;
    if (c.args.size() == 2 && !c.axis(1, x.rank(), ax))
      return c.fail();
    Dim len = x.shape[ax].substitute(S.bindings);
    if (len.isConstant() && len.value() < 2) {
      S.error(c.locs[0], "'diff' needs at least 2 entries along axis " +
                             std::to_string(ax) + ", got " + S.typeStr(x));
      return c.fail();
    }
    try {
      x.shape[ax] = x.shape[ax] - Dim::constant(1);
    } catch (DimError &e) {
      S.error(c.call, e.what());
      return c.fail();
    }
    return x;
  }
  if (n == "first_half" || n == "second_half") {
    if (Type early; c.start(1, 1, early))
      return early;
    if (!c.tensor(0, -2, "a tensor"))
      return c.fail();
    Type x = c.t(0);
    try {
      x.shape[0] = x.shape[0].substitute(S.bindings).divide(2);
    } catch (DimError &e) {
      S.error(c.locs[0], std::string("cannot split in halves: ") + e.what());
      return c.fail();
    }
    return x;
  }
  if (n == "squeeze2d" || n == "unsqueeze2d") {
    if (Type early; c.start(1, 1, early))
      return early;
    if (!c.tensor(0, 3, "an image tensor[c, h, w]"))
      return c.fail();
    Type x = c.t(0);
    try {
      if (n == "squeeze2d") {
        x.shape[0] = x.shape[0] * Dim::constant(4);
        x.shape[1] = x.shape[1].substitute(S.bindings).divide(2);
        x.shape[2] = x.shape[2].substitute(S.bindings).divide(2);
      } else {
        x.shape[0] = x.shape[0].substitute(S.bindings).divide(4);
        x.shape[1] = x.shape[1] * Dim::constant(2);
        x.shape[2] = x.shape[2] * Dim::constant(2);
      }
    } catch (DimError &e) {
      S.error(c.locs[0],
              "'" + n + "' of " + S.typeStr(c.t(0)) + ": " + e.what());
      return c.fail();
    }
    return x;
  }
  if (n == "conv2d" || n == "conv1x1") {
    // Both kernels are [out, in, ...]: conv2d's [out, in, kh, kw] and
    // conv1x1's channel-mixing matrix [out, in].
    if (Type early; c.start(2, 2, early))
      return early;
    bool full = n == "conv2d";
    if (!c.tensor(0, 3, "an image tensor[c, h, w]") ||
        !c.tensor(1, full ? 4 : 2,
                  full ? "a kernel tensor[out, in, kh, kw]"
                       : "a channel-mixing matrix mat[out, c]"))
      return c.fail();
    Type x = c.t(0), k = c.t(1);
    if (!S.sameDim(x.shape[0], k.shape[1])) {
      S.error(c.call, n + " of " + S.typeStr(x) + " with " +
                          (full ? "kernel " : "") + S.typeStr(k) +
                          ": input channels " + x.shape[0].str() + " and " +
                          k.shape[1].str() + " differ");
      return c.fail();
    }
    x.shape[0] = k.shape[0];
    return x;
  }
  if (n == "softmax" || n == "logsumexp") {
    if (Type early; c.start(2, 2, early))
      return early;
    if (!c.tensor(0, -2, "a tensor"))
      return c.fail();
    Type x = c.t(0);
    size_t ax;
    if (!c.axis(1, x.rank(), ax))
      return c.fail();
    if (n == "logsumexp")
      x.shape.erase(x.shape.begin() + ax);
    return x;
  }
  if (n == "append_ones") {
    if (Type early; c.start(1, 1, early))
      return early;
    if (!c.tensor(0, -2, "a tensor"))
      return c.fail();
    Type x = c.t(0);
    try {
      x.shape.back() = x.shape.back() + Dim::constant(1);
    } catch (DimError &e) {
      S.error(c.call, e.what());
      return c.fail();
    }
    return x;
  }
  if (n == "graph_filter") {
    if (Type early; c.start(3, 3, early))
      return early;
    if (!c.tensor(0, 2, "a graph shift operator mat[n, n]") ||
        !c.tensor(1, -2, "a tensor with one row per node") ||
        !c.tensor(2, 1, "a vector of filter taps"))
      return c.fail();
    Type g = c.t(0), x = c.t(1);
    if (!S.sameDim(g.shape[0], g.shape[1]) ||
        !S.sameDim(g.shape[1], x.shape[0])) {
      S.error(c.call, "graph_filter with shift operator " + S.typeStr(g) +
                          " cannot filter " + S.typeStr(x));
      return c.fail();
    }
    return x;
  }
  if (n == "minibatch") {
    if (!c.arity(2, SIZE_MAX))
      return c.fail();
    if (c.args[0].kind != Type::Kind::Int) {
      if (!c.args[0].isUnknown())
        S.error(c.locs[0], "argument 1 of 'minibatch' must be the batch size "
                           "(an integer), got " +
                               S.typeStr(c.args[0]));
      return c.fail();
    }
    Type tup = Type::make(Type::Kind::Tuple);
    for (size_t i = 1; i < c.args.size(); ++i) {
      if (c.args[i].isUnknown()) {
        tup.elems.push_back(c.args[i]);
        continue;
      }
      if (!c.tensor(i, -1, "a tensor[nodes, samples, ...]"))
        return c.fail();
      Type x = c.t(i);
      if (x.rank() < 2) {
        S.error(c.locs[i], "argument " + std::to_string(i + 1) +
                               " of 'minibatch' must have a sample axis "
                               "(axis 1), got " +
                               S.typeStr(x));
        return c.fail();
      }
      x.shape[1] = c.args[0].intValue;
      tup.elems.push_back(x);
    }
    if (tup.elems.size() == 1)
      return tup.elems[0];
    return tup;
  }
  if (n == "grad") {
    if (!c.arity(2, SIZE_MAX))
      return c.fail();
    if (c.args[0].isUnknown())
      return c.args[0];
    if (c.args[0].kind != Type::Kind::Func) {
      S.error(c.locs[0], "argument 1 of 'grad' must be a function, got " +
                             S.typeStr(c.args[0]));
      return c.fail();
    }
    std::vector<Type> rest(c.args.begin() + 1, c.args.end());
    std::vector<SourceLoc> restLocs(c.locs.begin() + 1, c.locs.end());
    Type r = S.callFunction(c.args[0], rest, restLocs,
                            std::vector<std::string>(rest.size()), c.call,
                            "the function passed to grad");
    if (r.isError())
      return r;
    if (r.kind != Type::Kind::Any && !r.isScalar()) {
      S.error(c.locs[0],
              "'grad' needs a scalar function, but it returns " + S.typeStr(r));
      return c.fail();
    }
    if (rest[0].kind == Type::Kind::Int)
      return Type::scalar();
    return rest[0];
  }
  return Type::error();
}

} // namespace

const std::vector<std::string> &builtinNames() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v = kUnary;
    for (const char *n :
         {"max",          "min",          "sum",       "mean",
          "norm",         "norm1",        "sqnorm",    "eye",
          "lipschitz",    "inv",          "conv1x1",   "normal",
          "uniform",      "zeros",        "ones",      "concat",
          "first_half",   "second_half",  "squeeze2d", "unsqueeze2d",
          "diff",         "conv2d",       "softmax",   "logsumexp",
          "append_ones",  "graph_filter", "minibatch", "grad",
          "stop_gradient"})
      v.push_back(n);
    return v;
  }();
  return names;
}

bool isBuiltin(const std::string &name) {
  const auto &v = builtinNames();
  return std::find(v.begin(), v.end(), name) != v.end();
}

Type checkBuiltin(Sema &S, const std::string &name,
                  const std::vector<Type> &args,
                  const std::vector<SourceLoc> &locs, SourceLoc callLoc) {
  Ctx c{S, name, args, locs, callLoc};
  return check(c);
}

} // namespace unroll::dsl
