#include "dsl/Parser.h"

#include <cassert>

namespace unroll::dsl {

namespace {

/// Thrown after a syntax error has been reported, to unwind to the nearest
/// recovery point. Never escapes the parser.
struct SyntaxError {};

/// Deeper nesting than this is rejected rather than risking the stack.
constexpr int kMaxDepth = 200;
constexpr int kMaxExprNodes = 2000;

class Parser {
public:
  Parser(std::vector<Token> toks, uint32_t file, DiagnosticEngine &diag)
      : toks_(std::move(toks)), diag_(diag) {
    mod_ = std::make_unique<Module>();
    mod_->file = file;
  }

  // file := { import | problem | unrolled | train | module | set | prox
  //          | fn }
  std::unique_ptr<Module> parseFile() {
    while (!at(Tok::Eof)) {
      try {
        parseTopLevel();
      } catch (SyntaxError &) {
        syncTopLevel();
      }
    }
    return std::move(mod_);
  }

private:
  //===--------------------------------------------------------------------===//
  // Token helpers
  //===--------------------------------------------------------------------===//
  const Token &tok(size_t k = 0) const {
    size_t i = std::min(pos_ + k, toks_.size() - 1);
    return toks_[i];
  }
  bool at(Tok k) const { return tok().kind == k; }
  bool atWord(const char *w) const {
    return tok().kind == Tok::Ident && tok().text == w;
  }
  Token take() {
    Token t = tok();
    if (pos_ + 1 < toks_.size())
      ++pos_;
    return t;
  }
  bool accept(Tok k) {
    if (!at(k))
      return false;
    take();
    return true;
  }
  bool acceptWord(const char *w) {
    if (!atWord(w))
      return false;
    take();
    return true;
  }

  std::string describe(const Token &t) const {
    switch (t.kind) {
    case Tok::Eof:
      return "end of file";
    case Tok::Ident:
      return "'" + t.text + "'";
    case Tok::String:
      return "string \"" + t.text + "\"";
    default:
      return "'" + t.text + "'";
    }
  }

  [[noreturn]] void fail(const std::string &what) {
    diag_.error(tok().loc, "expected " + what + ", found " + describe(tok()));
    throw SyntaxError();
  }
  [[noreturn]] void failAt(SourceLoc loc, const std::string &msg) {
    diag_.error(loc, msg);
    throw SyntaxError();
  }
  Token expect(Tok k, const char *what = nullptr) {
    if (!at(k))
      fail(what ? what : tokName(k));
    return take();
  }
  void expectWord(const char *w) {
    if (!atWord(w))
      fail(std::string("'") + w + "'");
    take();
  }
  Token expectIdent(const char *what) {
    if (!at(Tok::Ident))
      fail(what);
    return take();
  }

  /// Skips to the start of the next line at the current nesting level, or to
  /// the '}' closing the enclosing block (left for the caller). A token that
  /// starts a line is a fresh start already, so nothing is skipped then.
  void syncStatement() {
    int depth = 0;
    while (!at(Tok::Eof)) {
      if (depth == 0 && tok().newlineBefore && !at(Tok::RBrace))
        return;
      if (at(Tok::LBrace) || at(Tok::LParen) || at(Tok::LBrack)) {
        ++depth;
      } else if (at(Tok::RBrace) || at(Tok::RParen) || at(Tok::RBrack)) {
        if (depth == 0) {
          if (at(Tok::RBrace))
            return;
        } else {
          --depth;
        }
      }
      take();
    }
  }

  static bool isTopLevelWord(const Token &t) {
    if (t.kind != Tok::Ident)
      return false;
    return t.text == "import" || t.text == "problem" || t.text == "unrolled" ||
           t.text == "train" || t.text == "module" || t.text == "fn" ||
           t.text == "set" || t.text == "prox";
  }

  void syncTopLevel() {
    take();
    while (!at(Tok::Eof) && !(tok().newlineBefore && isTopLevelWord(tok())))
      take();
  }

