#pragma once
#include "dsl/AST.h"
#include "dsl/Diagnostics.h"
#include "dsl/Lexer.h"

namespace unroll::dsl {

/// Parses one file. Syntax errors are reported to `diag`; the parser then
/// skips to the next statement or declaration and goes on, so one run reports
/// every independent error. The returned module holds everything that parsed.
std::unique_ptr<Module> parseFile(const SourceManager &sm, uint32_t file,
                                  DiagnosticEngine &diag);

} // namespace unroll::dsl
