#pragma once
#include "dsl/Frontend.h"

#include <sstream>
#include <string>

#ifndef UNROLL_SOURCE_DIR
#error "UNROLL_SOURCE_DIR must be defined by the build"
#endif

namespace unroll::test {

inline std::string sourcePath(const std::string &rel) {
  return std::string(UNROLL_SOURCE_DIR) + "/" + rel;
}

inline std::string readFile(const std::string &path) {
  std::string err;
  dsl::SourceManager sm;
  uint32_t id = sm.addFile(path, err);
  return id ? sm.text(id) : "";
}

/// Runs the front end on `text` (named `name`, resolving imports against
/// the stdlib) and returns its diagnostics; `ok` tells whether it passed.
inline std::string check(const std::string &text, bool &ok,
                         const std::string &name = "test.unroll") {
  std::ostringstream err;
  dsl::FrontendOptions opts;
  opts.libraryPath = {sourcePath("stdlib")};
  auto fe = dsl::runFrontend(name, &text, opts, err);
  ok = fe->ok();
  return err.str();
}

} // namespace unroll::test
