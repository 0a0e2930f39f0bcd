#include "dsl/Sema.h"

#include "dsl/Builtins.h"
#include "dsl/SemaExpr.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <sstream>

namespace unroll::dsl {

//===----------------------------------------------------------------------===//
// Infrastructure
//===----------------------------------------------------------------------===//

Scope *Sema::newScope(Scope *parent) {
  scopes_.emplace_back();
  scopes_.back().parent = parent;
  return &scopes_.back();
}

void Sema::error(SourceLoc loc, const std::string &msg) {
  // Inside a function body, say which call led here (innermost first).
  if (!diag_.error(loc, msg))
    return;
  for (auto it = frames_.rbegin(); it != frames_.rend(); ++it)
    diag_.note(it->callLoc, "in call to '" + it->name + "' here");
}

void Sema::missing(SourceLoc loc, const std::string &msg) {
  if (!incompleteFiles_.count(loc.file))
    error(loc, msg);
}

bool Sema::declareChecked(Scope *s, const std::string &name, Symbol sym) {
  auto it = s->names.find(name);
  if (it != s->names.end()) {
    error(sym.loc, "redefinition of '" + name + "'");
    if (it->second.loc.valid())
      note(it->second.loc, "previous definition is here");
    else
      note(SourceLoc{}, "'" + name + "' is " + it->second.what);
    return false;
  }
  s->names.emplace(name, std::move(sym));
  return true;
}

void Sema::declare(Scope *s, const std::string &name, Symbol sym) {
  s->names[name] = std::move(sym);
}

bool Sema::sameDim(const Dim &a, const Dim &b) const {
  if (a == b)
    return true;
  try {
    return a.substitute(bindings) == b.substitute(bindings);
  } catch (DimError &) {
    return false;
  }
}

bool Sema::sameType(const Type &a, const Type &b) const {
  if (a.isUnknown() || b.isUnknown())
    return true;
  if (a.kind == Type::Kind::Int && b.kind == Type::Kind::Int)
    return true;
  if (a.kind != b.kind)
    return false;
  if (a.kind == Type::Kind::Tensor) {
    if (a.rank() != b.rank())
      return false;
    for (size_t i = 0; i < a.rank(); ++i)
      if (!sameDim(a.shape[i], b.shape[i]))
        return false;
    return true;
  }
  if (a.kind == Type::Kind::Module)
    return a.module == b.module;
  if (a.kind == Type::Kind::Layered || a.kind == Type::Kind::Tuple) {
    if (a.elems.size() != b.elems.size())
      return false;
    for (size_t i = 0; i < a.elems.size(); ++i)
      if (!sameType(a.elems[i], b.elems[i]))
        return false;
  }
  return true;
}

std::string Sema::typeStr(const Type &t) const {
  if (t.kind == Type::Kind::Module && t.module)
    return "module " + t.module->decl->name;
  return t.str();
}

void Sema::unknownName(SourceLoc loc, const std::string &name, Scope *scope) {
  if (name == "l") {
    error(loc, "unknown name 'l'; the layer index 'l' exists only in 'step', "
               "'noise' and 'descend'");
    return;
  }
  std::vector<std::string> cands = builtinNames();
  for (Scope *s = scope; s; s = s->parent)
    for (auto &[n, sym] : s->names)
      cands.push_back(n);
  // A library that defines the name but was not imported is the likeliest fix.
  std::map<std::string, std::string> libraryOf;
  for (const std::string &lib : loader_.availableLibraries()) {
    for (const std::string &n : loader_.namesDefinedBy(lib)) {
      if (n == name) {
        error(loc, "unknown name '" + name + "'; it is defined in library '" +
                       lib + "': add 'import " + lib + "'");
        return;
      }
      libraryOf.emplace(n, lib);
    }
  }
  std::string hint = closestMatch(name, cands);
  if (hint.empty()) {
    std::vector<std::string> libNames;
    for (auto &[n, lib] : libraryOf)
      libNames.push_back(n);
    std::string libHint = closestMatch(name, libNames);
    if (!libHint.empty()) {
      error(loc, "unknown name '" + name + "'; did you mean '" + libHint +
                     "' from library '" + libraryOf[libHint] +
                     "' (add 'import " + libraryOf[libHint] + "')?");
      return;
    }
  }
  error(loc, "unknown name '" + name + "'" +
                 (hint.empty() ? "" : "; did you mean '" + hint + "'?"));
}

//===----------------------------------------------------------------------===//
// Types as written
//===----------------------------------------------------------------------===//

Dim Sema::evalDim(const Expr &e, Scope *scope,
                  std::map<std::string, Dim> *patterns, bool definition,
                  bool &ok) {
  auto fail = [&](SourceLoc loc, const std::string &msg) {
    if (ok)
      error(loc, msg);
    ok = false;
    return Dim::constant(1);
  };
  switch (e.kind) {
  case Expr::Kind::Number: {
    auto &n = static_cast<const NumberExpr &>(e);
    if (!n.isInt)
      return fail(e.loc,
                  "dimension must be an integer, got " + exprToString(e));
    // Larger literals would not even convert to a 64-bit integer.
    if (n.value > static_cast<double>(kMaxDimension))
      return fail(e.loc, "this dimension is too large (at most " +
                             std::to_string(kMaxDimension) + ")");
    return Dim::constant(static_cast<long long>(n.value));
  }
  case Expr::Kind::Name: {
    const std::string &name = static_cast<const NameExpr &>(e).name;
    if (Symbol *s = scope->lookup(name)) {
      if (s->kind == Symbol::Kind::Value && s->type.kind == Type::Kind::Int)
        return s->type.intValue;
      if (s->kind == Symbol::Kind::Value && s->type.kind == Type::Kind::Any)
        return Dim::symbol(name);
      return fail(e.loc, "dimension '" + name + "' must be an integer, but '" +
                             name + "' is " +
                             (s->what.empty() ? typeStr(s->type) : s->what));
    }
    if (patterns) {
      auto it = patterns->find(name);
      if (it != patterns->end())
        return it->second;
      if (definition) {
        // A free size in a function signature: a symbol bound per call.
        (*patterns)[name] = Dim::symbol(name);
        return Dim::symbol(name);
      }
      ok = false; // bound later in the same signature; not checkable now
      return Dim::constant(1);
    }
    unknownName(e.loc, name, scope);
    ok = false;
    return Dim::constant(1);
  }
  case Expr::Kind::Binary: {
    auto &b = static_cast<const BinaryExpr &>(e);
    if (b.op != '+' && b.op != '-' && b.op != '*' && b.op != '/')
      return fail(b.opLoc, std::string("operator '") + b.op +
                               "' is not allowed in a dimension");
    Dim l = evalDim(*b.lhs, scope, patterns, definition, ok);
    Dim r = evalDim(*b.rhs, scope, patterns, definition, ok);
    if (!ok)
      return Dim::constant(1);
    try {
      if (b.op == '+')
        return l + r;
      if (b.op == '-')
        return l - r;
      if (b.op == '*')
        return l * r;
      Dim rv = r.substitute(bindings);
      if (!rv.isConstant())
        return fail(b.opLoc, "a dimension can only be divided by a constant");
      if (rv.value() == 0)
        return fail(b.opLoc, "division by zero in a dimension");
      return l.substitute(bindings).divide(rv.value());
    } catch (DimError &err) {
      return fail(b.opLoc, err.what());
    }
  }
  default:
    return fail(e.loc, "invalid dimension '" + exprToString(e) + "'");
  }
}

bool Sema::checkDims(const std::vector<Dim> &dims,
                     const std::vector<ExprPtr> &exprs) {
  // The element count over the dimensions that are known.
  long long elements = 1;
  for (size_t k = 0; k < dims.size() && k < exprs.size(); ++k) {
    const Expr &d = *exprs[k];
    try {
      Dim value = dims[k].substitute(bindings);
      if (!value.isConstant())
        continue;
      if (value.value() <= 0) {
        error(d.loc, "dimension must be positive, got " + value.str());
        return false;
      }
      if (value.value() > kMaxDimension) {
        error(d.loc, "dimension '" + exprToString(d) +
                         "' is too large: " + value.str() + " (at most " +
                         std::to_string(kMaxDimension) + ")");
        return false;
      }
      elements *= value.value(); // both at most 2^31 - 1: no overflow
      if (elements > kMaxDimension) {
        error(d.loc, "a tensor of more than " + std::to_string(kMaxDimension) +
                         " elements is too large");
        return false;
      }
    } catch (DimError &err) {
      error(d.loc,
            "dimension '" + exprToString(d) + "' is too large: " + err.what());
      return false;
    }
  }
  return true;
}

Type Sema::evalType(const TypeExpr &t, Scope *scope,
                    std::map<std::string, Dim> *patterns, bool definition) {
  switch (t.kind) {
  case TypeExpr::Kind::Int:
    return Type::integer(Dim::symbol("?"));
  case TypeExpr::Kind::Float:
  case TypeExpr::Kind::Scalar:
    return Type::scalar();
  case TypeExpr::Kind::Any:
    return Type::any();
  case TypeExpr::Kind::Vec:
  case TypeExpr::Kind::Mat:
  case TypeExpr::Kind::Tensor: {
    std::vector<Dim> dims;
    bool ok = true;
    for (auto &d : t.dims)
      dims.push_back(evalDim(*d, scope, patterns, definition, ok));
    ok = ok && checkDims(dims, t.dims);
    if (!ok)
      return patterns && !definition ? Type::any() : Type::error();
    return Type::tensor(std::move(dims));
  }
  case TypeExpr::Kind::Module: {
    ModuleInst *inst = instantiateModule(t, scope);
    if (!inst)
      return Type::error();
    Type r = Type::make(Type::Kind::Module);
    r.module = inst;
    return r;
  }
  }
  return Type::error();
}

//===----------------------------------------------------------------------===//
// Functions and modules
//===----------------------------------------------------------------------===//

namespace {

std::string typeExprStr(const TypeExpr &t) {
  switch (t.kind) {
  case TypeExpr::Kind::Int:
    return "int";
  case TypeExpr::Kind::Float:
    return "float";
  case TypeExpr::Kind::Scalar:
    return "scalar";
  case TypeExpr::Kind::Any:
    return "any";
  case TypeExpr::Kind::Module:
    return "module " + t.moduleName;
  default:
    break;
  }
  std::string s = t.kind == TypeExpr::Kind::Vec   ? "vec["
                  : t.kind == TypeExpr::Kind::Mat ? "mat["
                                                  : "tensor[";
  for (size_t i = 0; i < t.dims.size(); ++i)
    s += (i ? ", " : "") + exprToString(*t.dims[i]);
  return s + "]";
}

/// Matches positional and named arguments to parameters. Returns false after
/// reporting a mismatch. `out[i]` is the index of the argument for param i,
/// or -1 when the parameter takes its default.
bool matchArgs(Sema &S, const std::vector<Param> &params,
               const std::vector<std::string> &names,
               const std::vector<SourceLoc> &locs, SourceLoc callLoc,
               const std::string &callee, std::vector<int> &out) {
  out.assign(params.size(), -1);
  size_t positional = 0;
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i].empty()) {
      if (positional >= params.size()) {
        S.error(locs[i], "too many arguments to '" + callee + "' (expected " +
                             std::to_string(params.size()) + ", got " +
                             std::to_string(names.size()) + ")");
        return false;
      }
      out[positional++] = static_cast<int>(i);
      continue;
    }
    auto it = std::find_if(params.begin(), params.end(),
                           [&](const Param &p) { return p.name == names[i]; });
    if (it == params.end()) {
      std::vector<std::string> cands;
      for (auto &p : params)
        cands.push_back(p.name);
      std::string hint = closestMatch(names[i], cands);
      S.error(locs[i],
              "'" + callee + "' has no parameter '" + names[i] + "'" +
                  (hint.empty() ? "" : "; did you mean '" + hint + "'?"));
      return false;
    }
    size_t idx = it - params.begin();
    if (out[idx] != -1) {
      S.error(locs[i], "parameter '" + names[i] + "' of '" + callee +
                           "' is given twice");
      return false;
    }
    out[idx] = static_cast<int>(i);
  }
  for (size_t i = 0; i < params.size(); ++i)
    if (out[i] == -1 && !params[i].defaultValue) {
      S.error(callLoc, "missing argument '" + params[i].name +
                           "' in call to '" + callee + "'");
      return false;
    }
  return true;
}

