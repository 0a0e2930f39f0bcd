#include "runtime/Data.h"

#include "runtime/Safetensors.h"

#include <zlib.h>

#include <cerrno>
#include <cmath>
#include <cstring>

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
  if (mask != "center")
    throw PlanError("fashion_mnist: the only mask is 'center'");
  torch::Tensor M = torch::ones({28, 28});
  M.narrow(0, 7, 14).narrow(1, 7, 14).zero_();
  std::vector<int64_t> batched{-1};
  batched.insert(batched.end(), shape.begin(), shape.end());
  // A fixed shuffle of the training images, so that `n` picks a sample.
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
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

} // namespace

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
  throw PlanError("data source '" + kind +
                  "' is not supported by this runtime (supported: "
                  "synthetic_sparse, fashion_mnist, synthetic_federated, "
                  "synthetic_piecewise)");
}

} // namespace unroll::runtime
