#pragma once
#include "dsl/Source.h"

#include <memory>
#include <ostream>
#include <set>
#include <string>
#include <vector>

/// The Unroll abstract syntax tree. Every node carries the location of its
/// first token. The tree is what the parser read, nothing more: names are not
/// resolved here, and types are attached by semantic analysis (Sema) in a
/// side table, so later stages can walk the tree without re-parsing.
namespace unroll::dsl {

//===----------------------------------------------------------------------===//
// Expressions
//===----------------------------------------------------------------------===//

struct Expr {
  enum class Kind {
    Number,
    String,
    Name,
    Unary,
    Binary,
    Transpose,
    Call,
    Member,
    Index,
    Range
  };
  Expr(Kind k, SourceLoc loc) : kind(k), loc(loc) {}
  virtual ~Expr() = default;
  const Kind kind;
  SourceLoc loc;
};
using ExprPtr = std::unique_ptr<Expr>;

/// 3, 0.5, 1e-5. `isInt` is set for literals written without '.' or 'e'.
struct NumberExpr : Expr {
  NumberExpr(SourceLoc l, double v, bool isInt)
      : Expr(Kind::Number, l), value(v), isInt(isInt) {}
  double value;
  bool isInt;
};

/// "text" (file paths in data sources).
struct StringExpr : Expr {
  StringExpr(SourceLoc l, std::string v)
      : Expr(Kind::String, l), value(std::move(v)) {}
  std::string value;
};

/// A reference to a name: variable, parameter, function, problem, ...
struct NameExpr : Expr {
  NameExpr(SourceLoc l, std::string n)
      : Expr(Kind::Name, l), name(std::move(n)) {}
  std::string name;
};

/// -x
struct UnaryExpr : Expr {
  UnaryExpr(SourceLoc l, char op, ExprPtr e)
      : Expr(Kind::Unary, l), op(op), operand(std::move(e)) {}
  char op;
  ExprPtr operand;
};

/// a + b, a - b, a * b, a / b, a ^ b, a @ b (matrix product).
struct BinaryExpr : Expr {
  BinaryExpr(SourceLoc l, char op, ExprPtr a, ExprPtr b)
      : Expr(Kind::Binary, l), op(op), lhs(std::move(a)), rhs(std::move(b)) {}
  char op;
  ExprPtr lhs, rhs;
  /// Location of the operator token (diagnostics point here).
  SourceLoc opLoc;
};

/// a' (transpose of a matrix).
struct TransposeExpr : Expr {
  TransposeExpr(SourceLoc l, ExprPtr e)
      : Expr(Kind::Transpose, l), operand(std::move(e)) {}
  ExprPtr operand;
};

/// One argument of a call: positional (`name` empty) or named (`lr = 1e-5`).
struct Arg {
  std::string name;
  SourceLoc loc;
  ExprPtr value;
};

/// f(a, b, name = c). The callee is a NameExpr or a MemberExpr (flow.forward).
struct CallExpr : Expr {
  CallExpr(SourceLoc l, ExprPtr callee)
      : Expr(Kind::Call, l), callee(std::move(callee)) {}
  ExprPtr callee;
  std::vector<Arg> args;
};

/// base.name (a method of a module parameter).
struct MemberExpr : Expr {
  MemberExpr(SourceLoc l, ExprPtr base, std::string name)
      : Expr(Kind::Member, l), base(std::move(base)), name(std::move(name)) {}
  ExprPtr base;
  std::string name;
};

/// base[i] (selects a layer of a layered value, e.g. y[L], or an element).
struct IndexExpr : Expr {
  IndexExpr(SourceLoc l, ExprPtr base, ExprPtr index)
      : Expr(Kind::Index, l), base(std::move(base)), index(std::move(index)) {}
  ExprPtr base, index;
};

/// lo..hi (an inclusive integer range, e.g. `dropped = 0..10`).
struct RangeExpr : Expr {
  RangeExpr(SourceLoc l, ExprPtr lo, ExprPtr hi)
      : Expr(Kind::Range, l), lo(std::move(lo)), hi(std::move(hi)) {}
  ExprPtr lo, hi;
};

//===----------------------------------------------------------------------===//
// Types as written
//===----------------------------------------------------------------------===//

/// int | float | scalar | vec[n] | mat[m, n] | tensor[d1, ...] |
/// module(args) (e.g. glow(c, h, w, levels = 3)).
struct TypeExpr {
  enum class Kind { Int, Float, Scalar, Vec, Mat, Tensor, Any, Module };
  Kind kind = Kind::Any;
  SourceLoc loc;
  std::vector<ExprPtr> dims;   // vec/mat/tensor
  std::string moduleName;      // Module
  std::vector<Arg> moduleArgs; // Module
};
using TypeExprPtr = std::unique_ptr<TypeExpr>;

//===----------------------------------------------------------------------===//
// Statements (step bodies and function bodies)
//===----------------------------------------------------------------------===//

struct Stmt {
  enum class Kind { Assign, Return };
  Stmt(Kind k, SourceLoc loc) : kind(k), loc(loc) {}
  virtual ~Stmt() = default;
  const Kind kind;
  SourceLoc loc;
};
using StmtPtr = std::unique_ptr<Stmt>;

/// y = expr;  a, b = expr (a tuple result, e.g. from minibatch).
struct AssignStmt : Stmt {
  AssignStmt(SourceLoc l) : Stmt(Kind::Assign, l) {}
  std::vector<std::string> targets;
  std::vector<SourceLoc> targetLocs;
  ExprPtr value;
};

/// return expr
struct ReturnStmt : Stmt {
  ReturnStmt(SourceLoc l, ExprPtr v)
      : Stmt(Kind::Return, l), value(std::move(v)) {}
  ExprPtr value;
};

//===----------------------------------------------------------------------===//
// Declarations
//===----------------------------------------------------------------------===//

/// A formal parameter: `name`, `name: type` or `name: type = default`.
struct Param {
  std::string name;
  SourceLoc loc;
  TypeExprPtr type; // may be null (type taken from the argument)
  ExprPtr defaultValue;
};

/// fn name(params) = expr   |   fn name(params) { stmts }
struct FnDecl {
  std::string name;
  SourceLoc loc;
  std::vector<Param> params;
  ExprPtr body;               // expression body, or
  std::vector<StmtPtr> stmts; // block body ending in `return`
};
using FnDeclPtr = std::unique_ptr<FnDecl>;

/// let name = expr
struct LetDecl {
  std::string name;
  SourceLoc loc;
  ExprPtr value;
};

/// How a trainable parameter is replicated across the unrolled layers.
enum class Binding { None, PerLayer, Shared };

/// param name : type [per layer | shared] [repeat n] [= init]
struct ParamDecl {
  std::string name;
  SourceLoc loc;
  TypeExprPtr type;
  Binding binding = Binding::None;
  SourceLoc bindingLoc;
  ExprPtr repeat; // modules only: n copies composed in sequence
  ExprPtr init;
};

/// import name
struct ImportDecl {
  std::string name;
  SourceLoc loc;
};

/// data x : T | given D : T | var y : T [in SET]   (inside a problem)
struct VarDecl {
  enum class Role { Data, Given, Var };
  Role role;
  std::string name;
  SourceLoc loc;
  TypeExprPtr type;
  /// The constraint set of a `var`: a name (`nonneg`) or a call
  /// (`box(0, 1)`); null if unconstrained.
  ExprPtr set;
};

/// prox g(v, t) = expr
/// The proximal operator of t * g, for g a built-in (norm1, norm, sqnorm)
/// or a function of one argument: prox_{t g}(v) = argmin_u g(u) +
/// ||u - v||^2 / (2 t). Classical solvers take a term `c * g(y)` of an
/// objective as the non-smooth part through it.
struct ProxDecl {
  /// The function g.
  std::string of;
  SourceLoc loc;
  /// The operator as a function of the point and the step (v, t).
  std::unique_ptr<FnDecl> fn;
};

/// set name(params) project(v) = expr
/// A constraint set, defined by its Euclidean projection. `project` is a
/// function of the set's parameters followed by the point `v`.
struct SetDecl {
  std::string name;
  SourceLoc loc;
  std::unique_ptr<FnDecl> project;
};

/// problem name(params) { data/given/var decls, fn, let, minimize expr }
struct ProblemDecl {
  std::string name;
  SourceLoc loc;
  std::vector<Param> params;
  std::vector<VarDecl> vars;
  std::vector<LetDecl> lets;
  std::vector<FnDeclPtr> fns;
  ExprPtr objective; // minimize
  SourceLoc objectiveLoc;
};

/// module name(params) { param decls, let, fn (methods) }
struct ModuleDecl {
  std::string name;
  SourceLoc loc;
  std::vector<Param> params;
  std::vector<ParamDecl> members;
  std::vector<LetDecl> lets;
  std::vector<FnDeclPtr> methods;
};

/// init y ~ dist  |  init y = expr
struct InitDecl {
  std::string var;
  SourceLoc loc;
  bool random = false; // '~'
  ExprPtr value;
};

/// state v : type = expr  |  state v : type ~ dist
/// A variable of the algorithm, not of the problem (FISTA's momentum
/// point, ADMM's splitting variable and dual): carried from layer to layer
/// like the problem's variables, but outside the objective and targets.
struct StateDecl {
  std::string name;
  SourceLoc loc;
  TypeExprPtr type;
  bool random = false; // '~'
  ExprPtr value;
};

/// unrolled name(layers = n) solves problem(args)
///   { init, state, let, param, step }
struct UnrolledDecl {
  std::string name;
  SourceLoc loc;
  std::vector<Arg> options; // layers = 10
  std::string problem;
  SourceLoc problemLoc;
  std::vector<Arg> problemArgs;
  std::vector<InitDecl> inits;
  std::vector<StateDecl> states;
  std::vector<LetDecl> lets;
  std::vector<ParamDecl> params;
  std::vector<StmtPtr> step;
  SourceLoc stepLoc;
  bool hasStep = false;
};

/// How a descent constraint compares consecutive layers.
enum class ConstraintMode { Difference, Ratio };

/// One item of a train block. Which fields are used depends on `kind`:
///   data CALL {| CALL}      -> calls
///   target NAME = EXPR      -> name, value
///   loss EXPR               -> value
///   descend FORM by EPS [as ratio|difference] [where FN, ...]
///                           -> value (form), eps, mode, fns
///   noise NAME += DIST      -> name, value
///   primal CALL | dual CALL | evaluate CALL -> calls[0]
///   epochs EXPR | batch EXPR | seed EXPR    -> value
struct TrainItem {
  enum class Kind {
    Data,
    Target,
    Loss,
    Descend,
    Noise,
    Primal,
    Dual,
    Epochs,
    Batch,
    Seed,
    Evaluate
  };
  Kind kind;
  SourceLoc loc;
  std::string name;
  SourceLoc nameLoc;
  ExprPtr value;
  ExprPtr eps;
  ConstraintMode mode = ConstraintMode::Difference;
  std::vector<ExprPtr> calls;
  std::vector<FnDeclPtr> fns;
};

/// train name { items }
struct TrainDecl {
  std::string name; // the unrolled algorithm being trained
  SourceLoc loc;
  SourceLoc nameLoc;
  std::vector<TrainItem> items;
};

/// One parsed file, in source order per kind.
struct Module {
  uint32_t file = 0;
  std::vector<ImportDecl> imports;
  std::vector<FnDeclPtr> fns;
  std::vector<std::unique_ptr<ProblemDecl>> problems;
  std::vector<std::unique_ptr<ModuleDecl>> modules;
  std::vector<std::unique_ptr<SetDecl>> sets;
  std::vector<std::unique_ptr<ProxDecl>> proxes;
  std::vector<std::unique_ptr<UnrolledDecl>> unrolleds;
  std::vector<std::unique_ptr<TrainDecl>> trains;
};

/// Prints the tree as indented S-expressions, each node with its
/// `line:col` (the `--emit=ast` format).
void printAST(const Module &m, std::ostream &os);
/// Prints one expression in source-like syntax (used in messages).
std::string exprToString(const Expr &e);

/// The first name in `e` (in source order) that is one of `names`, or
/// null: operands and arguments are searched, callees are not (they name
/// functions).
const NameExpr *firstNameIn(const Expr &e, const std::set<std::string> &names);

} // namespace unroll::dsl