/// Does `actual` fit the declared parameter type? Free sizes in the
/// declaration are bound in `patterns` on first use.
bool matchType(Sema &S, const TypeExpr &decl, const Type &actual, Scope *scope,
               std::map<std::string, Dim> &patterns) {
  if (actual.isUnknown())
    return true;
  switch (decl.kind) {
  case TypeExpr::Kind::Any:
    return true;
  case TypeExpr::Kind::Int:
    return actual.kind == Type::Kind::Int;
  case TypeExpr::Kind::Float:
  case TypeExpr::Kind::Scalar:
    return actual.kind == Type::Kind::Int || actual.isScalar();
  case TypeExpr::Kind::Module:
    return actual.kind == Type::Kind::Module && actual.module &&
           actual.module->decl->name == decl.moduleName;
  default:
    break;
  }
  if (!actual.isTensor() || actual.rank() != decl.dims.size())
    return false;
  for (size_t i = 0; i < decl.dims.size(); ++i) {
    const Expr &d = *decl.dims[i];
    if (d.kind == Expr::Kind::Name) {
      const std::string &n = static_cast<const NameExpr &>(d).name;
      if (!scope->lookup(n)) {
        auto it = patterns.find(n);
        if (it == patterns.end())
          patterns[n] = actual.shape[i];
        else if (!S.sameDim(it->second, actual.shape[i]))
          return false;
        continue;
      }
    }
    bool ok = true;
    Dim want = S.evalDim(d, scope, &patterns, false, ok);
    if (ok && !S.sameDim(want, actual.shape[i]))
      return false;
  }
  return true;
}

} // namespace

