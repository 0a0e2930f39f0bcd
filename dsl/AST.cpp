#include "dsl/AST.h"

#include <cassert>
#include <cmath>
#include <iomanip>
#include <sstream>

namespace unroll::dsl {

namespace {

std::string at(SourceLoc l) {
  return "<" + std::to_string(l.line) + ":" + std::to_string(l.col) + ">";
}

std::string num(double v, bool isInt) {
  std::ostringstream os;
  // 2^63 and above do not convert to long long (an integer literal up to
  // INT64_MAX is held as a double that rounds to 2^63).
  if (isInt && std::fabs(v) < 9223372036854775808.0)
    os << static_cast<long long>(v);
  else if (isInt)
    os << std::fixed << std::setprecision(0) << v;
  else
    os << v;
  std::string s = os.str();
  // Keep floats recognisable as floats: 1.0 prints as "1.0", not "1".
  if (!isInt && s.find_first_of(".eEn") == std::string::npos)
    s += ".0";
  return s;
}

void printArgs(const std::vector<Arg> &args, std::ostream &os);

/// S-expression form: every node followed by <line:col>.
void printExpr(const Expr &e, std::ostream &os) {
  switch (e.kind) {
  case Expr::Kind::Number: {
    auto &n = static_cast<const NumberExpr &>(e);
    os << num(n.value, n.isInt) << at(e.loc);
    return;
  }
  case Expr::Kind::String:
    os << '"' << static_cast<const StringExpr &>(e).value << '"' << at(e.loc);
    return;
  case Expr::Kind::Name:
    os << static_cast<const NameExpr &>(e).name << at(e.loc);
    return;
  case Expr::Kind::Unary: {
    auto &u = static_cast<const UnaryExpr &>(e);
    os << "(neg" << at(e.loc) << " ";
    printExpr(*u.operand, os);
    os << ")";
    return;
  }
  case Expr::Kind::Binary: {
    auto &b = static_cast<const BinaryExpr &>(e);
    os << "(" << b.op << at(b.opLoc) << " ";
    printExpr(*b.lhs, os);
    os << " ";
    printExpr(*b.rhs, os);
    os << ")";
    return;
  }
  case Expr::Kind::Transpose:
    os << "(transpose" << at(e.loc) << " ";
    printExpr(*static_cast<const TransposeExpr &>(e).operand, os);
    os << ")";
    return;
  case Expr::Kind::Call: {
    auto &c = static_cast<const CallExpr &>(e);
    os << "(call" << at(e.loc) << " ";
    printExpr(*c.callee, os);
    printArgs(c.args, os);
    os << ")";
    return;
  }
  case Expr::Kind::Member: {
    auto &m = static_cast<const MemberExpr &>(e);
    os << "(member" << at(e.loc) << " ";
    printExpr(*m.base, os);
    os << " " << m.name << ")";
    return;
  }
  case Expr::Kind::Index: {
    auto &i = static_cast<const IndexExpr &>(e);
    os << "(index" << at(e.loc) << " ";
    printExpr(*i.base, os);
    os << " ";
    printExpr(*i.index, os);
    os << ")";
    return;
  }
  case Expr::Kind::Range: {
    auto &r = static_cast<const RangeExpr &>(e);
    os << "(range" << at(e.loc) << " ";
    printExpr(*r.lo, os);
    os << " ";
    printExpr(*r.hi, os);
    os << ")";
    return;
  }
  }
  assert(false && "unhandled expression kind");
}

void printArgs(const std::vector<Arg> &args, std::ostream &os) {
  for (const Arg &a : args) {
    os << " ";
    if (!a.name.empty())
      os << a.name << "=";
    printExpr(*a.value, os);
  }
}

std::string typeStr(const TypeExpr *t) {
  if (!t)
    return "?";
  std::ostringstream os;
  switch (t->kind) {
  case TypeExpr::Kind::Int:
    os << "int";
    break;
  case TypeExpr::Kind::Float:
    os << "float";
    break;
  case TypeExpr::Kind::Scalar:
    os << "scalar";
    break;
  case TypeExpr::Kind::Any:
    os << "any";
    break;
  case TypeExpr::Kind::Vec:
  case TypeExpr::Kind::Mat:
  case TypeExpr::Kind::Tensor: {
    os << "("
       << (t->kind == TypeExpr::Kind::Vec   ? "vec"
           : t->kind == TypeExpr::Kind::Mat ? "mat"
                                            : "tensor");
    for (auto &d : t->dims) {
      os << " ";
      printExpr(*d, os);
    }
    os << ")";
    break;
  }
  case TypeExpr::Kind::Module:
    os << "(module " << t->moduleName;
    printArgs(t->moduleArgs, os);
    os << ")";
    break;
  }
  os << at(t->loc);
  return os.str();
}

class Printer {
public:
  explicit Printer(std::ostream &os) : os_(os) {}

  void line(int indent, const std::string &head) {
    os_ << std::string(indent * 2, ' ') << head;
  }

