#include "dsl/Diagnostics.h"

#include <algorithm>

namespace unroll::dsl {

bool DiagnosticEngine::error(SourceLoc loc, const std::string &msg) {
  return emit(Severity::Error, loc, msg);
}
void DiagnosticEngine::warning(SourceLoc loc, const std::string &msg) {
  emit(Severity::Warning, loc, msg);
}
void DiagnosticEngine::note(SourceLoc loc, const std::string &msg) {
  emit(Severity::Note, loc, msg);
}

bool DiagnosticEngine::emit(Severity sev, SourceLoc loc,
                            const std::string &msg) {
  if (sev == Severity::Error &&
      !seen_.insert({loc.file, loc.line, loc.col, msg}).second)
    return false;
  if (sev == Severity::Error) {
    ++errors_;
    if (errors_ > kMaxErrors) {
      if (!suppressed_)
        os_ << "error: too many errors; stopping after " << kMaxErrors << "\n";
      suppressed_ = true;
      return false;
    }
  } else if (suppressed_) {
    return false;
  }
  const char *kind = sev == Severity::Error     ? "error"
                     : sev == Severity::Warning ? "warning"
                                                : "note";
  if (!loc.valid()) {
    os_ << kind << ": " << msg << "\n";
    return true;
  }
  os_ << sm_.path(loc.file) << ":" << loc.line << ":" << loc.col << ": " << kind
      << ": " << msg << "\n";
  std::string line = sm_.lineText(loc.file, loc.line);
  // Tabs are kept in the caret line so the caret stays under the column.
  std::string caret;
  for (uint32_t i = 1; i < loc.col && i - 1 < line.size(); ++i)
    caret += line[i - 1] == '\t' ? '\t' : ' ';
  os_ << line << "\n" << caret << "^\n";
  return true;
}

/// Edits (insert, delete, substitute, or swap two neighbours: "trian" is
/// one from "train") that turn `a` into `b`.
static size_t editDistance(const std::string &a, const std::string &b) {
  std::vector<size_t> before(b.size() + 1), prev(b.size() + 1),
      cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j)
    prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        cur[j] = std::min(cur[j], before[j - 2] + 1);
    }
    before = prev;
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string closestMatch(const std::string &name,
                         const std::vector<std::string> &candidates) {
  std::string best;
  size_t bestDist = std::max<size_t>(1, name.size() / 3) + 1;
  for (const std::string &c : candidates) {
    if (c == name || c.empty())
      continue;
    size_t d = editDistance(name, c);
    // Ties go to the alphabetically first name so output is deterministic.
    if (d < bestDist || (d == bestDist && !best.empty() && c < best)) {
      best = c;
      bestDist = d;
    }
  }
  return best;
}

} // namespace unroll::dsl