Type Sema::callFunction(const Type &fnType, std::vector<Type> args,
                        const std::vector<SourceLoc> &argLocs,
                        const std::vector<std::string> &argNames,
                        SourceLoc callLoc, const std::string &calleeName) {
  assert(fnType.kind == Type::Kind::Func && "callFunction needs a function");
  // A problem's objective: its arguments are the problem's variables.
  if (const ProblemInfo *p = fnType.objective) {
    if (args.size() != p->vars.size()) {
      error(callLoc, "objective of '" + p->decl->name + "' takes " +
                         std::to_string(p->vars.size()) + " argument" +
                         (p->vars.size() == 1 ? "" : "s") + ", got " +
                         std::to_string(args.size()));
      return Type::error();
    }
    for (size_t i = 0; i < args.size(); ++i) {
      const Symbol *v = p->scope->lookup(p->vars[i]->name);
      if (v && !sameType(args[i], v->type)) {
        error(argLocs[i], "objective of '" + p->decl->name + "' expects " +
                              p->vars[i]->name + " : " + typeStr(v->type) +
                              ", got " + typeStr(args[i]));
        return Type::error();
      }
    }
    return Type::scalar();
  }
  const FnDecl &fn = *fnType.fn;
  for (const Frame &f : frames_)
    if (f.fn == &fn) {
      error(callLoc, "recursive call to '" + fn.name + "' is not supported");
      return Type::error();
    }
  if (frames_.size() > 64) {
    error(callLoc, "function calls are nested too deeply");
    return Type::error();
  }
  std::vector<int> order;
  if (!matchArgs(*this, fn.params, argNames, argLocs, callLoc, calleeName,
                 order))
    return Type::error();

  Scope *scope = newScope(fnType.fnScope);
  std::map<std::string, Dim> patterns;
  std::string key = std::to_string(reinterpret_cast<uintptr_t>(&fn)) + "/" +
                    std::to_string(reinterpret_cast<uintptr_t>(fnType.self));
  for (size_t i = 0; i < fn.params.size(); ++i) {
    const Param &p = fn.params[i];
    Type t;
    if (order[i] >= 0) {
      t = args[order[i]];
    } else {
      ExprChecker ec(*this, fnType.fnScope);
      bool saved = recordTypes;
      recordTypes = false;
      t = ec.check(*p.defaultValue);
      recordTypes = saved;
    }
    if (p.type && !matchType(*this, *p.type, t, fnType.fnScope, patterns)) {
      SourceLoc at = order[i] >= 0 ? argLocs[order[i]] : callLoc;
      // Show the expected type with the sizes earlier arguments fixed:
      // "must be vec[p], got vec[d]" rather than "must be vec[n]".
      std::string want = typeExprStr(*p.type);
      if (p.type->kind != TypeExpr::Kind::Module) {
        bool ok = true;
        std::vector<Dim> dims;
        for (auto &d : p.type->dims) {
          bool bound = true;
          if (d->kind == Expr::Kind::Name &&
              !fnType.fnScope->lookup(static_cast<const NameExpr &>(*d).name) &&
              !patterns.count(static_cast<const NameExpr &>(*d).name))
            bound = false;
          Dim v =
              bound ? evalDim(*d, fnType.fnScope, &patterns, false, ok) : Dim();
          ok &= bound;
          dims.push_back(v);
        }
        if (ok && !p.type->dims.empty())
          want = Type::tensor(dims).str();
      }
      error(at, "argument '" + p.name + "' of '" + calleeName + "' must be " +
                    want + ", got " + typeStr(t));
      return Type::error();
    }
    if (t.kind == Type::Kind::Int && p.type &&
        p.type->kind != TypeExpr::Kind::Int)
      t = Type::scalar();
    key += "/" + typeStr(t);
    Symbol sym;
    sym.type = t;
    sym.loc = p.loc;
    sym.what = "parameter";
    declare(scope, p.name, sym);
  }
  for (auto &[n, d] : bindings)
    key += "|" + n + "=" + d.str();
  auto memo = instMemo_.find(key);
  if (memo != instMemo_.end())
    return memo->second;
  frames_.push_back(Frame{&fn, callLoc, calleeName});
  bool saved = recordTypes;
  recordTypes = false;
  Type r = checkBody(fn, scope);
  recordTypes = saved;
  frames_.pop_back();
  instMemo_[key] = r;
  return r;
}