  void expr(const Expr &e) { printExpr(e, os_); }

  void params(int ind, const std::vector<Param> &ps) {
    for (const Param &p : ps) {
      line(ind, "(param " + p.name + at(p.loc) + " " + typeStr(p.type.get()));
      if (p.defaultValue) {
        os_ << " default=";
        expr(*p.defaultValue);
      }
      os_ << ")\n";
    }
  }

  void let(int ind, const LetDecl &l) {
    line(ind, "(let " + l.name + at(l.loc) + " ");
    expr(*l.value);
    os_ << ")\n";
  }

  void stmts(int ind, const std::vector<StmtPtr> &ss) {
    for (const StmtPtr &s : ss) {
      if (s->kind == Stmt::Kind::Return) {
        line(ind, "(return" + at(s->loc) + " ");
        expr(*static_cast<const ReturnStmt &>(*s).value);
        os_ << ")\n";
        continue;
      }
      auto &a = static_cast<const AssignStmt &>(*s);
      line(ind, "(assign");
      for (size_t i = 0; i < a.targets.size(); ++i)
        os_ << " " << a.targets[i] << at(a.targetLocs[i]);
      os_ << " ";
      expr(*a.value);
      os_ << ")\n";
    }
  }

  void fn(int ind, const FnDecl &f) {
    line(ind, "(fn " + f.name + at(f.loc) + "\n");
    params(ind + 1, f.params);
    if (f.body) {
      line(ind + 1, "(body ");
      expr(*f.body);
      os_ << ")\n";
    } else {
      stmts(ind + 1, f.stmts);
    }
    line(ind, ")\n");
  }

  void paramDecl(int ind, const ParamDecl &p) {
    line(ind, "(trainable " + p.name + at(p.loc) + " " + typeStr(p.type.get()));
    if (p.binding == Binding::PerLayer)
      os_ << " per-layer";
    else if (p.binding == Binding::Shared)
      os_ << " shared";
    if (p.repeat) {
      os_ << " repeat=";
      expr(*p.repeat);
    }
    if (p.init) {
      os_ << " init=";
      expr(*p.init);
    }
    os_ << ")\n";
  }

  void module(const Module &m) {
    for (auto &i : m.imports)
      line(0, "(import " + i.name + at(i.loc) + ")\n");
    for (auto &f : m.fns)
      fn(0, *f);
    for (auto &md : m.modules) {
      line(0, "(module " + md->name + at(md->loc) + "\n");
      params(1, md->params);
      for (auto &l : md->lets)
        let(1, l);
      for (auto &p : md->members)
        paramDecl(1, p);
      for (auto &f : md->methods)
        fn(1, *f);
      line(0, ")\n");
    }
    for (auto &px : m.proxes) {
      line(0, "(prox " + px->of + at(px->loc) + "\n");
      fn(1, *px->fn);
      line(0, ")\n");
    }
    for (auto &st : m.sets) {
      line(0, "(set " + st->name + at(st->loc) + "\n");
      fn(1, *st->project);
      line(0, ")\n");
    }
    for (auto &p : m.problems) {
      line(0, "(problem " + p->name + at(p->loc) + "\n");
      params(1, p->params);
      for (auto &v : p->vars) {
        const char *role = v.role == VarDecl::Role::Data    ? "data"
                           : v.role == VarDecl::Role::Given ? "given"
                                                            : "var";
        line(1, std::string("(") + role + " " + v.name + at(v.loc) + " " +
                    typeStr(v.type.get()));
        if (v.set) {
          os_ << " in ";
          expr(*v.set);
        }
        os_ << ")\n";
      }
      for (auto &l : p->lets)
        let(1, l);
      for (auto &f : p->fns)
        fn(1, *f);
      if (p->objective) {
        line(1, "(minimize" + at(p->objectiveLoc) + " ");
        expr(*p->objective);
        os_ << ")\n";
      }
      line(0, ")\n");
    }
    for (auto &u : m.unrolleds) {
      line(0, "(unrolled " + u->name + at(u->loc));
      printArgs(u->options, os_);
      os_ << "\n";
      line(1, "(solves " + u->problem + at(u->problemLoc));
      printArgs(u->problemArgs, os_);
      os_ << ")\n";
      for (auto &i : u->inits) {
        line(1, "(init " + i.var + at(i.loc) + (i.random ? " ~ " : " = "));
        expr(*i.value);
        os_ << ")\n";
      }
      for (auto &st : u->states) {
        line(1, "(state " + st.name + at(st.loc) + " " +
                    typeStr(st.type.get()) + (st.random ? " ~ " : " = "));
        expr(*st.value);
        os_ << ")\n";
      }
      for (auto &l : u->lets)
        let(1, l);
      for (auto &p : u->params)
        paramDecl(1, p);
      if (u->hasStep) {
        line(1, "(step" + at(u->stepLoc) + "\n");
        stmts(2, u->step);
        line(1, ")\n");
      }
      line(0, ")\n");
    }
    for (auto &t : m.trains) {
      line(0, "(train " + t->name + at(t->nameLoc) + "\n");
      for (auto &it : t->items)
        trainItem(1, it);
      line(0, ")\n");
    }
  }

