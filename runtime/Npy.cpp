#include "runtime/Npy.h"

#include "runtime/Safetensors.h"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace unroll::runtime {

namespace {

/// The value of `key` in the header's Python dict literal, as written
/// (a quoted string, True/False, or a tuple).
std::string dictValue(const std::string &header, const std::string &key,
                      const std::string &path) {
  auto bad = [&](const std::string &why) {
    return FileError("'" + path + "' is not a valid .npy file (" + why + ")");
  };
  size_t at = header.find("'" + key + "'");
  if (at == std::string::npos)
    throw bad("its header has no '" + key + "'");
  at = header.find(':', at);
  if (at == std::string::npos)
    throw bad("malformed header");
  ++at;
  while (at < header.size() && header[at] == ' ')
    ++at;
  if (at >= header.size())
    throw bad("malformed header");
  char open = header[at];
  if (open == '\'' || open == '"') {
    size_t end = header.find(open, at + 1);
    if (end == std::string::npos)
      throw bad("malformed header");
    return header.substr(at + 1, end - at - 1);
  }
  if (open == '(') {
    size_t end = header.find(')', at);
    if (end == std::string::npos)
      throw bad("malformed header");
    return header.substr(at, end - at + 1);
  }
  size_t end = header.find_first_of(",}", at);
  return header.substr(at, end - at);
}

/// "(3, 4)", "(5,)" or "()" as dimensions.
std::vector<int64_t> parseShape(const std::string &tuple,
                                const std::string &path) {
  std::vector<int64_t> dims;
  std::string inner = tuple.substr(1, tuple.size() - 2);
  size_t at = 0;
  while (at < inner.size()) {
    size_t end = inner.find(',', at);
    std::string part = inner.substr(
        at, end == std::string::npos ? std::string::npos : end - at);
    part.erase(0, part.find_first_not_of(' '));
    part.erase(part.find_last_not_of(' ') + 1);
    if (!part.empty()) {
      char *stop = nullptr;
      long long v = std::strtoll(part.c_str(), &stop, 10);
      if (*stop != '\0' || v < 0)
        throw FileError("'" + path + "' is not a valid .npy file (bad shape " +
                        tuple + ")");
      dims.push_back(v);
    }
    if (end == std::string::npos)
      break;
    at = end + 1;
  }
  return dims;
}

/// A read-only mapping of a whole file, unmapped by its deleter.
struct Mapping {
  void *base = nullptr;
  size_t size = 0;
};

Mapping mapFile(const std::string &path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0)
    throw FileError("cannot open '" + path + "': " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw FileError("cannot read '" + path + "': not a regular file");
  }
  Mapping m;
  m.size = static_cast<size_t>(st.st_size);
  if (m.size > 0) {
    m.base = ::mmap(nullptr, m.size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m.base == MAP_FAILED) {
      int err = errno;
      ::close(fd);
      throw FileError("cannot map '" + path + "': " + std::strerror(err));
    }
  }
  ::close(fd);
  return m;
}

/// The index of flat position `flat` in `sizes`, as "(i, j, ...)".
std::string indexText(int64_t flat, at::IntArrayRef sizes) {
  std::vector<int64_t> idx(sizes.size());
  for (size_t k = sizes.size(); k-- > 0;) {
    idx[k] = flat % sizes[k];
    flat /= sizes[k];
  }
  std::string out = "(";
  for (size_t k = 0; k < idx.size(); ++k)
    out += (k ? ", " : "") + std::to_string(idx[k]);
  return out + (idx.size() == 1 ? ",)" : ")");
}

} // namespace

torch::Tensor readNpy(const std::string &path) {
  Mapping m = mapFile(path);
  // Unmaps unless a tensor has taken the mapping over.
  auto release = [&m] {
    if (m.base)
      ::munmap(m.base, m.size);
    m.base = nullptr;
  };
  try {
    auto bad = [&](const std::string &why) {
      return FileError("'" + path + "' is not a valid .npy file (" + why + ")");
    };
    const auto *bytes = static_cast<const unsigned char *>(m.base);
    if (m.size < 10 || std::memcmp(bytes, "\x93NUMPY", 6) != 0)
      throw bad("no .npy magic string");
    const int major = bytes[6];
    size_t headerLen = 0, start = 0;
    if (major == 1) {
      headerLen = bytes[8] | (static_cast<size_t>(bytes[9]) << 8);
      start = 10;
    } else if (major == 2 || major == 3) {
      if (m.size < 12)
        throw bad("truncated header");
      headerLen = 0;
      for (int k = 3; k >= 0; --k)
        headerLen = (headerLen << 8) | bytes[8 + k];
      start = 12;
    } else {
      throw bad("format version " + std::to_string(major) +
                " is not 1, 2 or 3");
    }
    if (m.size < start + headerLen)
      throw bad("truncated header");
    const std::string header(reinterpret_cast<const char *>(bytes) + start,
                             headerLen);
    const std::string descr = dictValue(header, "descr", path);
    const std::string order = dictValue(header, "fortran_order", path);
    const std::vector<int64_t> shape =
        parseShape(dictValue(header, "shape", path), path);
    if (order != "False")
      throw FileError("'" + path +
                      "' is in Fortran order; save it in C order "
                      "(numpy.ascontiguousarray) first");
    size_t itemSize;
    at::ScalarType type;
    if (descr == "<f4" || descr == "=f4") {
      itemSize = 4;
      type = torch::kFloat32;
    } else if (descr == "<f8" || descr == "=f8") {
      itemSize = 8;
      type = torch::kFloat64;
    } else {
      throw FileError("'" + path + "' holds dtype '" + descr +
                      "'; the npy source reads little-endian float32 "
                      "('<f4') or float64 ('<f8')");
    }
    int64_t count = 1;
    for (int64_t d : shape)
      count *= d;
    const size_t dataStart = start + headerLen;
    const size_t need = static_cast<size_t>(count) * itemSize;
    if (m.size - dataStart < need)
      throw bad("truncated: its shape needs " + std::to_string(need) +
                " bytes of data, the file holds " +
                std::to_string(m.size - dataStart));
    void *data = const_cast<unsigned char *>(bytes) + dataStart;
    torch::Tensor t;
    if (type == torch::kFloat32 && dataStart % 4 == 0 && count > 0) {
      // The mapping is the storage: no copy of a large file.
      Mapping keep = m;
      m.base = nullptr; // now the tensor's
      t = torch::from_blob(
          data, shape, [keep](void *) { ::munmap(keep.base, keep.size); },
          torch::TensorOptions().dtype(torch::kFloat32));
    } else {
      t = torch::from_blob(data, shape, torch::TensorOptions().dtype(type))
              .to(torch::kFloat32, /*non_blocking=*/false, /*copy=*/true);
    }
    torch::Tensor finite = torch::isfinite(t);
    if (!finite.all().item<bool>()) {
      const int64_t flat =
          torch::logical_not(finite).flatten().nonzero()[0][0].item<int64_t>();
      const double v = t.flatten()[flat].item<double>();
      throw FileError("'" + path + "' holds " +
                      (std::isnan(v) ? std::string("NaN")
                                     : std::string(v > 0 ? "+Inf" : "-Inf")) +
                      " at index " + indexText(flat, t.sizes()));
    }
    release();
    return t;
  } catch (...) {
    release();
    throw;
  }
}

} // namespace unroll::runtime