std::vector<Type> Sema::targetTypes(const AssignStmt &a, const Type &v) {
  size_t n = a.targets.size();
  if (n == 1)
    return {v};
  if (v.kind == Type::Kind::Tuple && v.elems.size() == n)
    return v.elems;
  if (!v.isUnknown())
    error(a.loc, "cannot unpack " + typeStr(v) + " into " + std::to_string(n) +
                     " names");
  return std::vector<Type>(n, v.isUnknown() ? v : Type::error());
}

Type Sema::checkBody(const FnDecl &fn, Scope *scope) {
  ExprChecker ec(*this, scope);
  if (fn.body)
    return ec.check(*fn.body);
  Type result = Type::error();
  bool returned = false;
  for (const StmtPtr &s : fn.stmts) {
    if (returned) {
      error(s->loc, "statement after 'return' is never reached");
      break;
    }
    if (s->kind == Stmt::Kind::Return) {
      result = ec.check(*static_cast<const ReturnStmt &>(*s).value);
      returned = true;
      continue;
    }
    auto &a = static_cast<const AssignStmt &>(*s);
    std::vector<Type> types = targetTypes(a, ec.check(*a.value));
    for (size_t i = 0; i < a.targets.size(); ++i) {
      Symbol sym;
      sym.type = types[i];
      sym.loc = a.targetLocs[i];
      sym.what = "local";
      Symbol *prev = scope->lookup(a.targets[i]);
      if (prev && scope->names.count(a.targets[i]) == 0 &&
          prev->what != "local") {
        error(a.targetLocs[i],
              "cannot assign to " + prev->what + " '" + a.targets[i] + "'");
        continue;
      }
      declare(scope, a.targets[i], sym);
    }
  }
  if (!returned) {
    missing(fn.loc, "function '" + fn.name + "' has no 'return'");
    return Type::error();
  }
  return result;
}

