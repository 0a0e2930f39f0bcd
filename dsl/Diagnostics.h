#pragma once
#include "dsl/Source.h"

#include <ostream>
#include <set>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

namespace unroll::dsl {

/// A mistake in the user's input. Carries a location; the driver prints it as
/// a diagnostic and exits with status 1.
class UserError : public std::runtime_error {
public:
  UserError(SourceLoc loc, const std::string &msg)
      : std::runtime_error(msg), loc(loc) {}
  SourceLoc loc;
};

/// A bug in Unroll itself (a broken invariant that input cannot explain).
/// The driver reports it as an internal error, never as the user's fault.
class InternalError : public std::logic_error {
public:
  using std::logic_error::logic_error;
};

enum class Severity { Error, Warning, Note };

/// Collects and prints diagnostics in the `file:line:col: error: msg` form,
/// followed by the source line and a caret under the column.
class DiagnosticEngine {
public:
  DiagnosticEngine(const SourceManager &sm, std::ostream &os)
      : sm_(sm), os_(os) {}

  /// Reports an error. Returns false when the same message was already
  /// reported at the same place (function bodies are checked once per call).
  bool error(SourceLoc loc, const std::string &msg);
  void warning(SourceLoc loc, const std::string &msg);
  void note(SourceLoc loc, const std::string &msg);

  unsigned errorCount() const { return errors_; }
  bool hasErrors() const { return errors_ != 0; }
  /// Once this many errors are out, further ones are dropped (with one
  /// message saying so) to keep cascades readable.
  static constexpr unsigned kMaxErrors = 50;

private:
  bool emit(Severity sev, SourceLoc loc, const std::string &msg);
  std::set<std::tuple<uint32_t, uint32_t, uint32_t, std::string>> seen_;
  const SourceManager &sm_;
  std::ostream &os_;
  unsigned errors_ = 0;
  bool suppressed_ = false;
};

/// The candidate closest to `name` by edit distance, or "" if none is close
/// enough to be a plausible typo.
std::string closestMatch(const std::string &name,
                         const std::vector<std::string> &candidates);

} // namespace unroll::dsl
