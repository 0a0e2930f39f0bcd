#pragma once
// Where solved targets and compiled kernel libraries are cached: one place
// for the runtime, which caches targets there, and the driver, which
// caches kernel libraries there (it does not link the runtime).

#include <cstdlib>
#include <string>

namespace unroll::abi {

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

} // namespace unroll::abi
