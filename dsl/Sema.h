#pragma once
#include "dsl/AST.h"
#include "dsl/Diagnostics.h"
#include "dsl/Loader.h"
#include "dsl/Types.h"

#include <deque>
#include <map>
#include <memory>
#include <set>
#include <unordered_map>

namespace unroll::dsl {

/// What a name in scope refers to.
struct Symbol {
  enum class Kind {
    Value,    // a typed value: data, given, var, let, param, local, int
    Function, // a user function (type.kind == Func)
    ModuleDef,
    Problem,
    Unrolled,
    Set, // a constraint set; type is the Func of its projection
  };
  Kind kind = Kind::Value;
  Type type;
  SourceLoc loc;
  std::string what; // "given", "var", "param", ... (for messages)
  const ModuleDecl *moduleDecl = nullptr;
  const ProblemDecl *problem = nullptr;
  const UnrolledDecl *unrolled = nullptr;
  const FnDecl *fn = nullptr;
  const SetDecl *set = nullptr;
  /// A module member declared with `repeat n`: its copies are composed, so
  /// its methods must map their input type to itself.
  bool repeated = false;
};

/// A lexical scope. Scopes live as long as Sema, since function values keep
/// a pointer to the scope they were defined in.
struct Scope {
  Scope *parent = nullptr;
  std::map<std::string, Symbol> names;
  Symbol *lookup(const std::string &n) {
    for (Scope *s = this; s; s = s->parent) {
      auto it = s->names.find(n);
      if (it != s->names.end())
        return &it->second;
    }
    return nullptr;
  }
};

/// A checked problem: its scope and its objective `f`.
struct ProblemInfo {
  const ProblemDecl *decl = nullptr;
  Scope *scope = nullptr;
  std::vector<const VarDecl *> vars; // role Var, in order
};

/// A module with its parameters bound (one per distinct argument list).
struct ModuleInst {
  const ModuleDecl *decl = nullptr;
  Scope *scope = nullptr;
  std::string key;
  /// Module copies it expands to: itself and, per member, its copies
  /// times the member's repeat count (at most kMaxModuleCopies + 1).
  int64_t copies = 1;
};

/// The most module copies an instance may expand to: each copy is lowered
/// and compiled on its own.
constexpr int64_t kMaxModuleCopies = 10000;

/// Semantic analysis: name resolution, type and shape checking with symbolic
/// dimensions, and the rules of problems, unrolled algorithms and train
/// blocks. Reports every error it finds and never throws on user input.
class Sema {
public:
  Sema(SourceManager &sm, DiagnosticEngine &diag, Loader &loader)
      : sm_(sm), diag_(diag), loader_(loader) {}

  /// Checks every loaded file, libraries first.
  void checkAll();

  /// What later stages need to know about a checked unrolled algorithm.
  struct UnrolledInfo {
    const ProblemDecl *problem = nullptr;
    /// Problem parameters bound by `solves`: sizes and constants.
    std::map<std::string, Dim> bindings;
    std::map<std::string, double> constants;
    long long layers = 1;
  };
  /// Null if the declaration failed to check.
  const UnrolledInfo *unrolledInfo(const UnrolledDecl *u) const {
    auto it = unrolledInfo_.find(u);
    return it == unrolledInfo_.end() ? nullptr : &it->second;
  }
  /// The user function a call invokes (names resolve lexically, so this
  /// holds inside function bodies too); null for built-ins and methods.
  const FnDecl *calleeOf(const CallExpr *c) const {
    auto it = callees_.find(c);
    return it == callees_.end() ? nullptr : it->second;
  }
  /// The set a problem variable is constrained to (`var y : T in box(0,
  /// 1)`), or null.
  const SetDecl *setOf(const VarDecl *v) const {
    auto it = varSets_.find(v);
    return it == varSets_.end() ? nullptr : it->second;
  }
  /// The proximal operator of t * g (`prox g(v, t) = ...`) visible where
  /// problem `pd` is declared, or null.
  const FnDecl *proxOf(const ProblemDecl &pd, const std::string &g) const;
  /// The problem whose objective `f` a call invokes, if it does.
  const ProblemDecl *objectiveOf(const CallExpr *c) const {
    auto it = objectiveCalls_.find(c);
    return it == objectiveCalls_.end() ? nullptr : it->second;
  }

  /// What a name used as a function value (`grad(f, y)`) refers to: a user
  /// function or a problem's objective.
  struct FunctionRef {
    const FnDecl *fn = nullptr;
    const ProblemDecl *objective = nullptr;
  };
  FunctionRef functionRef(const NameExpr *e) const {
    auto it = functionRefs_.find(e);
    return it == functionRefs_.end() ? FunctionRef{} : it->second;
  }

