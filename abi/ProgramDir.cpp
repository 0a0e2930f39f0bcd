#include "abi/ProgramDir.h"

#include "abi/Files.h"
#include "abi/PlanHash.h"

namespace unroll::abi {

namespace fs = std::filesystem;
using nlohmann::json;

json ProgramInfo::toJson() const {
  json j = {{"spec", spec},
            {"settings", settings},
            {"plan_hash", planHash},
            {"unrollc", unrollc}};
  if (!kernels.empty()) {
    j["kernels"] = kernels;
    j["target"] = target;
    j["halide_target"] = halideTarget;
  }
  return j;
}

ProgramInfo ProgramInfo::fromJson(const json &j) {
  if (!j.is_object())
    throw ProgramDirError("is not a JSON object");
  auto text = [&](const char *key) -> std::string {
    if (!j.contains(key))
      return "";
    if (!j[key].is_string())
      throw ProgramDirError(std::string("has a \"") + key +
                            "\" that is not a string");
    return j[key].get<std::string>();
  };
  ProgramInfo p;
  p.spec = text("spec");
  if (j.contains("settings"))
    p.settings = j["settings"];
  p.planHash = text("plan_hash");
  p.unrollc = text("unrollc");
  p.kernels = text("kernels");
  p.target = text("target");
  p.halideTarget = text("halide_target");
  return p;
}

namespace {

std::string readFileOf(const fs::path &p) {
  std::optional<std::string> text = readFile(p.string());
  if (!text)
    throw ProgramDirError("'" + p.parent_path().string() +
                          "' is not a compiled program (write one with "
                          "`unrollc compile SPEC -o DIR`) (no " +
                          p.filename().string() + ")");
  return *text;
}

} // namespace

ProgramDir readProgramDir(const fs::path &dir) {
  ProgramDir p;
  p.planText = readFileOf(dir / kProgramPlanFile);
  const json j =
      json::parse(readFileOf(dir / kProgramInfoFile), nullptr, false);
  const std::string info = (dir / kProgramInfoFile).string();
  if (j.is_discarded())
    throw ProgramDirError("'" + info + "' is not valid JSON");
  try {
    p.info = ProgramInfo::fromJson(j);
  } catch (const ProgramDirError &e) {
    throw ProgramDirError("'" + info + "' " + e.what());
  }
  std::string hash;
  try {
    hash = planHash(p.planText);
  } catch (const json::exception &) {
    throw ProgramDirError("'" + (dir / kProgramPlanFile).string() +
                          "' is not valid JSON");
  }
  if (p.info.planHash != hash)
    throw ProgramDirError("'" + (dir / kProgramPlanFile).string() +
                          "' does not match its program.json "
                          "(edited by hand?); compile the program again");
  if (!p.info.kernels.empty()) {
    // A file of the directory, not a path elsewhere.
    const fs::path lib(p.info.kernels);
    if (lib.has_parent_path() || lib.is_absolute() || lib == ".." || lib == ".")
      throw ProgramDirError("'" + info + "' names the kernel library '" +
                            p.info.kernels +
                            "', which is not a file of the directory");
    p.kernels = dir / lib;
  }
  return p;
}

void writeProgramDir(const fs::path &dir, const std::string &planText,
                     const ProgramInfo &info) {
  writeFileAtomic((dir / kProgramPlanFile).string(), planText);
  writeFileAtomic((dir / kProgramInfoFile).string(),
                  info.toJson().dump(2) + "\n");
}

} // namespace unroll::abi
