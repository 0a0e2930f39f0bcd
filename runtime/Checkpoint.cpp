#include "runtime/Checkpoint.h"

#include "runtime/Run.h"
#include "runtime/RunSetup.h"
#include "runtime/RunText.h"

#include <cmath>
#include <cstdlib>

namespace unroll::runtime {

using nlohmann::json;
using torch::Tensor;
namespace fs = std::filesystem;

std::optional<int64_t> countOf(const std::string &s) {
  if (s.empty() || s.size() > 18 ||
      s.find_first_not_of("0123456789") != std::string::npos)
    return std::nullopt;
  return std::stoll(s);
}

void writeCheckpoint(const fs::path &file, const PrimalDual &pd,
                     const std::string &hash, const RunState &rs) {
  TensorFile f;
  pd.save(f);
  f.metadata = {{"format", "unroll-checkpoint"},
                {"version", "2"},
                {"plan_hash", hash},
                {"epoch", std::to_string(rs.epoch)},
                {"best_epoch", std::to_string(rs.bestEpoch)},
                {"best_val_loss", fmt(rs.bestVal, 17)}};
  writeSafetensors(file.string(), f);
}

TensorFile readCheckpoint(const fs::path &file, const std::string &hash) {
  TensorFile f;
  try {
    f = readSafetensors(file.string());
  } catch (const FileError &e) {
    throw RunError(std::string(e.what()) +
                   "; the checkpoint is damaged (delete it to start the run "
                   "over)");
  }
  if (f.metadata["format"] != "unroll-checkpoint" || !f.metadata.count("epoch"))
    throw RunError("'" + file.string() + "' is not an Unroll checkpoint");
  auto damaged = [&](const std::string &why) {
    return RunError("'" + file.string() + "' is damaged: " + why +
                    " (delete it to start the run over)");
  };
  // Version 1 checkpoints predate the checksums; from version 2 on every
  // tensor has one, so that a damaged tensor is never loaded.
  const std::string version = f.metadata["version"];
  if (version != "1" && version != "2")
    throw RunError("'" + file.string() +
                   "' is an Unroll checkpoint of version '" + version +
                   "'; this runtime reads versions 1 and 2");
  if (version != "1")
    for (auto &[name, t] : f.tensors)
      if (!f.metadata.count(checksumKey(name)))
        throw damaged("tensor '" + name + "' has no checksum");
  if (f.metadata["plan_hash"] != hash)
    throw RunError("'" + file.string() +
                   "' was written for a different program than the run's "
                   "plan.json (the spec or its settings changed)");
  const std::optional<int64_t> epoch = countOf(f.metadata["epoch"]),
                               bestEpoch = countOf(f.metadata["best_epoch"]);
  if (!epoch || *epoch < 1)
    throw damaged("its epoch '" + f.metadata["epoch"] +
                  "' is not a positive integer");
  if (!bestEpoch || *bestEpoch > *epoch)
    throw damaged("its best epoch '" + f.metadata["best_epoch"] +
                  "' is not an epoch from 0 to " + std::to_string(*epoch));
  const std::string &bestLoss = f.metadata["best_val_loss"];
  char *end = nullptr;
  const double loss = std::strtod(bestLoss.c_str(), &end);
  if (bestLoss.empty() || *end != '\0' || std::isnan(loss))
    throw damaged("its best validation loss '" + bestLoss +
                  "' is not a number");
  return f;
}

std::map<std::string, Tensor> readRunParams(const std::string &runDir) {
  fs::path dir(runDir);
  std::error_code ec;
  if (!fs::exists(dir / "plan.json", ec))
    throw RunError("'" + dir.string() +
                   "' is not a run directory (no plan.json)");
  fs::path ckpt = dir / "best.safetensors";
  if (!fs::exists(ckpt, ec))
    throw RunError("'" + dir.string() +
                   "' has no finished epoch yet (no best.safetensors)");
  TensorFile f = readCheckpoint(ckpt, planHash(readText(dir / "plan.json")));
  std::map<std::string, Tensor> out;
  for (auto &[name, t] : f.tensors)
    if (name.rfind("param.", 0) == 0)
      out[name] = t.to(torch::kFloat32).contiguous();
  if (fs::exists(dir / "given.safetensors", ec))
    for (auto &[name, t] :
         readSafetensors((dir / "given.safetensors").string()).tensors)
      out["given." + name] = t.to(torch::kFloat32).contiguous();
  return out;
}

} // namespace unroll::runtime