  /// Parses `{ item* }`, recovering at item granularity.
  template <typename F> void parseItemBlock(F &&item) {
    SourceLoc open = expect(Tok::LBrace).loc;
    while (!at(Tok::RBrace) && !at(Tok::Eof)) {
      size_t before = pos_;
      try {
        item();
      } catch (SyntaxError &) {
        if (pos_ == before)
          take();
        syncStatement();
      }
      accept(Tok::Semi);
    }
    if (at(Tok::Eof)) {
      diag_.error(tok().loc, "expected '}', found end of file");
      diag_.note(open, "to match this '{'");
      throw SyntaxError();
    }
    take();
  }

  struct DepthGuard {
    DepthGuard(Parser &p) : p(p) {
      if (p.depth_ == 0)
        p.exprNodes_ = 0;
      if (p.depth_ + 1 > kMaxDepth)
        p.failAt(p.tok().loc, "expression is nested too deeply");
      ++p.depth_;
    }
    ~DepthGuard() { --p.depth_; }
    Parser &p;
  };

  /// Counts operator nodes in the current top-level expression. Long operator
  /// chains build deep trees too, and later stages walk trees recursively.
  void bump(SourceLoc loc) {
    if (++exprNodes_ > kMaxExprNodes)
      failAt(loc, "expression is too long (more than " +
                      std::to_string(kMaxExprNodes) + " operations)");
  }

  //===--------------------------------------------------------------------===//
  // Declarations
  //===--------------------------------------------------------------------===//

  void parseTopLevel() {
    if (!at(Tok::Ident) || !isTopLevelWord(tok()))
      fail("a declaration ('import', 'problem', 'unrolled', 'train', "
           "'module', 'set', 'prox' or 'fn')");
    const std::string w = tok().text;
    if (w == "import")
      parseImport();
    else if (w == "problem")
      mod_->problems.push_back(parseProblem());
    else if (w == "unrolled")
      mod_->unrolleds.push_back(parseUnrolled());
    else if (w == "train")
      mod_->trains.push_back(parseTrain());
    else if (w == "module")
      mod_->modules.push_back(parseModule());
    else if (w == "set")
      mod_->sets.push_back(parseSet());
    else if (w == "prox")
      mod_->proxes.push_back(parseProx());
    else
      mod_->fns.push_back(parseFn());
  }

  // import := 'import' IDENT
  void parseImport() {
    take();
    Token name = expectIdent("a library name after 'import'");
    mod_->imports.push_back(ImportDecl{name.text, name.loc});
  }

  // params := '(' [ param { ',' param } ] ')'
  // param  := IDENT [ ':' type ] [ '=' expr ]
  std::vector<Param> parseParams() {
    std::vector<Param> out;
    expect(Tok::LParen);
    if (accept(Tok::RParen))
      return out;
    do {
      Param p;
      Token name = expectIdent("a parameter name");
      p.name = name.text;
      p.loc = name.loc;
      if (accept(Tok::Colon))
        p.type = parseType();
      if (accept(Tok::Assign))
        p.defaultValue = parseExpr();
      out.push_back(std::move(p));
    } while (accept(Tok::Comma));
    expect(Tok::RParen, "',' or ')'");
    return out;
  }

