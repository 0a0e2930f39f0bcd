#include "runtime/Data.h"

#include "runtime/Npy.h"
#include "runtime/Safetensors.h"

#include <zlib.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <optional>

namespace unroll::runtime {

using nlohmann::json;

SparseCodingData syntheticSparse(int64_t n, int64_t p, int64_t d,
                                 double density, double noise, uint64_t seed) {
  if (n < 1 || p < 1 || d < 1)
    throw PlanError("synthetic_sparse needs positive sizes");
  if (density < 0 || density > 1)
    throw PlanError("synthetic_sparse: density must be in [0, 1], got " +
                    std::to_string(density));
  if (noise < 0)
    throw PlanError("synthetic_sparse: noise must be non-negative");
  torch::NoGradGuard noGrad;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  SparseCodingData out;
  out.D = torch::randn({p, d}, gen);
  out.D = out.D / out.D.norm(2, {0}, /*keepdim=*/true);
  torch::Tensor support = torch::rand({n, d}, gen) < density;
  out.codes = torch::randn({n, d}, gen) * support;
  out.x = out.codes.matmul(out.D.t()) + noise * torch::randn({n, p}, gen);
  return out;
}

torch::Tensor readIdx(const std::string &path) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f)
    throw FileError("cannot open '" + path +
                    "': " + (errno ? std::strerror(errno) : "gzopen failed"));
  std::string bytes;
  char buf[1 << 16];
  int got;
  while ((got = gzread(f, buf, sizeof buf)) > 0)
    bytes.append(buf, static_cast<size_t>(got));
  int errnum = 0;
  const char *zerr = gzerror(f, &errnum);
  std::string zmsg = zerr ? zerr : "";
  gzclose(f);
  auto bad = [&](const std::string &why) {
    return FileError("'" + path + "' is not a valid IDX file (" + why + ")");
  };
  if (got < 0 || (errnum != Z_OK && errnum != Z_STREAM_END))
    throw bad("decompression failed: " + zmsg);
  if (bytes.size() < 4 || bytes[0] != 0 || bytes[1] != 0)
    throw bad("bad magic number");
  if (static_cast<unsigned char>(bytes[2]) != 0x08)
    throw bad("only unsigned-byte data is supported");
  int ndim = static_cast<unsigned char>(bytes[3]);
  if (ndim < 1 || bytes.size() < 4 + 4 * static_cast<size_t>(ndim))
    throw bad("truncated header");
  std::vector<int64_t> dims;
  uint64_t count = 1;
  for (int i = 0; i < ndim; ++i) {
    uint32_t v = 0;
    for (int k = 0; k < 4; ++k)
      v = (v << 8) | static_cast<unsigned char>(bytes[4 + 4 * i + k]);
    dims.push_back(v);
    count *= v;
  }
  size_t start = 4 + 4 * static_cast<size_t>(ndim);
  if (bytes.size() - start != count)
    throw bad("expected " + std::to_string(count) + " data bytes, found " +
              std::to_string(bytes.size() - start));
  torch::Tensor t = torch::empty(dims, torch::kUInt8);
  std::memcpy(t.data_ptr(), bytes.data() + start, count);
  return t;
}

