#pragma once
#include "dsl/Diagnostics.h"
#include "dsl/Source.h"

#include <string>
#include <vector>

namespace unroll::dsl {

enum class Tok {
  Eof,
  Ident,  // identifiers and (contextual) keywords alike
  Int,    // 42
  Float,  // 0.5, 1e-5
  String, // "path"
  LParen, // (
  RParen, // )
  LBrack, // [
  RBrack, // ]
  LBrace, // {
  RBrace, // }
  Comma,  // ,
  Colon,  // :
  Semi,   // ;
  Assign, // =
  PlusEq, // +=
  Plus,   // +
  Minus,  // -
  Star,   // *
  Slash,  // /
  Caret,  // ^
  At,     // @
  Quote,  // '  (postfix transpose)
  Dot,    // .
  DotDot, // ..
  Tilde,  // ~
  Pipe,   // |
};

/// Human-readable spelling of a token kind, for "expected X" messages.
const char *tokName(Tok k);

struct Token {
  Tok kind = Tok::Eof;
  std::string text;
  SourceLoc loc;
  /// True when a newline separates this token from the previous one; the
  /// parser uses it to end postfix chains and to resynchronise after errors.
  bool newlineBefore = false;
  double number = 0;
  long long integer = 0;
};

/// The end of the number literal that starts with a digit at `pos` of
/// `s`: digits [ '.' digits ] [ ('e'|'E') ['+'|'-'] digits ] ("0..10" is a
/// range, not "0." then ".10"). `isFloat` says whether it has a '.' or an
/// exponent.
size_t scanNumber(const std::string &s, size_t pos, bool &isFloat);

/// The value of a number literal as scanNumber delimits it (a leading
/// sign allowed): `value`, and for an integer also `integer`. False with
/// `why` when it is out of range.
bool convertNumber(const std::string &text, bool isFloat, double &value,
                   long long &integer, std::string &why);

/// Splits a buffer into tokens. Invalid characters and malformed literals are
/// reported and skipped, so the parser always gets a token stream ending in
/// Eof.
std::vector<Token> lex(const SourceManager &sm, uint32_t file,
                       DiagnosticEngine &diag);

} // namespace unroll::dsl