  void trainItem(int ind, const TrainItem &it) {
    using K = TrainItem::Kind;
    static const char *names[] = {"data",  "target", "loss",    "descend",
                                  "noise", "primal", "dual",    "epochs",
                                  "batch", "seed",   "evaluate"};
    line(ind, std::string("(") + names[static_cast<int>(it.kind)] + at(it.loc));
    if (!it.name.empty())
      os_ << " " << it.name << at(it.nameLoc);
    for (auto &c : it.calls) {
      os_ << " ";
      expr(*c);
    }
    if (it.value) {
      os_ << " ";
      expr(*it.value);
    }
    if (it.kind == K::Descend) {
      os_ << " eps=";
      expr(*it.eps);
      os_ << (it.mode == ConstraintMode::Ratio ? " ratio" : " difference");
    }
    if (it.fns.empty()) {
      os_ << ")\n";
      return;
    }
    os_ << "\n";
    for (auto &f : it.fns)
      fn(ind + 1, *f);
    line(ind, ")\n");
  }

private:
  std::ostream &os_;
};

} // namespace

void printAST(const Module &m, std::ostream &os) { Printer(os).module(m); }

std::string exprToString(const Expr &e) {
  switch (e.kind) {
  case Expr::Kind::Number: {
    auto &n = static_cast<const NumberExpr &>(e);
    return num(n.value, n.isInt);
  }
  case Expr::Kind::String:
    return "\"" + static_cast<const StringExpr &>(e).value + "\"";
  case Expr::Kind::Name:
    return static_cast<const NameExpr &>(e).name;
  case Expr::Kind::Unary:
    return "-" + exprToString(*static_cast<const UnaryExpr &>(e).operand);
  case Expr::Kind::Binary: {
    auto &b = static_cast<const BinaryExpr &>(e);
    return "(" + exprToString(*b.lhs) + " " + b.op + " " +
           exprToString(*b.rhs) + ")";
  }
  case Expr::Kind::Transpose:
    return exprToString(*static_cast<const TransposeExpr &>(e).operand) + "'";
  case Expr::Kind::Call: {
    auto &c = static_cast<const CallExpr &>(e);
    std::string s = exprToString(*c.callee) + "(";
    for (size_t i = 0; i < c.args.size(); ++i) {
      if (i)
        s += ", ";
      if (!c.args[i].name.empty())
        s += c.args[i].name + " = ";
      s += exprToString(*c.args[i].value);
    }
    return s + ")";
  }
  case Expr::Kind::Member: {
    auto &m = static_cast<const MemberExpr &>(e);
    return exprToString(*m.base) + "." + m.name;
  }
  case Expr::Kind::Index: {
    auto &i = static_cast<const IndexExpr &>(e);
    return exprToString(*i.base) + "[" + exprToString(*i.index) + "]";
  }
  case Expr::Kind::Range: {
    auto &r = static_cast<const RangeExpr &>(e);
    return exprToString(*r.lo) + ".." + exprToString(*r.hi);
  }
  }
  return "?";
}

const NameExpr *firstNameIn(const Expr &e, const std::set<std::string> &names) {
  switch (e.kind) {
  case Expr::Kind::Name: {
    auto &n = static_cast<const NameExpr &>(e);
    return names.count(n.name) ? &n : nullptr;
  }
  case Expr::Kind::Unary:
    return firstNameIn(*static_cast<const UnaryExpr &>(e).operand, names);
  case Expr::Kind::Transpose:
    return firstNameIn(*static_cast<const TransposeExpr &>(e).operand, names);
  case Expr::Kind::Binary: {
    auto &b = static_cast<const BinaryExpr &>(e);
    const NameExpr *n = firstNameIn(*b.lhs, names);
    return n ? n : firstNameIn(*b.rhs, names);
  }
  case Expr::Kind::Call: {
    auto &c = static_cast<const CallExpr &>(e);
    // The callee names a function, not a state.
    for (const Arg &a : c.args)
      if (const NameExpr *n = firstNameIn(*a.value, names))
        return n;
    return nullptr;
  }
  case Expr::Kind::Member:
    return firstNameIn(*static_cast<const MemberExpr &>(e).base, names);
  case Expr::Kind::Index: {
    auto &i = static_cast<const IndexExpr &>(e);
    const NameExpr *n = firstNameIn(*i.base, names);
    return n ? n : firstNameIn(*i.index, names);
  }
  case Expr::Kind::Range: {
    auto &r = static_cast<const RangeExpr &>(e);
    const NameExpr *n = firstNameIn(*r.lo, names);
    return n ? n : firstNameIn(*r.hi, names);
  }
  case Expr::Kind::Number:
  case Expr::Kind::String:
    return nullptr;
  }
  return nullptr;
}

} // namespace unroll::dsl
