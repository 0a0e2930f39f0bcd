#include "dsl/Source.h"

#include <cassert>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace unroll::dsl {

uint32_t SourceManager::addBuffer(std::string path, std::string text) {
  Buffer b;
  b.path = std::move(path);
  b.text = std::move(text);
  b.lineStarts.push_back(0);
  for (size_t i = 0; i < b.text.size(); ++i)
    if (b.text[i] == '\n')
      b.lineStarts.push_back(i + 1);
  buffers_.push_back(std::move(b));
  return static_cast<uint32_t>(buffers_.size());
}

uint32_t SourceManager::addFile(const std::string &path, std::string &err) {
  // A directory opens as a stream that reads nothing: it would check as an
  // empty spec.
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    err = "'" + path + "' is a directory, not a spec file";
    return 0;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    err = "cannot open '" + path + "'";
    return 0;
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) {
    err = "cannot read '" + path + "'";
    return 0;
  }
  return addBuffer(path, ss.str());
}

const std::string &SourceManager::path(uint32_t file) const {
  assert(file >= 1 && file <= buffers_.size() && "bad file id");
  return buffers_[file - 1].path;
}

const std::string &SourceManager::text(uint32_t file) const {
  assert(file >= 1 && file <= buffers_.size() && "bad file id");
  return buffers_[file - 1].text;
}

std::string SourceManager::lineText(uint32_t file, uint32_t line) const {
  const Buffer &b = buffers_.at(file - 1);
  if (line == 0 || line > b.lineStarts.size())
    return "";
  size_t start = b.lineStarts[line - 1];
  size_t end = b.text.find('\n', start);
  if (end == std::string::npos)
    end = b.text.size();
  std::string s = b.text.substr(start, end - start);
  if (!s.empty() && s.back() == '\r')
    s.pop_back();
  return s;
}

} // namespace unroll::dsl