void Sema::checkFnDefinition(const FnDecl &fn, Scope *defScope) {
  // Checked once with the declared types (free sizes stay symbolic) and
  // untyped parameters as `any`; each call checks the body again with the
  // argument types.
  Scope *scope = newScope(defScope);
  std::map<std::string, Dim> patterns;
  std::set<std::string> seen;
  for (const Param &p : fn.params) {
    if (!seen.insert(p.name).second) {
      error(p.loc, "duplicate parameter '" + p.name + "'");
      continue;
    }
    Symbol sym;
    sym.type =
        p.type ? evalType(*p.type, defScope, &patterns, true) : Type::any();
    if (sym.type.kind == Type::Kind::Int)
      sym.type = Type::integer(Dim::symbol(p.name));
    sym.loc = p.loc;
    sym.what = "parameter";
    declare(scope, p.name, sym);
  }
  bool saved = recordTypes;
  recordTypes = false;
  checkBody(fn, scope);
  recordTypes = saved;
}

namespace {
bool isNumberParam(const Param &p) {
  return !p.type || p.type->kind == TypeExpr::Kind::Int ||
         p.type->kind == TypeExpr::Kind::Float ||
         p.type->kind == TypeExpr::Kind::Scalar;
}
} // namespace

Symbol Sema::functionSymbol(const FnDecl &fn, Scope *scope, ModuleInst *self) {
  Symbol sym;
  sym.kind = Symbol::Kind::Function;
  sym.type = Type::make(Type::Kind::Func);
  sym.type.fn = &fn;
  sym.type.fnScope = scope;
  sym.type.self = self;
  sym.loc = fn.loc;
  sym.what = self ? "method" : "function";
  sym.fn = &fn;
  return sym;
}

void Sema::declareLets(Scope *scope, const std::vector<LetDecl> &lets) {
  ExprChecker ec(*this, scope);
  for (const LetDecl &l : lets) {
    Symbol sym;
    sym.type = ec.check(*l.value);
    sym.loc = l.loc;
    sym.what = "let";
    declareChecked(scope, l.name, sym);
  }
}

void Sema::checkParamInit(const ParamDecl &p, const Type &type, Scope *scope) {
  if (!p.init) {
    if (type.kind != Type::Kind::Module && !type.isUnknown())
      error(p.loc, "param '" + p.name +
                       "' needs an initial value, e.g. '= normal(0, 0.1)'");
    return;
  }
  Type it = ExprChecker(*this, scope).check(*p.init);
  if (type.kind == Type::Kind::Module)
    error(p.init->loc, "a module parameter is initialised by its module");
  else if (!(it.isUnknown() || it.kind == Type::Kind::Dist ||
             it.kind == Type::Kind::Int || it.isScalar() || sameType(it, type)))
    error(p.init->loc, "initial value of '" + p.name + "' has type " +
                           typeStr(it) + ", but '" + p.name + "' is " +
                           typeStr(type));
}

ModuleInst *Sema::instantiateModule(const TypeExpr &t, Scope *scope) {
  Symbol *s = scope->lookup(t.moduleName);
  if (!s) {
    unknownName(t.loc, t.moduleName, scope);
    return nullptr;
  }
  if (s->kind != Symbol::Kind::ModuleDef) {
    error(t.loc, "'" + t.moduleName + "' is not a type or module");
    return nullptr;
  }
  const ModuleDecl &md = *s->moduleDecl;
  if (std::find(moduleStack_.begin(), moduleStack_.end(), &md) !=
      moduleStack_.end()) {
    error(t.loc, "module '" + md.name + "' contains itself");
    return nullptr;
  }
  std::vector<Type> args;
  std::vector<SourceLoc> locs;
  std::vector<std::string> names;
  ExprChecker ec(*this, scope);
  for (const Arg &a : t.moduleArgs) {
    args.push_back(ec.check(*a.value));
    locs.push_back(a.value->loc);
    names.push_back(a.name);
  }
  std::vector<int> order;
  if (!matchArgs(*this, md.params, names, locs, t.loc, md.name, order))
    return nullptr;
  Scope *fileScope = declFileScope_.at(&md);
  Scope *ms = newScope(fileScope);
  std::string key = md.name;
  for (size_t i = 0; i < md.params.size(); ++i) {
    const Param &p = md.params[i];
    Type v;
    if (order[i] >= 0) {
      v = args[order[i]];
    } else {
      ExprChecker dc(*this, ms);
      v = dc.check(*p.defaultValue);
    }
    bool wantInt = !p.type || p.type->kind == TypeExpr::Kind::Int;
    if (!v.isUnknown()) {
      if (wantInt && v.kind != Type::Kind::Int) {
        error(order[i] >= 0 ? locs[order[i]] : t.loc,
              "parameter '" + p.name + "' of module '" + md.name +
                  "' must be an integer, got " + typeStr(v));
        return nullptr;
      }
      if (!wantInt && !(v.kind == Type::Kind::Int || v.isScalar())) {
        error(order[i] >= 0 ? locs[order[i]] : t.loc,
              "parameter '" + p.name + "' of module '" + md.name +
                  "' must be a number, got " + typeStr(v));
        return nullptr;
      }
    }
    if (v.kind == Type::Kind::Int && !wantInt)
      v = Type::scalar();
    key +=
        "/" + (v.kind == Type::Kind::Int ? v.intValue.substitute(bindings).str()
                                         : typeStr(v));
    Symbol sym;
    sym.type = v;
    sym.loc = p.loc;
    sym.what = "module parameter";
    declare(ms, p.name, sym);
  }
  for (auto &m : modules_)
    if (m.key == key)
      return &m;
  modules_.emplace_back();
  ModuleInst *inst = &modules_.back();
  inst->decl = &md;
  inst->scope = ms;
  inst->key = key;
  moduleStack_.push_back(&md);
  ExprChecker mc(*this, ms);
  declareLets(ms, md.lets);
  for (const ParamDecl &p : md.members) {
    Symbol sym;
    sym.type = evalType(*p.type, ms, nullptr, false);
    sym.loc = p.loc;
    sym.what = "param";
    if (p.binding != Binding::None)
      error(p.bindingLoc, "'per layer' and 'shared' apply to parameters of "
                          "an unrolled algorithm, not of a module");
    int64_t times = 1;
    if (p.repeat) {
      // Symbolic while the module is checked on its own; constant once
      // instantiated with arguments.
      Type rt = mc.check(*p.repeat);
      if (!rt.isUnknown() && rt.kind != Type::Kind::Int) {
        error(p.repeat->loc,
              "repeat count must be an integer, got " + typeStr(rt));
      } else if (rt.kind == Type::Kind::Int) {
        Dim n = rt.intValue.substitute(bindings);
        if (n.isConstant() && n.value() < 1)
          error(p.repeat->loc,
                "repeat count must be at least 1, got " + n.str());
        else if (n.isConstant())
          times = std::min<int64_t>(n.value(), kMaxModuleCopies + 1);
      }
      if (sym.type.kind != Type::Kind::Module)
        error(p.repeat->loc, "only module parameters can be repeated");
      sym.repeated = true;
    }
    if (sym.type.kind == Type::Kind::Module && sym.type.module)
      inst->copies = std::min<int64_t>(
          inst->copies + times * sym.type.module->copies, kMaxModuleCopies + 1);
    checkParamInit(p, sym.type, ms);
    declareChecked(ms, p.name, sym);
  }
  if (inst->copies > kMaxModuleCopies)
    error(t.loc, "module '" + md.name + "' expands to more than " +
                     std::to_string(kMaxModuleCopies) +
                     " module copies; lower its repeat counts");
  std::set<std::string> methodNames;
  for (auto &m : md.methods) {
    if (!methodNames.insert(m->name).second) {
      error(m->loc, "redefinition of method '" + m->name + "'");
      continue;
    }
    declareChecked(ms, m->name, functionSymbol(*m, ms, inst));
  }
  moduleStack_.pop_back();
  return inst;
}

