#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace unroll::dsl {

/// A position in a source buffer. Line and column are 1-based; file 0 means
/// "no location" (used only for synthesized nodes).
struct SourceLoc {
  uint32_t file = 0;
  uint32_t line = 0;
  uint32_t col = 0;
  bool valid() const { return file != 0; }
};

/// Owns the text of every file the front end reads, so that locations stay
/// printable for the whole compilation.
class SourceManager {
public:
  /// Adds a buffer and returns its file id (>= 1).
  uint32_t addBuffer(std::string path, std::string text);
  /// Reads a file from disk; returns 0 and sets `err` when it cannot.
  uint32_t addFile(const std::string &path, std::string &err);

  const std::string &path(uint32_t file) const;
  const std::string &text(uint32_t file) const;
  /// Number of buffers; ids run from 1 to size().
  uint32_t size() const { return static_cast<uint32_t>(buffers_.size()); }
  /// The text of one line, without its newline.
  std::string lineText(uint32_t file, uint32_t line) const;

private:
  struct Buffer {
    std::string path, text;
    std::vector<size_t> lineStarts;
  };
  std::vector<Buffer> buffers_;
};

} // namespace unroll::dsl
