// libFuzzer target: the whole front end (lexer, parser, loader, checker) on
// arbitrary bytes. Any crash, sanitizer report, leak or timeout is a bug.
#include "dsl/Frontend.h"

#include <cstddef>
#include <cstdint>
#include <sstream>

#ifndef UNROLL_STDLIB_DIR
#error "UNROLL_STDLIB_DIR must be defined"
#endif

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string text(reinterpret_cast<const char *>(data), size);
  unroll::dsl::FrontendOptions opts;
  opts.libraryPath = {UNROLL_STDLIB_DIR};
  std::ostringstream sink;
  auto fe = unroll::dsl::runFrontend("fuzz.unroll", &text, opts, sink);
  (void)fe->ok();
  return 0;
}