//===----------------------------------------------------------------------===//
// Files, problems, unrolled algorithms
//===----------------------------------------------------------------------===//

void Sema::buildFileScope(LoadedFile *f) {
  Scope *fs = newScope(nullptr);
  fileScopes_[f] = fs;
  // Names from imports first; a file's own definitions shadow them.
  for (LoadedFile *dep : f->imports) {
    Scope *ds = fileScopes_.at(dep);
    for (auto &[n, sym] : ds->names)
      if (sym.loc.file == dep->id)
        fs->names.emplace(n, sym);
  }
  std::map<std::string, SourceLoc> own;
  auto add = [&](const std::string &name, Symbol sym) {
    auto it = own.find(name);
    if (it != own.end()) {
      error(sym.loc, "redefinition of '" + name + "'");
      note(it->second, "previous definition is here");
      return;
    }
    if (isBuiltin(name) && sym.kind != Symbol::Kind::Problem &&
        sym.kind != Symbol::Kind::Unrolled) {
      error(sym.loc, "'" + name +
                         "' is a built-in function and cannot be "
                         "redefined");
      return;
    }
    own[name] = sym.loc;
    fs->names[name] = std::move(sym);
  };
  Module &m = *f->ast;
  for (auto &fn : m.fns)
    add(fn->name, functionSymbol(*fn, fs));
  for (auto &md : m.modules) {
    Symbol sym;
    sym.kind = Symbol::Kind::ModuleDef;
    sym.loc = md->loc;
    sym.what = "module";
    sym.moduleDecl = md.get();
    declFileScope_[md.get()] = fs;
    add(md->name, sym);
  }
  // A prox is found by the name of its function, in a name no user can
  // write.
  for (auto &px : m.proxes)
    add(px->fn->name, functionSymbol(*px->fn, fs));
  for (auto &st : m.sets) {
    Symbol sym = functionSymbol(*st->project, fs);
    sym.kind = Symbol::Kind::Set;
    sym.what = "constraint set";
    sym.set = st.get();
    add(st->name, sym);
  }
  for (auto &p : m.problems) {
    Symbol sym;
    sym.kind = Symbol::Kind::Problem;
    sym.loc = p->loc;
    sym.what = "problem";
    sym.problem = p.get();
    declFileScope_[p.get()] = fs;
    add(p->name, sym);
  }
  for (auto &u : m.unrolleds) {
    Symbol sym;
    sym.kind = Symbol::Kind::Unrolled;
    sym.loc = u->loc;
    sym.what = "unrolled algorithm";
    sym.unrolled = u.get();
    add(u->name, sym);
  }
}

