#include "dsl/Lexer.h"

#include <catch2/catch.hpp>
#include <sstream>

using namespace unroll::dsl;

namespace {
std::vector<Token> lexText(const std::string &text, std::string &diags) {
  static SourceManager sm; // tokens keep no pointers into it
  uint32_t id = sm.addBuffer("lex.unroll", text);
  std::ostringstream os;
  DiagnosticEngine d(sm, os);
  auto toks = lex(sm, id, d);
  diags = os.str();
  return toks;
}
} // namespace

TEST_CASE("lexer: tokens carry kinds, text and locations", "[lexer]") {
  std::string diags;
  auto t = lexText("param W : mat[d, p] = D' / L\n  y += 1e-5", diags);
  REQUIRE(diags.empty());
  REQUIRE(t.size() == 18);
  CHECK(t[0].kind == Tok::Ident);
  CHECK(t[0].text == "param");
  CHECK(t[0].loc.line == 1);
  CHECK(t[0].loc.col == 1);
  CHECK(t[11].kind == Tok::Quote);
  CHECK(t[14].text == "y");
  CHECK(t[14].loc.line == 2);
  CHECK(t[14].loc.col == 3);
  CHECK(t[14].newlineBefore);
  CHECK(!t[15].newlineBefore);
  CHECK(t[15].kind == Tok::PlusEq);
  CHECK(t[16].kind == Tok::Float);
  CHECK(t[16].number == Approx(1e-5));
  CHECK(t[17].kind == Tok::Eof);
}

TEST_CASE("lexer: '0..10' is a range, not a float", "[lexer]") {
  std::string diags;
  auto t = lexText("0..10 2.5", diags);
  REQUIRE(diags.empty());
  REQUIRE(t.size() == 5);
  CHECK(t[0].kind == Tok::Int);
  CHECK(t[1].kind == Tok::DotDot);
  CHECK(t[2].kind == Tok::Int);
  CHECK(t[2].integer == 10);
  CHECK(t[3].kind == Tok::Float);
}

TEST_CASE("lexer: comments are skipped, newlines inside them count",
          "[lexer]") {
  std::string diags;
  auto t = lexText("a // x\n/* y\n z */ b", diags);
  REQUIRE(t.size() == 3);
  CHECK(t[1].text == "b");
  CHECK(t[1].loc.line == 3);
  CHECK(t[1].newlineBefore);
}

TEST_CASE("lexer: bad input is reported with a location and skipped",
          "[lexer]") {
  std::string diags;
  auto t = lexText("a $ b\n99999999999999999999 \"open", diags);
  CHECK(diags.find("lex.unroll:1:3: error: unexpected character '$'") !=
        std::string::npos);
  CHECK(diags.find("lex.unroll:2:1: error: integer '99999999999999999999' is "
                   "too large") != std::string::npos);
  CHECK(diags.find("lex.unroll:2:22: error: unterminated string literal") !=
        std::string::npos);
  CHECK(t.back().kind == Tok::Eof);
}