namespace {

double numArg(const json &src, const char *key, double dflt) {
  if (!src.contains(key))
    return dflt;
  if (!src[key].is_number())
    throw PlanError(src["kind"].get<std::string>() + ": '" + key +
                    "' must be a number");
  return src[key].get<double>();
}

std::vector<const abi::Input *> inputsWithRole(const Algorithm &alg,
                                               abi::Role role) {
  std::vector<const abi::Input *> out;
  for (const abi::Input &in : alg.inputs)
    if (in.role == role)
      out.push_back(&in);
  return out;
}

const std::vector<int64_t> &shapeOf(const abi::Input &in) { return in.shape; }

Split slice(const Split &all, const std::vector<std::string> &dataNames,
            int64_t from, int64_t n) {
  Split s;
  s.size = n;
  for (auto &[name, t] : all.inputs) {
    bool isData =
        std::find(dataNames.begin(), dataNames.end(), name) != dataNames.end();
    s.inputs[name] = isData ? t.narrow(0, from, n).clone() : t;
  }
  return s;
}

Dataset sparseSplits(const Algorithm &alg, const json &src, uint64_t seed) {
  auto data = inputsWithRole(alg, abi::Role::Data);
  auto given = inputsWithRole(alg, abi::Role::Given);
  if (data.size() != 1 || given.size() != 1 || shapeOf(*data[0]).size() != 1 ||
      shapeOf(*given[0]).size() != 2 ||
      shapeOf(*given[0])[0] != shapeOf(*data[0])[0])
    throw PlanError("synthetic_sparse supplies a measurement x: vec[p] "
                    "(data) and a dictionary D: mat[p, d] (given); the "
                    "problem's inputs do not have that form");
  int64_t n = static_cast<int64_t>(numArg(src, "n", 10000));
  if (n < 1)
    throw PlanError("synthetic_sparse: n must be positive");
  int64_t held = std::max<int64_t>(1, n / 10);
  int64_t p = shapeOf(*given[0])[0], d = shapeOf(*given[0])[1];
  // The source's own seed, if given, fixes the data whatever the run's.
  uint64_t dataSeed =
      static_cast<uint64_t>(numArg(src, "seed", static_cast<double>(seed)));
  SparseCodingData sc =
      syntheticSparse(n + 2 * held, p, d, numArg(src, "density", 0.1),
                      numArg(src, "noise", 0.01), dataSeed);
  Split all;
  std::string x = data[0]->name, D = given[0]->name;
  all.inputs[x] = sc.x;
  all.inputs[D] = sc.D;
  return {slice(all, {x}, 0, n), slice(all, {x}, n, held),
          slice(all, {x}, n + held, held)};
}

Dataset fashionSplits(const Algorithm &alg, const json &src, uint64_t seed) {
  std::string dir = src.contains("path") && src["path"].is_string()
                        ? src["path"].get<std::string>()
                        : "/usr/share/datasets/fashion-mnist";
  auto data = inputsWithRole(alg, abi::Role::Data);
  auto given = inputsWithRole(alg, abi::Role::Given);
  if (data.empty() || data.size() > 2 || given.size() > 1)
    throw PlanError("fashion_mnist supplies a masked image and optionally "
                    "the clean one (data) and the mask (given)");
  std::vector<int64_t> shape = shapeOf(*data[0]);
  int64_t numel = 1;
  for (int64_t s : shape)
    numel *= s;
  if (numel != 28 * 28)
    throw PlanError("fashion_mnist images have 784 pixels; input '" +
                    data[0]->name + "' has " + std::to_string(numel));
  torch::Tensor trainImg = readIdx(dir + "/train-images-idx3-ubyte.gz");
  torch::Tensor testImg = readIdx(dir + "/t10k-images-idx3-ubyte.gz");
  for (auto *t : {&trainImg, &testImg})
    if (t->dim() != 3 || t->size(1) != 28 || t->size(2) != 28)
      throw FileError("'" + dir + "': expected 28x28 images, found shape " +
                      c10::str(t->sizes()));
  const int64_t held = std::min<int64_t>(6000, trainImg.size(0) / 10);
  int64_t n = static_cast<int64_t>(
      numArg(src, "n", static_cast<double>(trainImg.size(0) - held)));
  n = std::max<int64_t>(1, std::min(n, trainImg.size(0) - held));
  std::string mask = src.contains("mask") && src["mask"].is_string()
                         ? src["mask"].get<std::string>()
                         : "center";
  if (mask != "center" && mask != "random")
    throw PlanError("fashion_mnist: mask must be 'center' or 'random', got '" +
                    mask + "'");
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  torch::Tensor M = torch::ones({28, 28});
  if (mask == "center")
    M.narrow(0, 7, 14).narrow(1, 7, 14).zero_();
  else // half of the pixels, drawn once from the seed: one mask for all
    M = (torch::rand({28, 28}, gen) >= 0.5).to(torch::kFloat32);
  std::vector<int64_t> batched{-1};
  batched.insert(batched.end(), shape.begin(), shape.end());
  // A fixed shuffle of the training images, so that `n` picks a sample.
  torch::Tensor trainPart = trainImg.narrow(0, 0, trainImg.size(0) - held);
  torch::Tensor order = torch::randperm(trainPart.size(0), gen).narrow(0, 0, n);
  auto make = [&](const torch::Tensor &img) {
    Split s;
    torch::Tensor clean = (img.to(torch::kFloat32) / 255.0).reshape(batched);
    torch::Tensor m = M.reshape(shape);
    s.size = clean.size(0);
    s.inputs[data[0]->name] = clean * m;
    if (data.size() == 2)
      s.inputs[data[1]->name] = clean;
    if (!given.empty())
      s.inputs[given[0]->name] = m;
    return s;
  };
  return {make(trainPart.index_select(0, order)),
          make(trainImg.narrow(0, trainImg.size(0) - held, held)),
          make(testImg)};
}

/// The shift operator of a graph on `agents` nodes: its adjacency matrix
/// divided by its largest eigenvalue, so that powers of it stay bounded.
torch::Tensor shiftOperator(const std::string &graph, int64_t agents,
                            torch::Generator &gen) {
  torch::Tensor A = torch::zeros({agents, agents});
  if (graph == "complete") {
    A.fill_(1);
  } else if (graph == "ring" || graph == "random") {
    // (With one agent, its self-loop is cleared below.)
    for (int64_t i = 0; i < agents; ++i) {
      A[i][(i + 1) % agents] = 1;
      A[(i + 1) % agents][i] = 1;
    }
    if (graph == "random") {
      // A ring (so that the graph is connected) plus each other edge with
      // probability 2 ln(n) / n, symmetric.
      double p = std::min(1.0, 2 * std::log(agents) / agents);
      torch::Tensor extra =
          (torch::rand({agents, agents}, gen) < p).to(torch::kFloat32).triu(1);
      A = torch::maximum(A, extra + extra.t());
    }
  } else {
    throw PlanError("synthetic_federated: graph must be random, ring or "
                    "complete, got '" +
                    graph + "'");
  }
  A.fill_diagonal_(0);
  double top = torch::linalg::eigvalsh(A, "L").abs().max().item<double>();
  return top > 0 ? A / top : A;
}

Dataset federatedSplits(const Algorithm &alg, const json &src, uint64_t seed) {
  auto data = inputsWithRole(alg, abi::Role::Data);
  auto given = inputsWithRole(alg, abi::Role::Given);
  std::vector<int64_t> xs, ys, ss;
  if (data.size() == 2 && given.size() == 1) {
    xs = shapeOf(*data[0]);
    ys = shapeOf(*data[1]);
    ss = shapeOf(*given[0]);
  }
  if (xs.size() != 3 || ys.size() != 3 || ss.size() != 2 || xs[0] != ys[0] ||
      xs[1] != ys[1] || ss[0] != xs[0] || ss[1] != xs[0])
    throw PlanError("synthetic_federated supplies features X: tensor[agents, "
                    "samples, features] and one-hot labels Y: tensor[agents, "
                    "samples, classes] (data) and a graph shift operator S: "
                    "mat[agents, agents] (given); the problem's inputs do not "
                    "have that form");
  const int64_t agents = xs[0], samples = xs[1], features = xs[2],
                classes = ys[2];
  if (numArg(src, "samples", static_cast<double>(samples)) !=
      static_cast<double>(samples))
    throw PlanError("synthetic_federated: samples = " + src["samples"].dump() +
                    " but the problem's inputs hold " +
                    std::to_string(samples) + " per agent");
  const int64_t n = static_cast<int64_t>(numArg(src, "n", 200));
  const int64_t heldout = static_cast<int64_t>(numArg(src, "heldout", 40));
  if (n < 1 || heldout < 2)
    throw PlanError("synthetic_federated: n must be positive and heldout at "
                    "least 2");
  std::string graph = src.contains("graph") && src["graph"].is_string()
                          ? src["graph"].get<std::string>()
                          : "random";
  uint64_t dataSeed =
      static_cast<uint64_t>(numArg(src, "seed", static_cast<double>(seed)));
  torch::NoGradGuard noGrad;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(dataSeed);
  torch::Tensor S = shiftOperator(graph, agents, gen);
  // Each instance is one federated problem: a softmax classifier (with a
  // bias) that all its agents share, and each agent's own samples, their
  // labels drawn from the classifier's class probabilities.
  const int64_t total = n + heldout;
  torch::Tensor W = torch::randn({total, 1, classes, features + 1}, gen);
  torch::Tensor X = torch::randn({total, agents, samples, features}, gen);
  torch::Tensor logits =
      torch::matmul(X, W.narrow(3, 0, features).transpose(2, 3)) +
      W.narrow(3, features, 1).transpose(2, 3);
  torch::Tensor label =
      torch::multinomial(torch::softmax(logits, 3).reshape({-1, classes}), 1,
                         false, gen)
          .reshape({total, agents, samples});
  torch::Tensor Y = torch::one_hot(label, classes).to(torch::kFloat32);
  Split all;
  std::string x = data[0]->name, y = data[1]->name, s = given[0]->name;
  all.inputs[x] = X;
  all.inputs[y] = Y;
  all.inputs[s] = S;
  const int64_t val = heldout / 2;
  return {slice(all, {x, y}, 0, n), slice(all, {x, y}, n, val),
          slice(all, {x, y}, n + val, heldout - val)};
}

Dataset piecewiseSplits(const Algorithm &alg, const json &src, uint64_t seed) {
  auto data = inputsWithRole(alg, abi::Role::Data);
  if (data.empty() || data.size() > 2 ||
      !inputsWithRole(alg, abi::Role::Given).empty() ||
      shapeOf(*data[0]).size() != 1 ||
      (data.size() == 2 && shapeOf(*data[1]) != shapeOf(*data[0])))
    throw PlanError("synthetic_piecewise supplies a noisy signal x: vec[d] "
                    "(data) and, as a second data input of the same shape, "
                    "the clean signal; the problem's inputs do not have that "
                    "form (it has no given values)");
  const int64_t n = static_cast<int64_t>(numArg(src, "n", 1000));
  const int64_t jumps = static_cast<int64_t>(numArg(src, "jumps", 4));
  const double noise = numArg(src, "noise", 0.1);
  const int64_t d = shapeOf(*data[0])[0];
  if (n < 1)
    throw PlanError("synthetic_piecewise: n must be positive");
  if (jumps < 0 || jumps > d - 1)
    throw PlanError("synthetic_piecewise: jumps must be from 0 to " +
                    std::to_string(d - 1) + " (the signal's length - 1)");
  if (noise < 0)
    throw PlanError("synthetic_piecewise: noise must be non-negative");
  const int64_t held = std::max<int64_t>(1, n / 10), total = n + 2 * held;
  torch::NoGradGuard noGrad;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(
      static_cast<uint64_t>(numArg(src, "seed", static_cast<double>(seed))));
  // Jumps at `jumps` distinct positions 1..d-1 (the smallest keys of a
  // random permutation), each to a fresh level in [-1, 1].
  torch::Tensor keys = torch::rand({total, d - 1}, gen);
  torch::Tensor starts = torch::zeros({total, d});
  if (jumps > 0) {
    torch::Tensor pos = std::get<1>(keys.topk(jumps, 1, /*largest=*/false));
    starts.narrow(1, 1, d - 1).scatter_(1, pos, 1.0);
  }
  torch::Tensor segment = starts.cumsum(1).to(torch::kLong);
  torch::Tensor levels = torch::rand({total, jumps + 1}, gen) * 2 - 1;
  torch::Tensor clean = levels.gather(1, segment);
  Split all;
  all.inputs[data[0]->name] = clean + noise * torch::randn({total, d}, gen);
  std::vector<std::string> names{data[0]->name};
  if (data.size() == 2) {
    all.inputs[data[1]->name] = clean;
    names.push_back(data[1]->name);
  }
  return {slice(all, names, 0, n), slice(all, names, n, held),
          slice(all, names, n + held, held)};
}

/// "(3, 4)" for the sizes of a tensor or an input.
std::string shapeText(at::IntArrayRef sizes) {
  std::string out = "(";
  for (size_t k = 0; k < sizes.size(); ++k)
    out += (k ? ", " : "") + std::to_string(sizes[k]);
  return out + (sizes.size() == 1 ? ",)" : ")");
}

/// npy: see Data.h.
Dataset npySplits(const Algorithm &alg, const json &src) {
  namespace fs = std::filesystem;
  using torch::Tensor;
  auto setting = [&](const std::string &key) -> std::optional<std::string> {
    if (!src.contains(key))
      return std::nullopt;
    if (!src[key].is_string())
      throw PlanError("npy: '" + key + "' must be a string (a path)");
    return src[key].get<std::string>();
  };
  const std::optional<std::string> dir = setting("dir");
  std::error_code ec;
  // train/, valid/ and test/ under dir are the splits.
  const bool layout = dir && fs::is_directory(fs::path(*dir) / "train", ec);
  static const char *kSubdirs[] = {"train", "valid", "test"};
  const auto data = inputsWithRole(alg, abi::Role::Data);
  const auto given = inputsWithRole(alg, abi::Role::Given);

  // Per-instance arrays: N instances of the input's shape.
  auto readData = [&](const std::string &name,
                      const std::vector<int64_t> &shape,
                      const std::string &what, const std::string &file) {
    Tensor t = readNpy(file);
    bool ok = t.dim() == static_cast<int64_t>(shape.size()) + 1;
    for (size_t k = 0; ok && k < shape.size(); ++k)
      ok = t.size(static_cast<int64_t>(k) + 1) == shape[k];
    if (!ok) {
      std::string want = "(N";
      for (int64_t s : shape)
        want += ", " + std::to_string(s);
      throw FileError("'" + file + "' holds an array of shape " +
                      shapeText(t.sizes()) + "; " + what + " '" + name +
                      "' needs " + want + "): N instances of shape " +
                      shapeText(shape));
    }
    return t;
  };
  // One split's per-instance arrays (data inputs and the target, if its
  // file is named or present), all of one instance count.
  const abi::Target *target = alg.targets.empty() ? nullptr : &alg.targets[0];
  auto readSplit = [&](const std::string &sub) {
    Split s;
    std::string first;
    auto count = [&](const Tensor &t, const std::string &file) {
      if (first.empty()) {
        s.size = t.size(0);
        first = file;
      } else if (t.size(0) != s.size) {
        throw FileError("'" + file + "' holds " + std::to_string(t.size(0)) +
                        " instances but '" + first + "' holds " +
                        std::to_string(s.size));
      }
    };
    for (const abi::Input *in : data) {
      std::string file;
      if (auto f = setting(in->name)) {
        if (layout)
          throw PlanError("npy: '" + in->name + "' names a file, but '" + *dir +
                          "' holds train/, valid/ and test/ subdirectories, "
                          "which are the splits; put " +
                          in->name + ".npy in each");
        file = *f;
      } else if (dir) {
        file = (fs::path(*dir) / sub / (in->name + ".npy")).string();
      } else {
        throw PlanError("npy: no file for data input '" + in->name +
                        "' and no dir");
      }
      Tensor t = readData(in->name, in->shape, "data input", file);
      count(t, file);
      s.inputs[in->name] = t;
    }
    if (target) {
      std::optional<std::string> file = setting(target->name);
      if (!file && dir) {
        fs::path p = fs::path(*dir) / sub / (target->name + ".npy");
        if (fs::exists(p, ec))
          file = p.string();
      }
      if (file) {
        s.target = readData(target->name, target->shape, "target", *file);
        count(s.target, *file);
      }
    }
    return s;
  };
  std::map<std::string, Tensor> shared;
  for (const abi::Input *in : given) {
    std::string file;
    if (auto f = setting(in->name))
      file = *f;
    else if (!dir)
      throw PlanError("npy: no file for given input '" + in->name +
                      "' and no dir");
    else {
      fs::path p = fs::path(*dir) / (in->name + ".npy");
      if (layout && !fs::exists(p, ec))
        p = fs::path(*dir) / "train" / (in->name + ".npy");
      file = p.string();
    }
    Tensor t = readNpy(file);
    if (t.sizes() != at::IntArrayRef(in->shape))
      throw FileError("'" + file + "' holds an array of shape " +
                      shapeText(t.sizes()) + "; given input '" + in->name +
                      "' needs " + shapeText(in->shape));
    shared[in->name] = t.clone();
  }
  auto withGiven = [&](Split s) {
    for (auto &[name, t] : shared)
      s.inputs[name] = t;
    return s;
  };

  Dataset out;
  if (layout) {
    if (src.contains("valid") || src.contains("test"))
      throw PlanError("npy: '" + *dir +
                      "' holds train/, valid/ and test/ subdirectories, "
                      "which are the splits; drop 'valid' and 'test'");
    Split *splits[] = {&out.train, &out.validation, &out.test};
    for (int k = 0; k < 3; ++k) {
      Split s = readSplit(kSubdirs[k]);
      for (auto &[name, t] : s.inputs)
        t = t.clone(); // off the mapping: one copy
      if (s.target.defined())
        s.target = s.target.clone();
      *splits[k] = withGiven(std::move(s));
    }
    return out;
  }
  const Split all = readSplit("");
  const double valid = numArg(src, "valid", 0.1),
               test = numArg(src, "test", 0.1);
  if (valid < 0 || test < 0 || valid + test >= 1)
    throw PlanError("npy: 'valid' and 'test' must be fractions from 0 that "
                    "leave training instances");
  // Train first, then validation, then test, in the files' order; a
  // fraction above 0 holds at least one instance.
  auto part = [&](double f) {
    return f > 0 ? std::max<int64_t>(
                       1, std::llround(f * static_cast<double>(all.size)))
                 : 0;
  };
  const int64_t nValid = part(valid), nTest = part(test);
  const int64_t nTrain = std::max<int64_t>(0, all.size - nValid - nTest);
  std::vector<std::string> names;
  for (const abi::Input *in : data)
    names.push_back(in->name);
  auto cut = [&](int64_t from, int64_t n) {
    Split s = slice(all, names, from, std::min(n, all.size - from));
    if (all.target.defined())
      s.target = all.target.narrow(0, from, s.size).clone();
    return withGiven(std::move(s));
  };
  out.train = cut(0, nTrain);
  out.validation = cut(nTrain, nValid);
  out.test = cut(nTrain + nValid, nTest);
  return out;
}

} // namespace

