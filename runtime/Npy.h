#pragma once
// NumPy .npy arrays: the reader behind the `npy` data source.

#include <torch/torch.h>

#include <string>

namespace unroll::runtime {

/// Reads a .npy file (format versions 1 to 3) of little-endian float32 or
/// float64 in C order as a float32 tensor of the file's shape. A float32
/// file is memory-mapped, not read into a buffer: the tensor's storage is
/// the mapping, released with the last tensor that uses it; a float64 file
/// is converted once. Throws FileError naming the file on a missing,
/// truncated or malformed file, another dtype, Fortran order, or a NaN or
/// Inf (with its index).
torch::Tensor readNpy(const std::string &path);

} // namespace unroll::runtime
