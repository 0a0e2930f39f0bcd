#include "runtime/Safetensors.h"

#include "abi/Files.h"

#include <nlohmann/json.hpp>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

namespace unroll::runtime {

using nlohmann::json;

namespace {

struct DType {
  const char *name;
  torch::ScalarType type;
  size_t size;
};
const DType kDTypes[] = {{"F32", torch::kFloat32, 4},
                         {"F64", torch::kFloat64, 8},
                         {"I64", torch::kInt64, 8},
                         {"I32", torch::kInt32, 4},
                         {"U8", torch::kUInt8, 1}};

const DType *byName(const std::string &n) {
  for (const DType &d : kDTypes)
    if (n == d.name)
      return &d;
  return nullptr;
}

const DType *byType(torch::ScalarType t) {
  for (const DType &d : kDTypes)
    if (d.type == t)
      return &d;
  return nullptr;
}

std::string sysError(const std::string &what, const std::string &path) {
  return what + " '" + path + "': " + std::strerror(errno);
}

/// abi's atomic write, its failures as FileError.
void atomicWrite(const std::string &path,
                 const std::vector<std::pair<const char *, size_t>> &pieces) {
  try {
    abi::writeFileAtomic(path, pieces);
  } catch (const abi::WriteError &e) {
    throw FileError(e.what());
  }
}

} // namespace

std::string checksumKey(const std::string &tensor) { return "crc32." + tensor; }

std::string checksumOf(const torch::Tensor &t0) {
  torch::Tensor t = t0.contiguous();
  uLong crc = crc32(0L, Z_NULL, 0);
  const auto *p = static_cast<const Bytef *>(t.data_ptr());
  size_t n = static_cast<size_t>(t.numel()) * t.element_size();
  // zlib takes the length as a uInt.
  while (n > 0) {
    const uInt chunk = static_cast<uInt>(std::min<size_t>(n, 1u << 30));
    crc = crc32(crc, p, chunk);
    p += chunk;
    n -= chunk;
  }
  char hex[9];
  std::snprintf(hex, sizeof hex, "%08lx", static_cast<unsigned long>(crc));
  return hex;
}

void writeFileAtomic(const std::string &path, const std::string &text) {
  atomicWrite(path, {{text.data(), text.size()}});
}

void writeSafetensors(const std::string &path, const TensorFile &f) {
  json header = json::object();
  std::vector<torch::Tensor> data;
  std::map<std::string, std::string> metadata = f.metadata;
  size_t offset = 0;
  for (auto &[name, t0] : f.tensors) {
    torch::Tensor t = t0.detach().to(torch::kCPU).contiguous();
    const DType *d = byType(t.scalar_type());
    if (!d) {
      t = t.to(torch::kFloat32);
      d = byType(torch::kFloat32);
    }
    size_t bytes = static_cast<size_t>(t.numel()) * d->size;
    header[name] = {{"dtype", d->name},
                    {"shape", t.sizes().vec()},
                    {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    metadata[checksumKey(name)] = checksumOf(t);
    data.push_back(t);
  }
  if (!metadata.empty())
    header["__metadata__"] = metadata;
  std::string h = header.dump();
  // The format pads the header with spaces to a multiple of 8 bytes.
  h.append((8 - h.size() % 8) % 8, ' ');
  uint64_t n = h.size();
  unsigned char len[8];
  for (int i = 0; i < 8; ++i)
    len[i] = static_cast<unsigned char>(n >> (8 * i));
  std::vector<std::pair<const char *, size_t>> pieces{
      {reinterpret_cast<const char *>(len), 8}, {h.data(), h.size()}};
  for (auto &t : data)
    pieces.push_back({static_cast<const char *>(t.data_ptr()),
                      static_cast<size_t>(t.numel()) * t.element_size()});
  atomicWrite(path, pieces);
}

TensorFile readSafetensors(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw FileError(sysError("cannot open", path));
  std::stringstream ss;
  ss << in.rdbuf();
  std::string bytes = ss.str();
  auto corrupt = [&](const std::string &why) {
    return FileError("'" + path + "' is not a valid safetensors file (" + why +
                     ")");
  };
  if (bytes.size() < 8)
    throw corrupt("shorter than its 8-byte header length");
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i)
    n |= static_cast<uint64_t>(static_cast<unsigned char>(bytes[i])) << (8 * i);
  if (n > bytes.size() - 8)
    throw corrupt("header length " + std::to_string(n) +
                  " exceeds the file size");
  json header = json::parse(bytes.begin() + 8, bytes.begin() + 8 + n, nullptr,
                            /*allow_exceptions=*/false);
  if (!header.is_object())
    throw corrupt("the header is not a JSON object");
  const size_t dataStart = 8 + n, dataSize = bytes.size() - dataStart;
  TensorFile out;
  for (auto &[name, v] : header.items()) {
    if (name == "__metadata__") {
      if (!v.is_object())
        throw corrupt("__metadata__ is not an object");
      for (auto &[k, s] : v.items()) {
        if (!s.is_string())
          throw corrupt("metadata '" + k + "' is not a string");
        out.metadata[k] = s.get<std::string>();
      }
      continue;
    }
    if (!v.is_object() || !v.contains("dtype") || !v["dtype"].is_string() ||
        !v.contains("shape") || !v["shape"].is_array() ||
        !v.contains("data_offsets") || !v["data_offsets"].is_array() ||
        v["data_offsets"].size() != 2)
      throw corrupt("tensor '" + name + "' lacks dtype, shape or offsets");
    const DType *d = byName(v["dtype"].get<std::string>());
    if (!d)
      throw corrupt("tensor '" + name + "' has unsupported dtype " +
                    v["dtype"].dump());
    std::vector<int64_t> shape;
    uint64_t count = 1;
    for (const json &s : v["shape"]) {
      if (!s.is_number_integer() || s.get<int64_t>() < 0 ||
          s.get<int64_t>() > (int64_t(1) << 40))
        throw corrupt("tensor '" + name + "' has a bad shape");
      shape.push_back(s.get<int64_t>());
      count *= static_cast<uint64_t>(shape.back());
    }
    const json &o = v["data_offsets"];
    if (!o[0].is_number_unsigned() || !o[1].is_number_unsigned())
      throw corrupt("tensor '" + name + "' has bad offsets");
    uint64_t b = o[0].get<uint64_t>(), e = o[1].get<uint64_t>();
    if (b > e || e > dataSize || e - b != count * d->size)
      throw corrupt("tensor '" + name + "' lies outside the data or does " +
                    "not match its shape");
    torch::Tensor t = torch::empty(shape, torch::TensorOptions(d->type));
    if (count)
      std::memcpy(t.data_ptr(), bytes.data() + dataStart + b, e - b);
    out.tensors[name] = t;
  }
  // Checksums, where the file has them (every file written here does); the
  // metadata is read with the tensors, in whatever order the header has.
  for (auto &[name, t] : out.tensors) {
    auto it = out.metadata.find(checksumKey(name));
    if (it != out.metadata.end() && it->second != checksumOf(t))
      throw corrupt("tensor '" + name +
                    "' does not match its checksum: the file is damaged");
  }
  return out;
}

} // namespace unroll::runtime