void Sema::checkAll() {
  for (LoadedFile *f : loader_.ordered()) {
    if (f->hadSyntaxErrors)
      incompleteFiles_.insert(f->id);
    buildFileScope(f);
  }
  for (LoadedFile *f : loader_.ordered())
    checkFile(f);
}

void Sema::checkFile(LoadedFile *f) {
  Scope *fs = fileScopes_.at(f);
  Module &m = *f->ast;
  for (auto &fn : m.fns)
    checkFnDefinition(*fn, fs);
  for (auto &px : m.proxes)
    checkProx(*px, fs);
  for (auto &st : m.sets) {
    // The set's parameters are numbers (bounds, radii); the point is last.
    const std::vector<Param> &params = st->project->params;
    for (size_t i = 0; i + 1 < params.size(); ++i)
      if (!isNumberParam(params[i]))
        error(params[i].type->loc,
              "parameters of set '" + st->name + "' must be int or float");
    if (params.back().defaultValue)
      error(params.back().loc, "the point to project takes no default");
    checkFnDefinition(*st->project, fs);
  }
  for (auto &md : m.modules) {
    // Checked once with its parameters as symbols, so that errors in a
    // module show up even if no spec uses it.
    Scope *tmp = newScope(fs);
    Symbol self;
    self.kind = Symbol::Kind::ModuleDef;
    self.moduleDecl = md.get();
    self.loc = md->loc;
    tmp->names[md->name] = self;
    TypeExpr te;
    te.kind = TypeExpr::Kind::Module;
    te.moduleName = md->name;
    te.loc = md->loc;
    std::set<std::string> seen;
    for (const Param &p : md->params) {
      if (!seen.insert(p.name).second) {
        error(p.loc, "duplicate parameter '" + p.name + "'");
        continue;
      }
      if (!isNumberParam(p)) {
        error(p.type->loc, "module parameters must be int or float");
        continue;
      }
      Arg a;
      a.name = p.name;
      a.loc = p.loc;
      a.value = std::make_unique<NameExpr>(p.loc, p.name);
      te.moduleArgs.push_back(std::move(a));
      Symbol ps;
      ps.type = !p.type || p.type->kind == TypeExpr::Kind::Int
                    ? Type::integer(Dim::symbol(p.name))
                    : Type::scalar();
      ps.loc = p.loc;
      ps.what = "module parameter";
      tmp->names[p.name] = ps;
    }
    bool saved = recordTypes;
    recordTypes = false;
    ModuleInst *inst = instantiateModule(te, tmp);
    if (inst)
      for (auto &meth : md->methods)
        checkFnDefinition(*meth, inst->scope);
    recordTypes = saved;
  }
  for (auto &p : m.problems)
    checkProblem(*p, fs);
  for (auto &u : m.unrolleds)
    checkUnrolled(*u, fs);
  for (auto &t : m.trains)
    checkTrain(*t, fs);
}

const FnDecl *Sema::proxOf(const ProblemDecl &pd, const std::string &g) const {
  auto fs = declFileScope_.find(&pd);
  if (fs == declFileScope_.end())
    return nullptr;
  Symbol *s = fs->second->lookup("prox " + g);
  return s ? s->fn : nullptr;
}

void Sema::checkProx(const ProxDecl &p, Scope *fs) {
  static const std::set<std::string> norms = {"norm1", "norm", "sqnorm"};
  const FnDecl &fn = *p.fn;
  if (!norms.count(p.of)) {
    Symbol *g = fs->lookup(p.of);
    if (!g || g->kind != Symbol::Kind::Function || !g->fn ||
        g->fn->params.size() != 1) {
      error(p.loc, "'" + p.of +
                       "' is not a function of one argument; a prox is "
                       "declared for a built-in norm (norm1, norm, sqnorm) "
                       "or a 'fn' of one argument");
      return;
    }
  }
  if (fn.params.size() != 2) {
    error(p.loc, "the prox of '" + p.of +
                     "' takes the point and the step, (v, t), not " +
                     std::to_string(fn.params.size()) + " parameter" +
                     (fn.params.size() == 1 ? "" : "s"));
    return;
  }
  checkFnDefinition(fn, fs);
  // On a vector and a scalar step it must give a vector of the same size.
  const Type point = Type::tensor({Dim::symbol("n")});
  const size_t before = diag_.errorCount();
  Type r = callFunction(functionSymbol(fn, fs).type, {point, Type::scalar()},
                        {p.loc, p.loc}, {"", ""}, p.loc, "prox " + p.of);
  if (diag_.errorCount() == before && !r.isUnknown() && !sameType(r, point))
    error(fn.body ? fn.body->loc : p.loc,
          "the prox of '" + p.of +
              "' must return a value of the point's "
              "type: for v : " +
              typeStr(point) + " and a scalar t it gives " + typeStr(r));
}

