#pragma once
#include "dsl/Loader.h"
#include "dsl/Sema.h"

#include <memory>
#include <ostream>
#include <string>
#include <vector>

namespace unroll::dsl {

/// Everything the front end produced for one main file. Owns the sources,
/// the ASTs and the semantic information; later stages read from it.
struct Frontend {
  SourceManager sources;
  std::unique_ptr<DiagnosticEngine> diag;
  std::unique_ptr<Loader> loader;
  std::unique_ptr<Sema> sema;
  LoadedFile *main = nullptr;
  /// A --set setting was rejected (the message is printed already).
  bool badSettings = false;
  bool ok() const { return main && !badSettings && !diag->hasErrors(); }
};

struct FrontendOptions {
  /// Directories searched for imported libraries after the importing file's
  /// own directory.
  std::vector<std::string> libraryPath;
  /// Stop after parsing (for --emit=ast).
  bool parseOnly = false;
  /// `key=value` edits of the main file (see Settings.h), applied before
  /// checking.
  std::vector<std::string> settings;
};

/// Parses and checks `path` (or `text`, if non-null, under that name),
/// printing diagnostics to `err`. Never throws on user input.
std::unique_ptr<Frontend> runFrontend(const std::string &path,
                                      const std::string *text,
                                      const FrontendOptions &opts,
                                      std::ostream &err);

/// The library path used when none is given: $UNROLL_STDLIB if set, then
/// the installed stdlib, then the source tree's.
std::vector<std::string> defaultLibraryPath();

} // namespace unroll::dsl
