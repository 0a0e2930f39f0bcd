#pragma once
// The program directory: what `unrollc compile` writes and `unroll-run`
// reads (on a machine without the compiler).
//
//   DIR/plan.json      the plan (docs/plan.md)
//   DIR/kernels.so     its kernel library, if compiled with kernels
//   DIR/program.json   what made it, and the plan's hash; written last, so
//                      that a directory a crash left half-written is
//                      refused, not misread

#include <nlohmann/json.hpp>

#include <filesystem>
#include <stdexcept>
#include <string>

namespace unroll::abi {

/// The files of a program directory.
inline constexpr const char *kProgramPlanFile = "plan.json";
inline constexpr const char *kProgramInfoFile = "program.json";
inline constexpr const char *kProgramKernelsFile = "kernels.so";

/// A program directory that cannot be read; the message says why.
class ProgramDirError : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// program.json.
struct ProgramInfo {
  /// The spec it was compiled from (an absolute path) and the `--set`
  /// settings.
  std::string spec;
  nlohmann::json settings = nlohmann::json::array();
  /// abi::planHash of plan.json.
  std::string planHash;
  /// The unrollc version that compiled it.
  std::string unrollc;
  /// The kernel library's file name in the directory; empty: none (the
  /// program runs eagerly). With it, the target asked for and Halide's.
  std::string kernels;
  std::string target, halideTarget;

  nlohmann::json toJson() const;
  /// Throws ProgramDirError for a value of the wrong type.
  static ProgramInfo fromJson(const nlohmann::json &j);
};

/// A program directory as read.
struct ProgramDir {
  std::string planText;
  ProgramInfo info;
  /// The kernel library's path; empty: none.
  std::filesystem::path kernels;
};

/// Reads `dir`, checking that program.json is there, describes plan.json
/// (its hash) and names a kernel library inside the directory. Throws
/// ProgramDirError.
ProgramDir readProgramDir(const std::filesystem::path &dir);

/// Writes plan.json, then program.json (atomically each, program.json
/// last). The kernel library, if any, must be in place already. Throws
/// WriteError.
void writeProgramDir(const std::filesystem::path &dir,
                     const std::string &planText, const ProgramInfo &info);

} // namespace unroll::abi