void Sema::checkVarSet(const VarDecl &v, const Type &type, Scope *ps) {
  const Expr &e = *v.set;
  const NameExpr *name = nullptr;
  const std::vector<Arg> *args = nullptr;
  static const std::vector<Arg> none;
  if (e.kind == Expr::Kind::Name) {
    name = static_cast<const NameExpr *>(&e);
    args = &none;
  } else if (e.kind == Expr::Kind::Call &&
             static_cast<const CallExpr &>(e).callee->kind ==
                 Expr::Kind::Name) {
    auto &c = static_cast<const CallExpr &>(e);
    name = static_cast<const NameExpr *>(c.callee.get());
    args = &c.args;
  } else {
    error(e.loc, "expected a constraint set after 'in', such as nonneg or "
                 "box(0, 1)");
    return;
  }
  Symbol *s = ps->lookup(name->name);
  if (!s) {
    unknownName(name->loc, name->name, ps);
    return;
  }
  if (s->kind != Symbol::Kind::Set) {
    error(name->loc, "'" + name->name +
                         "' is not a constraint set; a set is declared with "
                         "'set NAME project(v) = ...'");
    return;
  }
  std::vector<Type> types;
  std::vector<SourceLoc> locs;
  std::vector<std::string> names;
  ExprChecker ec(*this, ps);
  for (const Arg &a : *args) {
    Type t = ec.check(*a.value);
    if (!t.isUnknown() && t.kind != Type::Kind::Int && !t.isScalar()) {
      error(a.value->loc, "arguments of set '" + name->name +
                              "' must be numbers, got " + typeStr(t));
      return;
    }
    types.push_back(t);
    locs.push_back(a.value->loc);
    names.push_back(a.name);
  }
  if (type.isUnknown())
    return;
  // The point to project is the last parameter: the variable itself.
  const std::string &point = s->set->project->params.back().name;
  for (const std::string &n : names)
    if (n == point) {
      error(e.loc, "'" + point + "' is the point set '" + name->name +
                       "' projects, not a setting");
      return;
    }
  types.push_back(type);
  locs.push_back(e.loc);
  names.push_back(point);
  const size_t before = diag_.errorCount();
  Type r = callFunction(s->type, types, locs, names, e.loc, name->name);
  if (diag_.errorCount() != before || r.isUnknown())
    return;
  if (!sameType(r, type)) {
    error(e.loc, "the projection onto set '" + name->name + "' maps " +
                     typeStr(type) + " to " + typeStr(r) + "; it must keep '" +
                     v.name + "' a " + typeStr(type));
    note(s->set->project->body ? s->set->project->body->loc : s->loc,
         "projection defined here");
    return;
  }
  varSets_[&v] = s->set;
}

void Sema::checkProblem(const ProblemDecl &p, Scope *fileScope) {
  problems_.emplace_back();
  ProblemInfo *info = &problems_.back();
  info->decl = &p;
  Scope *ps = newScope(fileScope);
  info->scope = ps;
  problemInfo_[&p] = info;
  for (const Param &prm : p.params) {
    Symbol sym;
    sym.loc = prm.loc;
    sym.what = "problem parameter";
    if (!prm.type || prm.type->kind == TypeExpr::Kind::Int)
      sym.type = Type::integer(Dim::symbol(prm.name));
    else if (prm.type->kind == TypeExpr::Kind::Float ||
             prm.type->kind == TypeExpr::Kind::Scalar)
      sym.type = Type::scalar();
    else {
      error(prm.type->loc, "problem parameters must be int or float");
      sym.type = Type::error();
    }
    declareChecked(ps, prm.name, sym);
  }
  for (const VarDecl &v : p.vars) {
    Symbol sym;
    sym.type = evalType(*v.type, ps, nullptr, false);
    if (sym.type.kind == Type::Kind::Int ||
        sym.type.kind == Type::Kind::Module) {
      error(v.type->loc, "'" + v.name +
                             "' must be a tensor type (scalar, vec, "
                             "mat or tensor)");
      sym.type = Type::error();
    }
    sym.loc = v.loc;
    sym.what = v.role == VarDecl::Role::Data    ? "data"
               : v.role == VarDecl::Role::Given ? "given"
                                                : "var";
    Type type = sym.type;
    if (declareChecked(ps, v.name, sym) && v.role == VarDecl::Role::Var)
      info->vars.push_back(&v);
    if (v.set && v.role != VarDecl::Role::Var)
      error(v.set->loc, "only a 'var' can be constrained to a set; '" + v.name +
                            "' is " +
                            (v.role == VarDecl::Role::Data ? "data" : "given"));
    else if (v.set)
      checkVarSet(v, type, ps);
  }
  ExprChecker ec(*this, ps);
  declareLets(ps, p.lets);
  for (auto &fn : p.fns)
    declareChecked(ps, fn->name, functionSymbol(*fn, ps));
  for (auto &fn : p.fns)
    checkFnDefinition(*fn, ps);
  if (info->vars.empty())
    missing(p.loc, "problem '" + p.name + "' has no 'var' to optimise");
  if (!p.objective) {
    missing(p.loc, "problem '" + p.name + "' has no 'minimize' objective");
  } else {
    Type t = ec.check(*p.objective);
    if (!t.isUnknown() && !t.isScalar())
      error(p.objective->loc, "objective must be a scalar, got " + typeStr(t));
  }
  Symbol f;
  f.kind = Symbol::Kind::Function;
  f.type = Type::make(Type::Kind::Func);
  f.type.objective = info;
  f.loc = p.objectiveLoc;
  f.what = "the objective";
  if (!ps->names.count("f"))
    ps->names["f"] = f;
}

} // namespace unroll::dsl