  // type := 'int' | 'float' | 'scalar'
  //       | ('vec' | 'mat' | 'tensor') '[' expr { ',' expr } ']'
  //       | IDENT [ '(' args ')' ]            (a module, e.g. glow(c, h, w))
  TypeExprPtr parseType() {
    auto t = std::make_unique<TypeExpr>();
    Token name = expectIdent("a type");
    t->loc = name.loc;
    const std::string &n = name.text;
    if (n == "int") {
      t->kind = TypeExpr::Kind::Int;
    } else if (n == "float") {
      t->kind = TypeExpr::Kind::Float;
    } else if (n == "scalar") {
      t->kind = TypeExpr::Kind::Scalar;
    } else if (n == "vec" || n == "mat" || n == "tensor") {
      t->kind = n == "vec"   ? TypeExpr::Kind::Vec
                : n == "mat" ? TypeExpr::Kind::Mat
                             : TypeExpr::Kind::Tensor;
      if (!at(Tok::LBrack))
        fail("'[' and the dimensions of " + n);
      take();
      do {
        t->dims.push_back(parseExpr());
      } while (accept(Tok::Comma));
      expect(Tok::RBrack, "',' or ']'");
      size_t want = n == "vec" ? 1 : n == "mat" ? 2 : 0;
      if (want && t->dims.size() != want)
        failAt(name.loc, n + " takes " + std::to_string(want) +
                             (want == 1 ? " dimension" : " dimensions") +
                             ", got " + std::to_string(t->dims.size()));
    } else {
      t->kind = TypeExpr::Kind::Module;
      t->moduleName = n;
      if (at(Tok::LParen) && !tok().newlineBefore) {
        take();
        t->moduleArgs = parseArgsUntilRParen();
      }
    }
    return t;
  }

  // problem := 'problem' IDENT [ params ] '{' { problemItem } '}'
  // problemItem := ('data' | 'given') IDENT ':' type
  //              | 'var' IDENT ':' type [ 'in' expr ]
  //              | 'let' IDENT '=' expr | fn | 'minimize' expr
  std::unique_ptr<ProblemDecl> parseProblem() {
    auto p = std::make_unique<ProblemDecl>();
    p->loc = take().loc;
    p->name = expectIdent("a problem name").text;
    if (at(Tok::LParen))
      p->params = parseParams();
    parseItemBlock([&] {
      if (atWord("data") || atWord("given") || atWord("var")) {
        VarDecl v;
        Token kw = take();
        v.role = kw.text == "data"    ? VarDecl::Role::Data
                 : kw.text == "given" ? VarDecl::Role::Given
                                      : VarDecl::Role::Var;
        Token name = expectIdent("a name");
        v.name = name.text;
        v.loc = name.loc;
        expect(Tok::Colon, "':' and a type");
        v.type = parseType();
        if (!tok().newlineBefore && acceptWord("in"))
          v.set = parseExpr();
        p->vars.push_back(std::move(v));
      } else if (atWord("let")) {
        p->lets.push_back(parseLet());
      } else if (atWord("fn")) {
        p->fns.push_back(parseFn());
      } else if (atWord("minimize")) {
        Token kw = take();
        if (p->objective)
          failAt(kw.loc, "problem '" + p->name +
                             "' has more than one "
                             "'minimize'");
        p->objectiveLoc = kw.loc;
        p->objective = parseExpr();
      } else {
        fail("'data', 'given', 'var', 'let', 'fn' or 'minimize'");
      }
    });
    return p;
  }

  // let := 'let' IDENT '=' expr
  LetDecl parseLet() {
    take();
    LetDecl l;
    Token name = expectIdent("a name after 'let'");
    l.name = name.text;
    l.loc = name.loc;
    expect(Tok::Assign, "'='");
    l.value = parseExpr();
    return l;
  }

  // paramDecl := 'param' IDENT ':' type [ 'per' 'layer' | 'shared' ]
  //              [ 'repeat' expr ] [ '=' expr ]
  ParamDecl parseParamDecl() {
    take();
    ParamDecl d;
    Token name = expectIdent("a parameter name");
    d.name = name.text;
    d.loc = name.loc;
    expect(Tok::Colon, "':' and a type");
    d.type = parseType();
    if (atWord("per")) {
      d.bindingLoc = take().loc;
      expectWord("layer");
      d.binding = Binding::PerLayer;
    } else if (atWord("shared")) {
      d.bindingLoc = take().loc;
      d.binding = Binding::Shared;
    }
    if (acceptWord("repeat"))
      d.repeat = parseExpr();
    if (accept(Tok::Assign))
      d.init = parseExpr();
    return d;
  }

