#include "dsl/Lexer.h"

#include <cctype>
#include <cerrno>
#include <cstdlib>

namespace unroll::dsl {

const char *tokName(Tok k) {
  switch (k) {
  case Tok::Eof:
    return "end of file";
  case Tok::Ident:
    return "identifier";
  case Tok::Int:
    return "integer";
  case Tok::Float:
    return "number";
  case Tok::String:
    return "string";
  case Tok::LParen:
    return "'('";
  case Tok::RParen:
    return "')'";
  case Tok::LBrack:
    return "'['";
  case Tok::RBrack:
    return "']'";
  case Tok::LBrace:
    return "'{'";
  case Tok::RBrace:
    return "'}'";
  case Tok::Comma:
    return "','";
  case Tok::Colon:
    return "':'";
  case Tok::Semi:
    return "';'";
  case Tok::Assign:
    return "'='";
  case Tok::PlusEq:
    return "'+='";
  case Tok::Plus:
    return "'+'";
  case Tok::Minus:
    return "'-'";
  case Tok::Star:
    return "'*'";
  case Tok::Slash:
    return "'/'";
  case Tok::Caret:
    return "'^'";
  case Tok::At:
    return "'@'";
  case Tok::Quote:
    return "'''";
  case Tok::Dot:
    return "'.'";
  case Tok::DotDot:
    return "'..'";
  case Tok::Tilde:
    return "'~'";
  case Tok::Pipe:
    return "'|'";
  }
  return "token";
}

namespace {

class Lexer {
public:
  Lexer(const SourceManager &sm, uint32_t file, DiagnosticEngine &diag)
      : src_(sm.text(file)), file_(file), diag_(diag) {}

  std::vector<Token> run() {
    std::vector<Token> out;
    bool newline = true;
    while (true) {
      newline |= skipSpaceAndComments();
      Token t;
      t.loc = here();
      t.newlineBefore = newline;
      newline = false;
      if (pos_ >= src_.size()) {
        t.kind = Tok::Eof;
        // "Found end of file" points just past the last token, which stays
        // put when comments or blank lines are appended to the file.
        if (!out.empty()) {
          t.loc = lastEnd_;
          t.newlineBefore = false;
        }
        out.push_back(t);
        return out;
      }
      if (lexOne(t)) {
        lastEnd_ = here();
        out.push_back(std::move(t));
      }
    }
  }

private:
  SourceLoc here() const { return SourceLoc{file_, line_, col_}; }
  char peek(size_t k = 0) const {
    return pos_ + k < src_.size() ? src_[pos_ + k] : '\0';
  }
  void advance() {
    if (src_[pos_] == '\n') {
      ++line_;
      col_ = 1;
    } else {
      ++col_;
    }
    ++pos_;
  }

  // Returns true if a newline was crossed.
  bool skipSpaceAndComments() {
    bool nl = false;
    while (pos_ < src_.size()) {
      char c = peek();
      if (c == '\n') {
        nl = true;
        advance();
      } else if (c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v') {
        advance();
      } else if (c == '/' && peek(1) == '/') {
        while (pos_ < src_.size() && peek() != '\n')
          advance();
      } else if (c == '/' && peek(1) == '*') {
        SourceLoc start = here();
        advance();
        advance();
        while (pos_ < src_.size() && !(peek() == '*' && peek(1) == '/')) {
          nl |= peek() == '\n';
          advance();
        }
        if (pos_ >= src_.size()) {
          diag_.error(start, "unterminated block comment");
          return nl;
        }
        advance();
        advance();
      } else {
        break;
      }
    }
    return nl;
  }

