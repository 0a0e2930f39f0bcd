// Semantic checks of `unrolled` and `train` declarations.
#include "dsl/Sema.h"
#include "dsl/SemaExpr.h"

#include <algorithm>
#include <cassert>
#include <set>

namespace unroll::dsl {

namespace {

constexpr long long kMaxLayers = 100000;

/// The kinds of values a configuration argument (data source, optimizer,
/// solver, evaluation) accepts. These are settings, not tensor expressions.
enum class ArgKind { Number, Int, Word, String, RangeOrInt, Problem };

struct ArgSpec {
  const char *name;
  ArgKind kind;
  bool required = false;
  std::vector<std::string> words = {};
};

struct CallSpec {
  const char *name;
  std::vector<ArgSpec> args;
};

const std::vector<CallSpec> kDataSources = {
    {"synthetic_sparse",
     {{"n", ArgKind::Int, true},
      {"density", ArgKind::Number},
      {"noise", ArgKind::Number},
      {"seed", ArgKind::Int}}},
    {"fashion_mnist",
     {{"n", ArgKind::Int},
      {"mask", ArgKind::Word, false, {"center", "random"}},
      {"path", ArgKind::String}}},
    {"synthetic_federated",
     {{"samples", ArgKind::Int, true},
      {"n", ArgKind::Int},
      {"heldout", ArgKind::Int},
      {"graph", ArgKind::Word, false, {"random", "ring", "complete"}},
      {"seed", ArgKind::Int}}},
    {"synthetic_piecewise",
     {{"n", ArgKind::Int, true},
      {"jumps", ArgKind::Int},
      {"noise", ArgKind::Number},
      {"seed", ArgKind::Int}}},
    // Besides these, a file for each data or given input and target, by
    // name (npyArgs).
    {"npy",
     {{"dir", ArgKind::String},
      {"valid", ArgKind::Number},
      {"test", ArgKind::Number}}},
};

/// The learning-rate schedule every optimizer takes: constant, or per
/// epoch a step decay (times `gamma` every `every` epochs) or a cosine
/// from lr down to `min_lr` over the run.
std::vector<ArgSpec> withSchedule(std::vector<ArgSpec> args) {
  args.push_back(
      {"schedule", ArgKind::Word, false, {"constant", "step", "cosine"}});
  args.push_back({"every", ArgKind::Int});
  args.push_back({"gamma", ArgKind::Number});
  args.push_back({"min_lr", ArgKind::Number});
  return args;
}

const std::vector<CallSpec> kPrimal = {
    {"adam", withSchedule({{"lr", ArgKind::Number, true},
                           {"beta1", ArgKind::Number},
                           {"beta2", ArgKind::Number},
                           {"weight_decay", ArgKind::Number}})},
    {"adamw", withSchedule({{"lr", ArgKind::Number, true},
                            {"beta1", ArgKind::Number},
                            {"beta2", ArgKind::Number},
                            {"weight_decay", ArgKind::Number}})},
    {"sgd", withSchedule({{"lr", ArgKind::Number, true},
                          {"momentum", ArgKind::Number},
                          {"nesterov", ArgKind::Word, false, {"true", "false"}},
                          {"weight_decay", ArgKind::Number}})},
};

const std::vector<CallSpec> kDual = {
    {"ascent",
     {{"lr", ArgKind::Number, true},
      {"every", ArgKind::Word, false, {"epoch", "batch"}}}},
};

const std::vector<CallSpec> kEvaluate = {
    {"asynchronous", {{"dropped", ArgKind::RangeOrInt, true}}},
    {"layerwise", {}},
};

const std::vector<CallSpec> kTarget = {
    {"solve",
     {{"problem", ArgKind::Problem, true},
      {"solver",
       ArgKind::Word,
       true,
       {"ista", "fista", "pgd", "primal_dual", "auto"}},
      {"tol", ArgKind::Number},
      {"iters", ArgKind::Int}}},
};

bool numberValue(const Expr &e, double &v, bool &isInt) {
  if (e.kind == Expr::Kind::Number) {
    auto &n = static_cast<const NumberExpr &>(e);
    v = n.value;
    isInt = n.isInt;
    return true;
  }
  if (e.kind == Expr::Kind::Unary) {
    auto &u = static_cast<const UnaryExpr &>(e);
    if (numberValue(*u.operand, v, isInt)) {
      v = -v;
      return true;
    }
  }
  return false;
}

/// Whether `e` is a call of `name`.
bool isCallTo(const Expr &e, const char *name) {
  if (e.kind != Expr::Kind::Call)
    return false;
  auto &c = static_cast<const CallExpr &>(e);
  return c.callee->kind == Expr::Kind::Name &&
         static_cast<const NameExpr &>(*c.callee).name == name;
}

/// zeros() or ones(): deterministic fills, allowed after `init y =`.
bool isFill(const Expr &e) {
  if (e.kind != Expr::Kind::Call)
    return false;
  auto &c = static_cast<const CallExpr &>(e);
  if (c.callee->kind != Expr::Kind::Name)
    return false;
  const std::string &n = static_cast<const NameExpr &>(*c.callee).name;
  return n == "zeros" || n == "ones";
}

/// The first name in `e`, or in the bodies of `fns` (where their own
/// parameters shadow it), that `scope` resolves to a quantity with a value
/// at every layer other than `self`.
const NameExpr *otherLayered(const Expr &e, const std::vector<FnDeclPtr> &fns,
                             const Scope *scope, const std::string &self) {
  std::set<std::string> names, seen;
  for (const Scope *s = scope; s; s = s->parent)
    for (auto &[n, sym] : s->names)
      if (seen.insert(n).second && sym.type.kind == Type::Kind::Layered &&
          n != self)
        names.insert(n);
  if (const NameExpr *n = firstNameIn(e, names))
    return n;
  for (const FnDeclPtr &fn : fns) {
    std::set<std::string> visible = names;
    for (const Param &p : fn->params)
      visible.erase(p.name);
    if (fn->body)
      if (const NameExpr *n = firstNameIn(*fn->body, visible))
        return n;
  }
  return nullptr;
}

std::string joinWords(const std::vector<std::string> &w) {
  std::string s;
  for (size_t i = 0; i < w.size(); ++i)
    s += (i == 0 ? "" : i + 1 == w.size() ? " or " : ", ") + w[i];
  return s;
}

} // namespace

/// Checks a configuration call against `specs`. Returns the matched spec's
/// name ("" on error) and, for Problem arguments, the named problem.
static std::string checkConfigCall(Sema &S, const Expr &e,
                                   const std::vector<CallSpec> &specs,
                                   const std::string &what,
                                   std::string *problemArg = nullptr) {
  const std::vector<Arg> *args = nullptr;
  std::string name;
  static const std::vector<Arg> none;
  if (e.kind == Expr::Kind::Call &&
      static_cast<const CallExpr &>(e).callee->kind == Expr::Kind::Name) {
    auto &c = static_cast<const CallExpr &>(e);
    name = static_cast<const NameExpr &>(*c.callee).name;
    args = &c.args;
  } else if (e.kind == Expr::Kind::Name) {
    name = static_cast<const NameExpr &>(e).name;
    args = &none;
  } else {
    std::vector<std::string> names;
    for (auto &s : specs)
      names.push_back(s.name);
    S.error(e.loc, "expected " + what + " (" + joinWords(names) + ")");
    return "";
  }
  const CallSpec *spec = nullptr;
  std::vector<std::string> names;
  for (auto &s : specs) {
    names.push_back(s.name);
    if (name == s.name)
      spec = &s;
  }
  if (!spec) {
    std::string hint = closestMatch(name, names);
    S.error(e.loc, "unknown " + what + " '" + name + "'" +
                       (hint.empty() ? "; expected " + joinWords(names)
                                     : "; did you mean '" + hint + "'?"));
    return "";
  }
  std::vector<bool> given(spec->args.size(), false);
  size_t positional = 0;
  bool ok = true;
  for (const Arg &a : *args) {
    size_t idx;
    if (a.name.empty()) {
      if (positional >= spec->args.size()) {
        S.error(a.loc, "too many arguments to '" + name + "'");
        return "";
      }
      idx = positional++;
    } else {
      auto it =
          std::find_if(spec->args.begin(), spec->args.end(),
                       [&](const ArgSpec &s) { return a.name == s.name; });
      if (it == spec->args.end()) {
        std::vector<std::string> an;
        for (auto &s : spec->args)
          an.push_back(s.name);
        std::string hint = closestMatch(a.name, an);
        S.error(a.loc,
                "'" + name + "' has no setting '" + a.name + "'" +
                    (hint.empty() ? "" : "; did you mean '" + hint + "'?"));
        ok = false;
        continue;
      }
      idx = it - spec->args.begin();
    }
    if (given[idx]) {
      S.error(a.loc, "setting '" + std::string(spec->args[idx].name) +
                         "' of '" + name + "' is given twice");
      ok = false;
      continue;
    }
    given[idx] = true;
    const ArgSpec &as = spec->args[idx];
    const Expr &v = *a.value;
    std::string label = "'" + std::string(as.name) + "' of '" + name + "'";
    double num;
    bool isInt;
    switch (as.kind) {
    case ArgKind::Number:
      if (!numberValue(v, num, isInt)) {
        S.error(v.loc, label + " must be a number");
        ok = false;
      }
      break;
    case ArgKind::Int:
      if (!numberValue(v, num, isInt) || !isInt || num < 0) {
        S.error(v.loc, label + " must be a non-negative integer");
        ok = false;
      }
      break;
    case ArgKind::String:
      if (v.kind != Expr::Kind::String) {
        S.error(v.loc, label + " must be a string in double quotes");
        ok = false;
      }
      break;
    case ArgKind::Problem:
    case ArgKind::Word: {
      if (v.kind != Expr::Kind::Name) {
        S.error(v.loc, label + " must be a name");
        ok = false;
        break;
      }
      const std::string &w = static_cast<const NameExpr &>(v).name;
      if (as.kind == ArgKind::Problem) {
        if (problemArg)
          *problemArg = w;
        break;
      }
      if (std::find(as.words.begin(), as.words.end(), w) == as.words.end()) {
        std::string hint = closestMatch(w, as.words);
        S.error(v.loc,
                label + " must be " + joinWords(as.words) + ", got '" + w +
                    "'" +
                    (hint.empty() ? "" : "; did you mean '" + hint + "'?"));
        ok = false;
      }
      break;
    }
    case ArgKind::RangeOrInt: {
      bool good = numberValue(v, num, isInt) && isInt && num >= 0;
      if (v.kind == Expr::Kind::Range) {
        auto &r = static_cast<const RangeExpr &>(v);
        double lo, hi;
        bool li, hiInt;
        good = numberValue(*r.lo, lo, li) && numberValue(*r.hi, hi, hiInt) &&
               li && hiInt && lo >= 0 && hi >= lo;
      }
      if (!good) {
        S.error(v.loc, label + " must be an integer or a range lo..hi");
        ok = false;
      }
      break;
    }
    }
  }
  for (size_t i = 0; i < spec->args.size(); ++i)
    if (spec->args[i].required && !given[i]) {
      S.error(e.loc, "'" + name + "' needs '" + spec->args[i].name + "'");
      ok = false;
    }
  return ok ? name : "";
}

/// npy(dir = "...", NAME = "FILE.npy", valid = ..., test = ...): the
/// common settings and a file for any data or given input of `pd` and any
/// target of `t`; either `dir` or a file for every data and given input.
static void checkNpy(Sema &S, const CallExpr &c, const ProblemDecl &pd,
                     const TrainDecl &t) {
  std::vector<std::string> names; // inputs, then targets
  for (const VarDecl &v : pd.vars)
    if (v.role != VarDecl::Role::Var)
      names.push_back(v.name);
  const size_t inputs = names.size();
  for (const TrainItem &it : t.items)
    if (it.kind == TrainItem::Kind::Target)
      names.push_back(it.name);
  CallSpec spec = *std::find_if(
      kDataSources.begin(), kDataSources.end(),
      [](const CallSpec &s) { return std::string(s.name) == "npy"; });
  for (const std::string &n : names)
    spec.args.push_back({n.c_str(), ArgKind::String});
  if (checkConfigCall(S, c, {spec}, "data source").empty())
    return;
  bool dir = false;
  std::vector<std::string> missing(names.begin(), names.begin() + inputs);
  double fraction = 0;
  for (const Arg &a : c.args) {
    if (a.name.empty()) {
      S.error(a.loc, "the settings of 'npy' are named: dir = \"DIR\", "
                     "NAME = \"FILE.npy\", valid = FRACTION, test = "
                     "FRACTION");
      return;
    }
    dir |= a.name == "dir";
    missing.erase(std::remove(missing.begin(), missing.end(), a.name),
                  missing.end());
    if (a.name == "valid" || a.name == "test") {
      double v;
      bool isInt;
      if (!numberValue(*a.value, v, isInt))
        continue;
      if (v < 0 || v >= 1) {
        S.error(a.value->loc, "'" + a.name +
                                  "' of 'npy' is the fraction of the "
                                  "instances it holds, from 0 up to 1");
        fraction = -2; // reported: no error for the sum
      }
      fraction += v;
    }
  }
  if (fraction >= 1)
    S.error(c.loc, "'valid' and 'test' of 'npy' leave no training instances");
  if (!dir && !missing.empty())
    S.error(c.loc, "'npy' needs dir = \"DIR\" (holding NAME.npy for each "
                   "input) or a file for every data and given input; no "
                   "file for " +
                       joinWords(missing));
}

void Sema::checkUnrolled(const UnrolledDecl &u, Scope *fs) {
  bindings.clear();
  Scope *us = newScope(fs);
  ExprChecker fec(*this, fs);

  long long layers = 0;
  bool haveLayers = false;
  for (const Arg &a : u.options) {
    if (!a.name.empty() && a.name != "layers") {
      std::string hint = closestMatch(a.name, {"layers"});
      error(a.loc, "unknown option '" + a.name + "' of unrolled '" + u.name +
                       "'" +
                       (hint.empty() ? "; the only option is 'layers'"
                                     : "; did you mean '" + hint + "'?"));
      continue;
    }
    if (haveLayers) {
      error(a.loc, "'layers' is given twice");
      continue;
    }
    haveLayers = true;
    if (fec.constantInt(*a.value, layers, "layer count") &&
        (layers < 1 || layers > kMaxLayers)) {
      error(a.value->loc, "layer count must be between 1 and " +
                              std::to_string(kMaxLayers) + ", got " +
                              std::to_string(layers));
      layers = 1;
    }
  }
  if (!haveLayers)
    missing(u.loc, "unrolled '" + u.name + "' needs a layer count, e.g. '" +
                       u.name + "(layers = 10)'");

  Symbol *ps = fs->lookup(u.problem);
  if (!ps) {
    unknownName(u.problemLoc, u.problem, fs);
    return;
  }
  if (ps->kind != Symbol::Kind::Problem) {
    error(u.problemLoc,
          "'" + u.problem + "' is " + ps->what + ", not a problem");
    return;
  }
  const ProblemDecl &pd = *ps->problem;
  ProblemInfo *info = problemInfo_.at(&pd);

  // Bind the problem's parameters: from here on `p` means 1024.
  std::vector<std::string> names;
  std::vector<SourceLoc> locs;
  for (const Arg &a : u.problemArgs) {
    names.push_back(a.name);
    locs.push_back(a.value->loc);
  }
  std::vector<int> order(pd.params.size(), -1);
  {
    size_t pos = 0;
    bool ok = true;
    for (size_t i = 0; i < u.problemArgs.size() && ok; ++i) {
      const Arg &a = u.problemArgs[i];
      size_t idx = pd.params.size();
      if (a.name.empty()) {
        idx = pos++;
      } else {
        for (size_t j = 0; j < pd.params.size(); ++j)
          if (pd.params[j].name == a.name)
            idx = j;
        if (idx == pd.params.size()) {
          std::vector<std::string> cands;
          for (auto &p : pd.params)
            cands.push_back(p.name);
          std::string hint = closestMatch(a.name, cands);
          error(a.loc,
                "problem '" + pd.name + "' has no parameter '" + a.name + "'" +
                    (hint.empty() ? "" : "; did you mean '" + hint + "'?"));
          ok = false;
          continue;
        }
      }
      if (idx >= pd.params.size()) {
        error(a.loc, "too many arguments to problem '" + pd.name + "'");
        ok = false;
      } else if (order[idx] != -1) {
        error(a.loc, "parameter '" + pd.params[idx].name + "' is given twice");
        ok = false;
      } else {
        order[idx] = static_cast<int>(i);
      }
    }
  }
  std::map<std::string, double> constants;
  for (size_t i = 0; i < pd.params.size(); ++i) {
    const Param &p = pd.params[i];
    const Expr *value = order[i] >= 0 ? u.problemArgs[order[i]].value.get()
                                      : p.defaultValue.get();
    if (!value) {
      error(u.problemLoc, "missing value for parameter '" + p.name +
                              "' of problem '" + pd.name + "'");
      continue;
    }
    bool isInt = !p.type || p.type->kind == TypeExpr::Kind::Int;
    if (isInt) {
      long long v;
      if (fec.constantInt(*value, v, "size '" + p.name + "'")) {
        if (v < 1)
          error(value->loc, "size '" + p.name + "' must be positive, got " +
                                std::to_string(v));
        else
          bindings[p.name] = Dim::constant(v);
      }
    } else {
      Type t = fec.check(*value);
      double v;
      bool isIntLit;
      if (!t.isUnknown() && !(t.kind == Type::Kind::Int || t.isScalar()))
        error(value->loc,
              "parameter '" + p.name + "' must be a number, got " + typeStr(t));
      else if (!numberValue(*value, v, isIntLit))
        error(value->loc, "parameter '" + p.name +
                              "' must be a number written out, e.g. 0.5");
      else
        constants[p.name] = v;
    }
  }

  // The problem's shapes with its sizes bound (p = 64): a size that makes
  // a dimension or a tensor too large is an error here, not in the
  // compiler.
  for (const VarDecl &v : pd.vars) {
    auto it = info->scope->names.find(v.name);
    if (v.type && it != info->scope->names.end() &&
        it->second.type.kind == Type::Kind::Tensor &&
        !checkDims(it->second.type.shape, v.type->dims))
      note(u.problemLoc,
           "with the sizes of problem '" + pd.name + "' given here");
  }
  for (auto &[n, sym] : info->scope->names)
    us->names[n] = sym;
  Symbol lsym;
  lsym.type = Type::integer(Dim::constant(haveLayers ? layers : 1));
  lsym.what = "the number of layers";
  declareChecked(us, "L", lsym);

  ExprChecker ec(*this, us);
  declareLets(us, u.lets);
  for (const ParamDecl &p : u.params) {
    Symbol sym;
    sym.type = evalType(*p.type, us, nullptr, false);
    sym.loc = p.loc;
    sym.what = "param";
    if (p.binding == Binding::None)
      error(p.loc, "param '" + p.name +
                       "' needs 'per layer' (one copy per "
                       "layer) or 'shared' (one copy for all)");
    if (p.repeat)
      error(p.repeat->loc, "'repeat' is only allowed inside a module");
    checkParamInit(p, sym.type, us);
    declareChecked(us, p.name, sym);
  }

  // Initial state.
  std::map<std::string, SourceLoc> inited;
  for (const InitDecl &in : u.inits) {
    const VarDecl *var = nullptr;
    for (const VarDecl *v : info->vars)
      if (v->name == in.var)
        var = v;
    Type t = ec.check(*in.value);
    if (!var) {
      std::vector<std::string> vn;
      for (const VarDecl *v : info->vars)
        vn.push_back(v->name);
      std::string hint = closestMatch(in.var, vn);
      error(in.loc, "'" + in.var + "' is not a variable of problem '" +
                        pd.name + "'" +
                        (hint.empty() ? "" : "; did you mean '" + hint + "'?"));
      continue;
    }
    if (inited.count(in.var)) {
      error(in.loc, "'" + in.var + "' is initialised twice");
      note(inited[in.var], "first initialised here");
      continue;
    }
    inited[in.var] = in.loc;
    const Type &vt = us->names.at(in.var).type;
    if (in.random) {
      if (!t.isUnknown() && t.kind != Type::Kind::Dist)
        error(in.value->loc, "'init " + in.var +
                                 " ~' needs a distribution "
                                 "such as normal(0, 1), got " +
                                 typeStr(t));
    } else if (isFill(*in.value)) {
      // `init y = zeros()` is as deterministic as `init y = x`.
    } else if (!t.isUnknown() && !sameType(t, vt)) {
      error(in.value->loc, "'" + in.var + "' is " + typeStr(vt) +
                               ", but its initial value is " + typeStr(t));
    }
  }
  for (const VarDecl *v : info->vars)
    if (!inited.count(v->name))
      missing(u.loc, "unrolled '" + u.name + "' does not initialise '" +
                         v->name + "'; add 'init " + v->name +
                         " ~ normal(0, 1)' or 'init " + v->name + " = ...'");

  // The algorithm's own state, in order: an initial value may read the
  // problem's variables (their initial values) and the states before it.
  std::vector<std::string> states;
  for (size_t k = 0; k < u.states.size(); ++k) {
    const StateDecl &sd = u.states[k];
    std::set<std::string> later;
    for (size_t j = k; j < u.states.size(); ++j)
      later.insert(u.states[j].name);
    Symbol sym;
    sym.type = evalType(*sd.type, us, nullptr, false);
    sym.loc = sd.loc;
    sym.what = "state";
    if (!sym.type.isUnknown() && !sym.type.isTensor()) {
      error(sd.type->loc, "state '" + sd.name + "' must be a scalar, vec, " +
                              "mat or tensor, not " + typeStr(sym.type));
      sym.type = Type::error();
    } else if (sym.type.isTensor() && !checkDims(sym.type.shape, sd.type->dims))
      note(u.problemLoc,
           "with the sizes of problem '" + pd.name + "' given here");
    if (const NameExpr *n = firstNameIn(*sd.value, later)) {
      error(n->loc, "state '" + n->name + "' is read before it is defined" +
                        (n->name == sd.name
                             ? std::string("; its initial value cannot use "
                                           "itself")
                             : "; states are initialised in the order they "
                               "are declared, so declare '" +
                                   n->name + "' before '" + sd.name + "'"));
    } else {
      Type t = ec.check(*sd.value);
      if (sd.random) {
        if (!t.isUnknown() && t.kind != Type::Kind::Dist)
          error(sd.value->loc, "'state " + sd.name +
                                   " ~' needs a distribution such as "
                                   "normal(0, 1), got " +
                                   typeStr(t));
      } else if (!isFill(*sd.value) && !t.isUnknown() &&
                 !sym.type.isUnknown() && !sameType(t, sym.type) &&
                 !t.isScalar() && t.kind != Type::Kind::Int) {
        error(sd.value->loc, "state '" + sd.name + "' is " + typeStr(sym.type) +
                                 ", but its initial value is " + typeStr(t));
      }
    }
    if (declareChecked(us, sd.name, sym))
      states.push_back(sd.name);
  }

  // The step: one layer of the algorithm.
  Scope *ss = newScope(us);
  Symbol layerIdx;
  layerIdx.type = Type::integer(Dim::symbol("l"));
  layerIdx.what = "the layer index";
  ss->names["l"] = layerIdx;
  ExprChecker sc(*this, ss);
  std::set<std::string> assigned;
  std::vector<std::string> locals;
  if (!u.hasStep)
    missing(u.loc, "unrolled '" + u.name + "' has no 'step'");
  for (const StmtPtr &s : u.step) {
    if (s->kind == Stmt::Kind::Return) {
      error(s->loc, "'return' is not allowed in a step; assign the state "
                    "variables instead");
      continue;
    }
    auto &a = static_cast<const AssignStmt &>(*s);
    std::vector<Type> types = targetTypes(a, sc.check(*a.value));
    for (size_t i = 0; i < a.targets.size(); ++i) {
      const std::string &n = a.targets[i];
      Type ti = types[i];
      if (ti.kind == Type::Kind::Int)
        ti = Type::scalar();
      Symbol *prev = ss->lookup(n);
      if (prev && (prev->what == "var" || prev->what == "state")) {
        if (!sameType(ti, prev->type))
          error(a.targetLocs[i], "step assigns " + typeStr(ti) + " to '" + n +
                                     "', which is " + typeStr(prev->type));
        assigned.insert(n);
        continue;
      }
      if (prev && prev->what != "step result") {
        error(a.targetLocs[i],
              "cannot assign to " + prev->what + " '" + n + "'");
        continue;
      }
      if (!ti.isUnknown() && !ti.isTensor()) {
        error(a.targetLocs[i], "'" + n + "' would hold " + typeStr(ti) +
                                   "; step results must be tensors");
        ti = Type::error();
      }
      if (!prev)
        locals.push_back(n);
      Symbol sym;
      sym.type = ti;
      sym.loc = a.targetLocs[i];
      sym.what = "step result";
      declare(ss, n, sym);
    }
  }
  if (u.hasStep)
    for (const VarDecl *v : info->vars)
      if (!assigned.count(v->name))
        missing(u.stepLoc, "the step never updates '" + v->name +
                               "', so the layers would not change it");
  if (u.hasStep)
    for (const StateDecl &sd : u.states)
      if (!assigned.count(sd.name))
        error(sd.loc, "the step never assigns state '" + sd.name +
                          "', so it would keep its initial value; assign it "
                          "in 'step' or make it a 'let'");

  // What a train block sees: state and step results, one per layer.
  Scope *ls = newScope(us);
  for (const VarDecl *v : info->vars) {
    Symbol sym = us->names.at(v->name);
    sym.type = Type::layered(sym.type);
    sym.what = "state";
    ls->names[v->name] = sym;
  }
  for (const std::string &n : states) {
    Symbol sym = us->names.at(n);
    sym.type = Type::layered(sym.type);
    ls->names[n] = sym;
  }
  for (const std::string &n : locals) {
    Symbol sym = ss->names.at(n);
    sym.type = Type::layered(sym.type);
    ls->names[n] = sym;
  }
  unrolledLayered_[&u] = ls;
  UnrolledInfo &ui = unrolledInfo_[&u];
  ui.problem = &pd;
  ui.bindings = bindings;
  ui.constants = constants;
  ui.layers = haveLayers ? layers : 1;
  bindings.clear();
}

/// Settings of a primal optimizer that only apply together: a schedule's
/// own settings with that schedule, Nesterov's variant with momentum.
static void checkPrimalSettings(Sema &S, const CallExpr &c) {
  const std::string &name = static_cast<const NameExpr &>(*c.callee).name;
  std::map<std::string, const Arg *> given;
  for (const Arg &a : c.args)
    if (!a.name.empty())
      given[a.name] = &a;
  auto word = [&](const char *key) -> std::string {
    auto it = given.find(key);
    return it == given.end()
               ? ""
               : static_cast<const NameExpr &>(*it->second->value).name;
  };
  const std::string schedule = word("schedule");
  for (auto [key, needs] :
       {std::pair<const char *, const char *>{"every", "step"},
        {"gamma", "step"},
        {"min_lr", "cosine"}})
    if (given.count(key) && schedule != needs)
      S.error(given[key]->loc, "'" + std::string(key) + "' of '" + name +
                                   "' applies to 'schedule = " + needs +
                                   "' only");
  double num;
  bool isInt;
  if (word("nesterov") == "true" &&
      !(given.count("momentum") &&
        numberValue(*given["momentum"]->value, num, isInt) && num > 0))
    S.error(given["nesterov"]->loc,
            "'nesterov' of '" + name + "' needs a momentum above 0");
}

void Sema::checkTrain(const TrainDecl &t, Scope *fs) {
  using K = TrainItem::Kind;
  Symbol *s = fs->lookup(t.name);
  if (!s) {
    unknownName(t.nameLoc, t.name, fs);
    return;
  }
  if (s->kind != Symbol::Kind::Unrolled) {
    error(t.nameLoc, "'" + t.name + "' is " + s->what +
                         "; 'train' needs an unrolled algorithm");
    return;
  }
  auto lit = unrolledLayered_.find(s->unrolled);
  if (lit == unrolledLayered_.end())
    return; // the unrolled declaration itself failed; already reported
  const UnrolledInfo &ui = unrolledInfo_.at(s->unrolled);
  bindings = ui.bindings;
  const ProblemDecl *pd = ui.problem;
  Scope *ts = newScope(lit->second);
  auto layerScope = [&] {
    Scope *sc = newScope(ts);
    Symbol idx;
    idx.type = Type::integer(Dim::symbol("l"));
    idx.what = "the layer index";
    sc->names["l"] = idx;
    return sc;
  };

  std::map<K, SourceLoc> once;
  static const char *itemNames[] = {"data",  "target", "loss",    "descend",
                                    "noise", "primal", "dual",    "epochs",
                                    "batch", "seed",   "evaluate"};
  for (const TrainItem &it : t.items) {
    const std::string itemName = itemNames[static_cast<int>(it.kind)];
    if (it.kind != K::Target && it.kind != K::Descend && it.kind != K::Noise &&
        it.kind != K::Evaluate) {
      auto prev = once.find(it.kind);
      if (prev != once.end()) {
        error(it.loc, "'" + itemName + "' is given twice in the train block");
        note(prev->second, "first given here");
        continue;
      }
      once[it.kind] = it.loc;
    }
    switch (it.kind) {
    case K::Data:
      // Alternatives have no meaning the runtime gives them yet: one
      // source, or an error rather than a silently unused second.
      if (it.calls.size() > 1)
        error(it.calls[1]->loc,
              "a train block reads one data source; alternatives ('A | B') "
              "are not supported");
      for (auto &c : it.calls)
        if (!isCallTo(*c, "npy"))
          checkConfigCall(*this, *c, kDataSources, "data source");
        else
          checkNpy(*this, static_cast<const CallExpr &>(*c), *pd, t);
      break;
    case K::Primal:
      if (!checkConfigCall(*this, *it.value, kPrimal, "primal optimizer")
               .empty() &&
          it.value->kind == Expr::Kind::Call)
        checkPrimalSettings(*this, static_cast<const CallExpr &>(*it.value));
      break;
    case K::Dual:
      checkConfigCall(*this, *it.value, kDual, "dual update");
      break;
    case K::Evaluate:
      checkConfigCall(*this, *it.value, kEvaluate, "evaluation");
      break;
    case K::Epochs:
    case K::Batch:
    case K::Seed: {
      ExprChecker ec(*this, ts);
      long long v;
      if (ec.constantInt(*it.value, v, "'" + itemName + "'") &&
          v < (it.kind == K::Seed ? 0 : 1))
        error(it.value->loc,
              "'" + itemName + "' must be " +
                  (it.kind == K::Seed ? "non-negative" : "at least 1") +
                  ", got " + std::to_string(v));
      break;
    }
    case K::Target: {
      std::string prob;
      if (checkConfigCall(*this, *it.value, kTarget, "target", &prob).empty())
        break;
      if (prob != pd->name) {
        Symbol *ps = fs->lookup(prob);
        if (!ps)
          unknownName(
              static_cast<const CallExpr &>(*it.value).args[0].value->loc, prob,
              fs);
        else
          error(static_cast<const CallExpr &>(*it.value).args[0].value->loc,
                "target must solve '" + pd->name + "', the problem '" + t.name +
                    "' solves; got '" + prob + "'");
        break;
      }
      ProblemInfo *info = problemInfo_.at(pd);
      Symbol sym;
      sym.loc = it.nameLoc;
      sym.what = "target";
      if (info->vars.size() == 1) {
        sym.type = info->scope->names.at(info->vars[0]->name).type;
      } else {
        sym.type = Type::make(Type::Kind::Tuple);
        for (const VarDecl *v : info->vars)
          sym.type.elems.push_back(info->scope->names.at(v->name).type);
      }
      Symbol *prev = ts->lookup(it.name);
      if (prev && ts->names.count(it.name) == 0 && prev->loc.valid() &&
          prev->what != "let") {
        error(it.nameLoc, "target '" + it.name + "' would hide " + prev->what +
                              " '" + it.name + "'");
        note(prev->loc, "declared here");
        break;
      }
      declareChecked(ts, it.name, sym);
      break;
    }
    case K::Loss: {
      ExprChecker ec(*this, ts, ExprChecker::Layers::Select);
      Type lt = ec.check(*it.value);
      if (!lt.isUnknown() && !lt.isScalar())
        error(it.value->loc, "loss must be a scalar, got " + typeStr(lt));
      break;
    }
    case K::Noise: {
      Scope *sc = layerScope();
      Symbol *v = sc->lookup(it.name);
      if (!v || v->what != "state") {
        std::vector<std::string> state;
        for (auto &[n, sym] : lit->second->names)
          if (sym.what == "state")
            state.push_back(n);
        error(it.nameLoc, "noise can only be added to a state variable of '" +
                              t.name + "' (" + joinWords(state) + "), not '" +
                              it.name + "'");
        break;
      }
      // The noise's body sees the state it is added to, nothing else
      // that changes across layers.
      if (const NameExpr *n = otherLayered(*it.value, {}, sc, it.name)) {
        error(n->loc, "the noise on '" + it.name + "' reads '" + n->name +
                          "', which also changes across layers; it can read "
                          "only '" +
                          it.name +
                          "' at its layer and values fixed across "
                          "layers");
        break;
      }
      ExprChecker ec(*this, sc, ExprChecker::Layers::Current);
      Type nt = ec.check(*it.value);
      if (!nt.isUnknown() && nt.kind != Type::Kind::Dist)
        error(it.value->loc, "noise must be a distribution such as "
                             "normal(0, 0.1), got " +
                                 typeStr(nt));
      break;
    }
    case K::Descend:
      checkDescend(it, layerScope());
      break;
    }
  }
  if (!once.count(K::Loss))
    missing(t.loc, "train block for '" + t.name + "' has no 'loss'");
  bindings.clear();
}

void Sema::checkDescend(const TrainItem &it, Scope *sc) {
  for (auto &fn : it.fns)
    declareChecked(sc, fn->name, functionSymbol(*fn, sc));
  for (auto &fn : it.fns)
    checkFnDefinition(*fn, sc);

  double eps;
  bool isInt;
  if (!numberValue(*it.eps, eps, isInt))
    error(it.eps->loc, "eps must be a number");
  else if (eps < 0 || eps >= 1)
    error(it.eps->loc, "eps must be in [0, 1), got " + exprToString(*it.eps));

  static const std::vector<std::string> forms = {"distance", "grad_norm",
                                                 "objective"};
  const Expr &v = *it.value;
  if (v.kind != Expr::Kind::Call ||
      static_cast<const CallExpr &>(v).callee->kind != Expr::Kind::Name) {
    error(v.loc, "descend needs a constraint form: distance(y, target), "
                 "grad_norm(f, y) or objective(f, y)");
    return;
  }
  auto &call = static_cast<const CallExpr &>(v);
  const std::string &form = static_cast<const NameExpr &>(*call.callee).name;
  if (std::find(forms.begin(), forms.end(), form) == forms.end()) {
    std::string hint = closestMatch(form, forms);
    error(v.loc, "unknown constraint form '" + form + "'" +
                     (hint.empty() ? "; expected distance, grad_norm or "
                                     "objective"
                                   : "; did you mean '" + hint + "'?"));
    return;
  }
  if (call.args.size() != 2) {
    error(v.loc, "'" + form + "' takes 2 arguments, got " +
                     std::to_string(call.args.size()));
    return;
  }
  for (const Arg &a : call.args)
    if (!a.name.empty()) {
      error(a.loc, "'" + form + "' takes no named arguments");
      return;
    }
  // The quantity constrained must change from layer to layer.
  size_t layeredArg = form == "distance" ? 0 : 1;
  const Expr &q = *call.args[layeredArg].value;
  Symbol *qs = q.kind == Expr::Kind::Name
                   ? sc->lookup(static_cast<const NameExpr &>(q).name)
                   : nullptr;
  if (!qs || qs->type.kind != Type::Kind::Layered) {
    if (q.kind == Expr::Kind::Name && !qs) {
      unknownName(q.loc, static_cast<const NameExpr &>(q).name, sc);
      return;
    }
    error(q.loc, "argument " + std::to_string(layeredArg + 1) + " of '" + form +
                     "' must change across layers (a state variable "
                     "or a step result), but '" +
                     exprToString(q) + "' does not");
    return;
  }
  // A constraint compares one quantity with itself at the layer before:
  // its measure sees that quantity, nothing else that changes.
  const std::string &self = static_cast<const NameExpr &>(q).name;
  for (const Arg &a : call.args)
    if (const NameExpr *n = otherLayered(*a.value, it.fns, sc, self)) {
      error(n->loc, "the descent constraint on '" + self + "' reads '" +
                        n->name +
                        "', which also changes across layers; it can read "
                        "only '" +
                        self + "' at its layer and values fixed across layers");
      return;
    }
  ExprChecker ec(*this, sc, ExprChecker::Layers::Current);
  Type a0 = ec.check(*call.args[0].value);
  Type a1 = ec.check(*call.args[1].value);
  if (form == "distance") {
    if (!sameType(a0, a1))
      error(call.args[1].value->loc, "distance between " + typeStr(a0) +
                                         " and " + typeStr(a1) +
                                         ": shapes differ");
    return;
  }
  if (a0.isUnknown())
    return;
  if (a0.kind != Type::Kind::Func) {
    error(call.args[0].value->loc, "argument 1 of '" + form +
                                       "' must be a function, got " +
                                       typeStr(a0));
    return;
  }
  Type r = callFunction(a0, {a1}, {call.args[1].value->loc}, {""}, v.loc,
                        exprToString(*call.args[0].value));
  if (!r.isUnknown() && !r.isScalar())
    error(call.args[0].value->loc, "'" + exprToString(*call.args[0].value) +
                                       "' must return a scalar, got " +
                                       typeStr(r));
}

} // namespace unroll::dsl