  // set := 'set' IDENT [ params ] 'project' '(' IDENT ')' '=' expr
  std::unique_ptr<SetDecl> parseSet() {
    auto d = std::make_unique<SetDecl>();
    d->loc = take().loc;
    Token name = expectIdent("a name for the set");
    d->name = name.text;
    d->loc = name.loc;
    auto fn = std::make_unique<FnDecl>();
    fn->name = name.text;
    fn->loc = name.loc;
    if (at(Tok::LParen))
      fn->params = parseParams();
    if (!atWord("project"))
      fail("'project(v) = ...', the projection onto set '" + d->name + "'");
    take();
    expect(Tok::LParen, "'(' and the point to project");
    Token v = expectIdent("the name of the point to project");
    expect(Tok::RParen, "')'");
    Param point;
    point.name = v.text;
    point.loc = v.loc;
    fn->params.push_back(std::move(point));
    expect(Tok::Assign, "'=' and the projection");
    fn->body = parseExpr();
    d->project = std::move(fn);
    return d;
  }

  // prox := 'prox' IDENT params '=' expr
  std::unique_ptr<ProxDecl> parseProx() {
    auto d = std::make_unique<ProxDecl>();
    take();
    Token name = expectIdent("the function whose proximal operator this is");
    d->of = name.text;
    d->loc = name.loc;
    auto fn = std::make_unique<FnDecl>();
    fn->name = "prox " + name.text;
    fn->loc = name.loc;
    fn->params = parseParams();
    expect(Tok::Assign, "'=' and the proximal operator");
    fn->body = parseExpr();
    d->fn = std::move(fn);
    return d;
  }

  // stateDecl := 'state' IDENT ':' type ('~' | '=') expr
  StateDecl parseStateDecl() {
    take();
    StateDecl d;
    Token name = expectIdent("a name for the state");
    d.name = name.text;
    d.loc = name.loc;
    expect(Tok::Colon, "':' and a type");
    d.type = parseType();
    if (accept(Tok::Tilde))
      d.random = true;
    else if (!accept(Tok::Assign))
      fail("'~' (random) or '=' and the initial value of state '" + d.name +
           "'");
    d.value = parseExpr();
    return d;
  }

  // module := 'module' IDENT [ params ] '{' { paramDecl | let | fn } '}'
  std::unique_ptr<ModuleDecl> parseModule() {
    auto m = std::make_unique<ModuleDecl>();
    m->loc = take().loc;
    m->name = expectIdent("a module name").text;
    if (at(Tok::LParen))
      m->params = parseParams();
    parseItemBlock([&] {
      if (atWord("param"))
        m->members.push_back(parseParamDecl());
      else if (atWord("let"))
        m->lets.push_back(parseLet());
      else if (atWord("fn"))
        m->methods.push_back(parseFn());
      else
        fail("'param', 'let' or 'fn'");
    });
    return m;
  }

  // fn := 'fn' IDENT params ( '=' expr | block )
  FnDeclPtr parseFn() {
    take();
    auto f = std::make_unique<FnDecl>();
    Token name = expectIdent("a function name");
    f->name = name.text;
    f->loc = name.loc;
    f->params = parseParams();
    if (accept(Tok::Assign))
      f->body = parseExpr();
    else if (at(Tok::LBrace))
      f->stmts = parseBlock();
    else
      fail("'=' or '{' to start the body of '" + f->name + "'");
    return f;
  }

  // block := '{' { stmt } '}'
  // stmt  := 'return' expr | IDENT { ',' IDENT } '=' expr
  std::vector<StmtPtr> parseBlock() {
    std::vector<StmtPtr> out;
    parseItemBlock([&] {
      if (atWord("return")) {
        Token kw = take();
        out.push_back(std::make_unique<ReturnStmt>(kw.loc, parseExpr()));
        return;
      }
      Token first = expectIdent("a statement");
      auto s = std::make_unique<AssignStmt>(first.loc);
      s->targets.push_back(first.text);
      s->targetLocs.push_back(first.loc);
      while (accept(Tok::Comma)) {
        Token t = expectIdent("a name");
        s->targets.push_back(t.text);
        s->targetLocs.push_back(t.loc);
      }
      if (at(Tok::PlusEq))
        failAt(tok().loc, "'+=' is only allowed in 'noise'; write '" +
                              first.text + " = " + first.text + " + ...'");
      expect(Tok::Assign, "'='");
      s->value = parseExpr();
      out.push_back(std::move(s));
    });
    return out;
  }

