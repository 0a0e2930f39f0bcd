#pragma once
// Checkpoints and caches in the safetensors format: an 8-byte little-endian
// header length, a JSON header naming each tensor's dtype, shape and byte
// range, then the raw data. Readable by other tools (Python's safetensors,
// for instance) without Unroll.

#include <torch/torch.h>

#include <map>
#include <stdexcept>
#include <string>

namespace unroll::runtime {

/// A missing, truncated or malformed file; the message names the file.
class FileError : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

struct TensorFile {
  std::map<std::string, torch::Tensor> tensors;
  /// The header's `__metadata__` (string to string).
  std::map<std::string, std::string> metadata;
};

/// Writes `f` to `path` atomically: to a temporary file in the same
/// directory, flushed to disk, then renamed over `path`. A crash at any
/// point leaves either the old file or the new one. Tensors are stored
/// contiguous, on the CPU, as F32, F64 or I64; the metadata gains each
/// tensor's CRC-32 under checksumKey(name).
void writeSafetensors(const std::string &path, const TensorFile &f);

/// Reads and validates a file written by writeSafetensors (or any
/// safetensors file of F32/F64/I64/I32/U8 tensors), verifying the checksum
/// of every tensor that has one. Throws FileError.
TensorFile readSafetensors(const std::string &path);

/// The metadata key of a tensor's checksum: "crc32.NAME".
std::string checksumKey(const std::string &tensor);

/// The CRC-32 of a CPU tensor's bytes, as 8 hexadecimal digits.
std::string checksumOf(const torch::Tensor &t);

/// Writes `text` to `path` atomically (as writeSafetensors does).
void writeFileAtomic(const std::string &path, const std::string &text);

} // namespace unroll::runtime