  bool lexOne(Token &t) {
    char c = peek();
    size_t start = pos_;
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      while (std::isalnum(static_cast<unsigned char>(peek())) || peek() == '_')
        advance();
      t.kind = Tok::Ident;
      t.text = src_.substr(start, pos_ - start);
      return true;
    }
    if (std::isdigit(static_cast<unsigned char>(c)))
      return lexNumber(t);
    if (c == '"') {
      advance();
      while (pos_ < src_.size() && peek() != '"' && peek() != '\n')
        advance();
      if (peek() != '"') {
        diag_.error(t.loc, "unterminated string literal");
        return false;
      }
      t.kind = Tok::String;
      t.text = src_.substr(start + 1, pos_ - start - 1);
      advance();
      return true;
    }
    advance();
    t.text = std::string(1, c);
    switch (c) {
    case '(':
      t.kind = Tok::LParen;
      return true;
    case ')':
      t.kind = Tok::RParen;
      return true;
    case '[':
      t.kind = Tok::LBrack;
      return true;
    case ']':
      t.kind = Tok::RBrack;
      return true;
    case '{':
      t.kind = Tok::LBrace;
      return true;
    case '}':
      t.kind = Tok::RBrace;
      return true;
    case ',':
      t.kind = Tok::Comma;
      return true;
    case ':':
      t.kind = Tok::Colon;
      return true;
    case ';':
      t.kind = Tok::Semi;
      return true;
    case '=':
      t.kind = Tok::Assign;
      return true;
    case '-':
      t.kind = Tok::Minus;
      return true;
    case '*':
      t.kind = Tok::Star;
      return true;
    case '/':
      t.kind = Tok::Slash;
      return true;
    case '^':
      t.kind = Tok::Caret;
      return true;
    case '@':
      t.kind = Tok::At;
      return true;
    case '\'':
      t.kind = Tok::Quote;
      return true;
    case '~':
      t.kind = Tok::Tilde;
      return true;
    case '|':
      t.kind = Tok::Pipe;
      return true;
    case '+':
      if (peek() == '=') {
        advance();
        t.kind = Tok::PlusEq;
        t.text = "+=";
      } else {
        t.kind = Tok::Plus;
      }
      return true;
    case '.':
      if (peek() == '.') {
        advance();
        t.kind = Tok::DotDot;
        t.text = "..";
      } else {
        t.kind = Tok::Dot;
      }
      return true;
    default:
      break;
    }
    std::string shown;
    if (std::isprint(static_cast<unsigned char>(c))) {
      shown = std::string("'") + c + "'";
    } else {
      static const char *hex = "0123456789abcdef";
      unsigned char u = static_cast<unsigned char>(c);
      shown = std::string("byte 0x") + hex[u >> 4] + hex[u & 15];
    }
    diag_.error(t.loc, "unexpected character " + shown);
    return false;
  }

  // number := digits [ '.' digits ] [ ('e'|'E') ['+'|'-'] digits ]
  bool lexNumber(Token &t) {
    bool isFloat = false;
    const size_t end = scanNumber(src_, pos_, isFloat);
    t.text = src_.substr(pos_, end - pos_);
    while (pos_ < end) // a number holds no newline: columns advance
      advance();
    if (std::isalpha(static_cast<unsigned char>(peek())) || peek() == '_') {
      diag_.error(here(), "invalid suffix on number '" + t.text + "'");
      while (std::isalnum(static_cast<unsigned char>(peek())) || peek() == '_')
        advance();
      return false;
    }
    std::string why;
    if (!convertNumber(t.text, isFloat, t.number, t.integer, why)) {
      diag_.error(t.loc, why);
      return false;
    }
    t.kind = isFloat ? Tok::Float : Tok::Int;
    return true;
  }

  const std::string &src_;
  uint32_t file_;
  DiagnosticEngine &diag_;
  size_t pos_ = 0;
  uint32_t line_ = 1, col_ = 1;
  SourceLoc lastEnd_;
};

} // namespace

size_t scanNumber(const std::string &s, size_t pos, bool &isFloat) {
  auto at = [&](size_t k) { return pos + k < s.size() ? s[pos + k] : '\0'; };
  auto digit = [](char c) {
    return std::isdigit(static_cast<unsigned char>(c));
  };
  isFloat = false;
  while (digit(at(0)))
    ++pos;
  if (at(0) == '.' && at(1) != '.') {
    isFloat = true;
    ++pos;
    while (digit(at(0)))
      ++pos;
  }
  if ((at(0) == 'e' || at(0) == 'E') &&
      (digit(at(1)) || ((at(1) == '+' || at(1) == '-') && digit(at(2))))) {
    isFloat = true;
    pos += at(1) == '+' || at(1) == '-' ? 2 : 1;
    while (digit(at(0)))
      ++pos;
  }
  return pos;
}

bool convertNumber(const std::string &text, bool isFloat, double &value,
                   long long &integer, std::string &why) {
  errno = 0;
  if (isFloat) {
    value = std::strtod(text.c_str(), nullptr);
    if (errno == ERANGE) {
      why = "number '" + text + "' is out of range";
      return false;
    }
    return true;
  }
  integer = std::strtoll(text.c_str(), nullptr, 10);
  if (errno == ERANGE) {
    why = "integer '" + text + "' is too large";
    return false;
  }
  value = static_cast<double>(integer);
  return true;
}

std::vector<Token> lex(const SourceManager &sm, uint32_t file,
                       DiagnosticEngine &diag) {
  return Lexer(sm, file, diag).run();
}

} // namespace unroll::dsl