  /// Types of the expressions checked outside function bodies (function
  /// bodies are checked per call and have no single type).
  const std::unordered_map<const Expr *, Type> &exprTypes() const {
    return exprTypes_;
  }

private:
  friend struct ExprChecker;
  Scope *newScope(Scope *parent);
  void declare(Scope *s, const std::string &name, Symbol sym);
  bool declareChecked(Scope *s, const std::string &name, Symbol sym);
  void buildFileScope(LoadedFile *f);
  void checkFile(LoadedFile *f);
  void checkFnDefinition(const FnDecl &fn, Scope *scope);
  void checkProblem(const ProblemDecl &p, Scope *fileScope);
  /// Checks `var v : T in SET(args)`: a set, arguments that are numbers,
  /// a projection that maps T to T.
  void checkVarSet(const VarDecl &v, const Type &type, Scope *problemScope);
  /// Checks `prox g(v, t) = ...`: g a norm or a function of one argument,
  /// two parameters, and a result of the point's type.
  void checkProx(const ProxDecl &p, Scope *fileScope);
  void checkUnrolled(const UnrolledDecl &u, Scope *fileScope);
  void checkTrain(const TrainDecl &t, Scope *fileScope);
  void checkDescend(const TrainItem &it, Scope *layerScope);
  /// The types `a, b = value` gives its targets; reports a value that does
  /// not unpack into that many names.
  std::vector<Type> targetTypes(const AssignStmt &a, const Type &value);
  /// The symbol of a function (or method of `self`) defined in `scope`.
  static Symbol functionSymbol(const FnDecl &fn, Scope *scope,
                               ModuleInst *self = nullptr);
  /// Checks `let`s in order and declares them in `scope`.
  void declareLets(Scope *scope, const std::vector<LetDecl> &lets);
  /// Checks a trainable parameter's initial value against its type.
  void checkParamInit(const ParamDecl &p, const Type &type, Scope *scope);

public:
  // Used by the expression checker.
  void error(SourceLoc loc, const std::string &msg);
  /// Reports that a required part is missing, unless the file had syntax
  /// errors (the part may be what failed to parse).
  void missing(SourceLoc loc, const std::string &msg);
  void note(SourceLoc loc, const std::string &msg) { diag_.note(loc, msg); }
  Type evalType(const TypeExpr &t, Scope *scope,
                std::map<std::string, Dim> *patterns, bool definition);
  Dim evalDim(const Expr &e, Scope *scope, std::map<std::string, Dim> *patterns,
              bool definition, bool &ok);
  ModuleInst *instantiateModule(const TypeExpr &t, Scope *scope);
  Type callFunction(const Type &fnType, std::vector<Type> args,
                    const std::vector<SourceLoc> &argLocs,
                    const std::vector<std::string> &argNames, SourceLoc callLoc,
                    const std::string &calleeName);
  Type checkBody(const FnDecl &fn, Scope *scope);
  bool sameType(const Type &a, const Type &b) const;
  bool sameDim(const Dim &a, const Dim &b) const;
  /// Checks a shape's dimensions (`exprs` where they are written) under
  /// the current bindings: each positive and at most kMaxDimension, the
  /// element count at most kMaxDimension. Reports at the dimension and
  /// returns false on the first that fails.
  bool checkDims(const std::vector<Dim> &dims,
                 const std::vector<ExprPtr> &exprs);
  void unknownName(SourceLoc loc, const std::string &name, Scope *scope);
  std::string typeStr(const Type &t) const;

  std::map<std::string, Dim> bindings; // problem parameter values in force
  std::unordered_map<const CallExpr *, const FnDecl *> callees_;
  std::unordered_map<const CallExpr *, const ProblemDecl *> objectiveCalls_;
  std::unordered_map<const NameExpr *, FunctionRef> functionRefs_;
  std::unordered_map<const Expr *, Type> exprTypes_;
  std::unordered_map<const VarDecl *, const SetDecl *> varSets_;
  bool recordTypes = true;

private:
  SourceManager &sm_;
  DiagnosticEngine &diag_;
  Loader &loader_;
  std::deque<Scope> scopes_;
  std::deque<ProblemInfo> problems_;
  std::deque<ModuleInst> modules_;
  std::map<const LoadedFile *, Scope *> fileScopes_;
  std::set<uint32_t> incompleteFiles_;
  std::map<const ProblemDecl *, ProblemInfo *> problemInfo_;
  std::map<const UnrolledDecl *, Scope *> unrolledLayered_;
  std::map<const UnrolledDecl *, UnrolledInfo> unrolledInfo_;
  std::map<const void *, Scope *> declFileScope_; // module/problem decl -> file
  std::map<std::string, Type> instMemo_;
  std::vector<const ModuleDecl *> moduleStack_;
  struct Frame {
    const FnDecl *fn;
    SourceLoc callLoc;
    std::string name;
  };
  std::vector<Frame> frames_; // function instantiations in progress
};

} // namespace unroll::dsl