  // unrolled := 'unrolled' IDENT [ '(' args ')' ] 'solves' IDENT
  //             [ '(' args ')' ] '{' { unrolledItem } '}'
  // unrolledItem := 'init' IDENT ('~' | '=') expr
  //               | 'state' IDENT ':' type ('~' | '=') expr
  //               | let | paramDecl | 'step' block
  std::unique_ptr<UnrolledDecl> parseUnrolled() {
    auto u = std::make_unique<UnrolledDecl>();
    u->loc = take().loc;
    u->name = expectIdent("a name for the unrolled algorithm").text;
    if (accept(Tok::LParen))
      u->options = parseArgsUntilRParen();
    expectWord("solves");
    Token prob = expectIdent("the name of the problem it solves");
    u->problem = prob.text;
    u->problemLoc = prob.loc;
    if (accept(Tok::LParen))
      u->problemArgs = parseArgsUntilRParen();
    parseItemBlock([&] {
      if (atWord("init")) {
        InitDecl d;
        take();
        Token v = expectIdent("the state variable to initialise");
        d.var = v.text;
        d.loc = v.loc;
        if (accept(Tok::Tilde))
          d.random = true;
        else if (!accept(Tok::Assign))
          fail("'~' (random) or '=' (given value)");
        d.value = parseExpr();
        u->inits.push_back(std::move(d));
      } else if (atWord("state")) {
        u->states.push_back(parseStateDecl());
      } else if (atWord("let")) {
        u->lets.push_back(parseLet());
      } else if (atWord("param")) {
        u->params.push_back(parseParamDecl());
      } else if (atWord("step")) {
        Token kw = take();
        if (u->hasStep)
          failAt(kw.loc, "'" + u->name + "' has more than one 'step'");
        u->hasStep = true;
        u->stepLoc = kw.loc;
        u->step = parseBlock();
      } else {
        fail("'init', 'state', 'let', 'param' or 'step'");
      }
    });
    return u;
  }

  // train := 'train' IDENT '{' { trainItem } '}'
  // trainItem := 'data' expr { '|' expr } | 'target' IDENT '=' expr
  //            | 'loss' expr | 'noise' IDENT '+=' expr
  //            | 'descend' expr 'by' [ 'eps' '=' ] expr
  //              [ 'as' ('ratio' | 'difference') ]
  //              [ 'where' IDENT params '=' expr { ',' IDENT params '=' expr }
  //              ]
  //            | ('primal' | 'dual' | 'evaluate' | 'epochs' | 'batch'
  //               | 'seed') expr
  std::unique_ptr<TrainDecl> parseTrain() {
    auto t = std::make_unique<TrainDecl>();
    t->loc = take().loc;
    Token name = expectIdent("the name of the unrolled algorithm to train");
    t->name = name.text;
    t->nameLoc = name.loc;
    parseItemBlock([&] { t->items.push_back(parseTrainItem()); });
    return t;
  }

