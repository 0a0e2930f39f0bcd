#pragma once
// Writing files so that a crash never leaves half of one: what the
// compiler (programs, exported packages, kernel libraries) and the runtime
// (run directories, checkpoints) both do.

#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace unroll::abi {

/// A file that could not be written; the message names it and says why.
class WriteError : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// Writes `pieces` one after another to `path` atomically: to a temporary
/// file in the same directory (named after this process, so two
/// processes never share one), flushed to disk, renamed over `path`, and
/// the directory synced so that the rename survives a power cut. A crash
/// at any point leaves the old file or the new one; a failure leaves
/// `path` as it was and no temporary behind. Throws WriteError.
void writeFileAtomic(
    const std::string &path,
    const std::vector<std::pair<const char *, size_t>> &pieces);

/// The same for one string.
void writeFileAtomic(const std::string &path, const std::string &text);

/// The bytes of the file at `path`; none if it cannot be opened.
std::optional<std::string> readFile(const std::string &path);

} // namespace unroll::abi
