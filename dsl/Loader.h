#pragma once
#include "dsl/AST.h"
#include "dsl/Diagnostics.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace unroll::dsl {

/// One parsed file and the files its `import` lines resolved to.
struct LoadedFile {
  uint32_t id = 0;
  std::string libName; // "prox" for stdlib/prox.unroll; "" for the main file
  std::unique_ptr<Module> ast;
  std::vector<LoadedFile *> imports; // in import order, resolved ones only
  /// Parsing hit errors, so declarations may be missing parts; checks that a
  /// part is present are skipped to avoid cascades.
  bool hadSyntaxErrors = false;
};

/// Parses a file and, transitively, every library it imports. Libraries are
/// looked up next to the importing file, then in each directory of the
/// search path (the stdlib by default). Each file is parsed once.
class Loader {
public:
  Loader(SourceManager &sm, DiagnosticEngine &diag,
         std::vector<std::string> searchPath)
      : sm_(sm), diag_(diag), searchPath_(std::move(searchPath)) {}

  /// Loads the main file from disk; null if it cannot be read (reported).
  LoadedFile *loadMain(const std::string &path);
  /// Loads the main file from a buffer (tests, fuzzing).
  LoadedFile *loadMainText(const std::string &path, const std::string &text);

  /// Every loaded file, dependencies before dependants.
  const std::vector<LoadedFile *> &ordered() const { return ordered_; }

  /// Names of the libraries available on the search path.
  std::vector<std::string> availableLibraries() const;
  /// Top-level names a library defines, read without reporting its errors
  /// (used to suggest a missing import).
  std::vector<std::string> namesDefinedBy(const std::string &lib);

private:
  LoadedFile *finish(uint32_t id, const std::string &libName);
  void resolveImports(LoadedFile *f);
  std::string findLibrary(const std::string &name, uint32_t from) const;

  SourceManager &sm_;
  DiagnosticEngine &diag_;
  std::vector<std::string> searchPath_;
  std::vector<std::unique_ptr<LoadedFile>> files_;
  std::map<std::string, LoadedFile *> byPath_;
  std::vector<LoadedFile *> ordered_;
  std::vector<LoadedFile *> stack_; // files being loaded (cycle detection)
  std::map<std::string, std::vector<std::string>> libNames_;
};

} // namespace unroll::dsl