  TrainItem parseTrainItem() {
    using K = TrainItem::Kind;
    if (!at(Tok::Ident))
      fail("a train setting");
    static const std::pair<const char *, K> words[] = {
        {"data", K::Data},        {"target", K::Target},
        {"loss", K::Loss},        {"descend", K::Descend},
        {"noise", K::Noise},      {"primal", K::Primal},
        {"dual", K::Dual},        {"epochs", K::Epochs},
        {"batch", K::Batch},      {"seed", K::Seed},
        {"evaluate", K::Evaluate}};
    TrainItem it{};
    bool found = false;
    for (auto &w : words)
      if (tok().text == w.first) {
        it.kind = w.second;
        found = true;
      }
    if (!found) {
      std::vector<std::string> names;
      for (auto &w : words)
        names.push_back(w.first);
      std::string hint = closestMatch(tok().text, names);
      failAt(tok().loc,
             "unknown train setting '" + tok().text + "'" +
                 (hint.empty() ? "" : "; did you mean '" + hint + "'?"));
    }
    it.loc = take().loc;
    switch (it.kind) {
    case K::Data:
      it.calls.push_back(parseExpr());
      while (accept(Tok::Pipe))
        it.calls.push_back(parseExpr());
      break;
    case K::Target: {
      Token n = expectIdent("a name for the target");
      it.name = n.text;
      it.nameLoc = n.loc;
      expect(Tok::Assign, "'='");
      it.value = parseExpr();
      break;
    }
    case K::Noise: {
      Token n = expectIdent("the state variable the noise is added to");
      it.name = n.text;
      it.nameLoc = n.loc;
      expect(Tok::PlusEq, "'+='");
      it.value = parseExpr();
      break;
    }
    case K::Descend:
      it.value = parseExpr();
      if (!atWord("by"))
        fail("'by' and the decrease factor eps");
      take();
      if (atWord("eps") && tok(1).kind == Tok::Assign) {
        take();
        take();
      }
      it.eps = parseExpr();
      if (acceptWord("as")) {
        if (acceptWord("ratio"))
          it.mode = ConstraintMode::Ratio;
        else if (acceptWord("difference"))
          it.mode = ConstraintMode::Difference;
        else
          fail("'ratio' or 'difference'");
      }
      if (acceptWord("where")) {
        do {
          auto f = std::make_unique<FnDecl>();
          Token n = expectIdent("a function name");
          f->name = n.text;
          f->loc = n.loc;
          f->params = parseParams();
          expect(Tok::Assign, "'='");
          f->body = parseExpr();
          it.fns.push_back(std::move(f));
        } while (accept(Tok::Comma));
      }
      break;
    case K::Loss:
    case K::Primal:
    case K::Dual:
    case K::Evaluate:
    case K::Epochs:
    case K::Batch:
    case K::Seed:
      it.value = parseExpr();
      break;
    }
    return it;
  }

  //===--------------------------------------------------------------------===//
  // Expressions
  //===--------------------------------------------------------------------===//

  // expr := additive [ '..' additive ]
  ExprPtr parseExpr() {
    DepthGuard g(*this);
    ExprPtr lhs = parseAdditive();
    if (at(Tok::DotDot)) {
      SourceLoc loc = lhs->loc;
      take();
      ExprPtr rhs = parseAdditive();
      return std::make_unique<RangeExpr>(loc, std::move(lhs), std::move(rhs));
    }
    return lhs;
  }

  /// A binary node `lhs op rhs`, located at lhs, with the operator's
  /// location kept for diagnostics.
  ExprPtr binary(const Token &op, ExprPtr lhs, ExprPtr rhs) {
    SourceLoc loc = lhs->loc;
    auto b = std::make_unique<BinaryExpr>(loc, op.text[0], std::move(lhs),
                                          std::move(rhs));
    b->opLoc = op.loc;
    return b;
  }

  // additive := mult { ('+' | '-') mult }
  ExprPtr parseAdditive() {
    ExprPtr lhs = parseMult();
    while (at(Tok::Plus) || at(Tok::Minus)) {
      Token op = take();
      bump(op.loc);
      lhs = binary(op, std::move(lhs), parseMult());
    }
    return lhs;
  }

  // mult := unary { ('*' | '/' | '@') unary }
  ExprPtr parseMult() {
    ExprPtr lhs = parseUnary();
    while (at(Tok::Star) || at(Tok::Slash) || at(Tok::At)) {
      Token op = take();
      bump(op.loc);
      lhs = binary(op, std::move(lhs), parseUnary());
    }
    return lhs;
  }

