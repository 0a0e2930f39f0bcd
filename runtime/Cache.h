#pragma once
// Where solved targets and compiled kernel libraries are cached. Inline:
// the driver (which does not link the runtime) caches kernel libraries in
// the same place.

#include <cstdlib>
#include <string>

namespace unroll::runtime {

/// `given` if not empty, else $UNROLL_CACHE_DIR, else $XDG_CACHE_HOME/unroll,
/// else ~/.cache/unroll.
inline std::string cacheDirectory(const std::string &given) {
  if (!given.empty())
    return given;
  if (const char *e = std::getenv("UNROLL_CACHE_DIR"); e && *e)
    return e;
  if (const char *e = std::getenv("XDG_CACHE_HOME"); e && *e)
    return std::string(e) + "/unroll";
  if (const char *e = std::getenv("HOME"); e && *e)
    return std::string(e) + "/.cache/unroll";
  return ".unroll-cache";
}

} // namespace unroll::runtime