void writeGivenValues(const std::string &runDir, const Algorithm &alg,
                      const Split &split) {
  TensorFile f;
  for (const abi::Input &in : alg.inputs)
    if (in.role == abi::Role::Given)
      f.tensors[in.name] = split.inputs.at(in.name).contiguous().cpu();
  if (!f.tensors.empty())
    writeSafetensors(
        (std::filesystem::path(runDir) / "given.safetensors").string(), f);
}

bool useRecordedGivenValues(const std::string &runDir, const Algorithm &alg,
                            Dataset &data, std::ostream &log) {
  const std::string file =
      (std::filesystem::path(runDir) / "given.safetensors").string();
  std::error_code ec;
  if (!std::filesystem::exists(file, ec))
    return false;
  TensorFile f = readSafetensors(file);
  for (const abi::Input &in : alg.inputs) {
    if (in.role != abi::Role::Given)
      continue;
    auto it = f.tensors.find(in.name);
    if (it == f.tensors.end())
      throw FileError("'" + file + "' has no '" + in.name +
                      "', a given input of the plan");
    torch::Tensor t = it->second.to(torch::kFloat32);
    if (t.sizes() != at::IntArrayRef(in.shape))
      throw FileError("'" + file + "' holds '" + in.name + "' of shape " +
                      shapeText(t.sizes()) + " but the plan's is " +
                      shapeText(in.shape));
    const torch::Tensor &now = data.train.inputs.at(in.name);
    if (!torch::equal(now.cpu(), t))
      log << "given values: '" << in.name
          << "' from the run (the data source's differs now)\n";
    for (Split *s : {&data.train, &data.validation, &data.test})
      s->inputs[in.name] = t;
  }
  return true;
}

Dataset loadDataset(const Algorithm &alg, uint64_t seed) {
  const json train = alg.train.value_or(json::object());
  if (!train.contains("data") || train["data"].empty())
    throw PlanError("the train block names no data source");
  const json &src = train["data"][0];
  std::string kind = src.value("kind", "");
  if (kind == "synthetic_sparse")
    return sparseSplits(alg, src, seed);
  if (kind == "fashion_mnist")
    return fashionSplits(alg, src, seed);
  if (kind == "synthetic_federated")
    return federatedSplits(alg, src, seed);
  if (kind == "synthetic_piecewise")
    return piecewiseSplits(alg, src, seed);
  if (kind == "npy")
    return npySplits(alg, src);
  throw PlanError("data source '" + kind +
                  "' is not supported by this runtime (supported: "
                  "synthetic_sparse, fashion_mnist, synthetic_federated, "
                  "synthetic_piecewise, npy)");
}

} // namespace unroll::runtime