  // unary := '-' unary | power
  ExprPtr parseUnary() {
    DepthGuard g(*this);
    if (at(Tok::Minus)) {
      Token op = take();
      bump(op.loc);
      return std::make_unique<UnaryExpr>(op.loc, '-', parseUnary());
    }
    return parsePower();
  }

  // power := postfix [ '^' unary ]
  ExprPtr parsePower() {
    ExprPtr base = parsePostfix();
    if (at(Tok::Caret)) {
      Token op = take();
      bump(op.loc);
      return binary(op, std::move(base), parseUnary());
    }
    return base;
  }

  // args := [ arg { ',' arg } ] ')'
  // arg  := [ IDENT '=' ] expr
  std::vector<Arg> parseArgsUntilRParen() {
    std::vector<Arg> args;
    if (accept(Tok::RParen))
      return args;
    do {
      Arg a;
      a.loc = tok().loc;
      if (at(Tok::Ident) && tok(1).kind == Tok::Assign) {
        a.name = take().text;
        take();
      }
      a.value = parseExpr();
      args.push_back(std::move(a));
    } while (accept(Tok::Comma));
    expect(Tok::RParen, "',' or ')'");
    return args;
  }

  // postfix := primary { '(' args | '[' expr ']' | '.' IDENT | ''' }
  // A '(' or '[' on a new line starts a new statement, not a call.
  ExprPtr parsePostfix() {
    ExprPtr e = parsePrimary();
    while (true) {
      if (at(Tok::LParen) || at(Tok::LBrack) || at(Tok::Dot) || at(Tok::Quote))
        bump(tok().loc);
      if (at(Tok::LParen) && !tok().newlineBefore) {
        SourceLoc loc = e->loc;
        take();
        auto c = std::make_unique<CallExpr>(loc, std::move(e));
        c->args = parseArgsUntilRParen();
        e = std::move(c);
      } else if (at(Tok::LBrack) && !tok().newlineBefore) {
        SourceLoc loc = e->loc;
        take();
        ExprPtr idx = parseExpr();
        expect(Tok::RBrack, "']'");
        e = std::make_unique<IndexExpr>(loc, std::move(e), std::move(idx));
      } else if (at(Tok::Dot)) {
        SourceLoc loc = e->loc;
        take();
        Token name = expectIdent("a method name after '.'");
        e = std::make_unique<MemberExpr>(loc, std::move(e), name.text);
      } else if (at(Tok::Quote)) {
        SourceLoc loc = e->loc;
        take();
        e = std::make_unique<TransposeExpr>(loc, std::move(e));
      } else {
        return e;
      }
    }
  }

  // primary := INT | FLOAT | STRING | IDENT | '(' expr ')'
  ExprPtr parsePrimary() {
    const Token &t = tok();
    switch (t.kind) {
    case Tok::Int:
    case Tok::Float: {
      Token n = take();
      return std::make_unique<NumberExpr>(n.loc, n.number, n.kind == Tok::Int);
    }
    case Tok::String: {
      Token s = take();
      return std::make_unique<StringExpr>(s.loc, s.text);
    }
    case Tok::Ident: {
      Token n = take();
      return std::make_unique<NameExpr>(n.loc, n.text);
    }
    case Tok::LParen: {
      take();
      ExprPtr e = parseExpr();
      expect(Tok::RParen, "')'");
      return e;
    }
    default:
      fail("an expression");
    }
  }

  std::vector<Token> toks_;
  size_t pos_ = 0;
  int depth_ = 0;
  int exprNodes_ = 0;
  DiagnosticEngine &diag_;
  std::unique_ptr<Module> mod_;
};

} // namespace

std::unique_ptr<Module> parseFile(const SourceManager &sm, uint32_t file,
                                  DiagnosticEngine &diag) {
  std::vector<Token> toks = lex(sm, file, diag);
  assert(!toks.empty() && toks.back().kind == Tok::Eof);
  return Parser(std::move(toks), file, diag).parseFile();
}

} // namespace unroll::dsl
