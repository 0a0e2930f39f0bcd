#pragma once
// Runs a plan's algorithm with LibTorch on a batch of instances.

#include "abi/RuntimeAPI.h"
#include "runtime/Plan.h"

#include <torch/torch.h>

#include <map>
#include <set>
#include <string>
#include <vector>

namespace unroll::runtime {

/// A value while executing: per-instance values (data, state, everything
/// computed from them) carry a leading batch axis; shared ones do not.
struct RValue {
  torch::Tensor t;
  bool batched = false;
};

/// Every layer's state, for training and layer-by-layer evaluation.
struct ForwardResult {
  /// states[l][i]: state i after layer l (l = 0 is the initial state).
  std::vector<std::vector<torch::Tensor>> states;
  /// probes[name][l - 1]: the step result `name` in layer l.
  std::map<std::string, std::vector<torch::Tensor>> probes;
  /// Every minibatch's uniform draws in [0, 1) ([batch, nodes, size], no
  /// batch axis if its operands are shared), in the order drawn: what an
  /// exported model takes as its `samples` input.
  std::vector<torch::Tensor> samples;
};

/// The C interface's view of a CPU float32 tensor (no copy), as generated
/// kernels take it; throws PlanError for a rank above UNROLL_MAX_RANK or a
/// tensor on another device.
unroll_tensor kernelView(const torch::Tensor &t);

class Executor {
public:
  explicit Executor(Algorithm alg) : alg_(std::move(alg)) {}

  /// Binds the inputs by name: data as [batch, shape...], given as
  /// [shape...]. Throws PlanError on a missing input or a wrong shape.
  void bindInputs(const std::map<std::string, torch::Tensor> &inputs);
  /// Computes the prelude and every parameter's initial value.
  void initParams(uint64_t seed);
  /// The parameters by plan id (leaf tensors, for an optimizer).
  std::map<int64_t, torch::Tensor> &params() { return params_; }
  /// Runs all layers; `seed` drives random initial states, minibatches and
  /// noise. With `noise` (training), the plan's noise is added to the
  /// state after every layer. With `perturb` > 0 (robustness evaluation),
  /// N(0, perturb^2) is added to every state after every layer.
  ForwardResult forward(uint64_t seed, bool noise = false, double perturb = 0);

  const Algorithm &algorithm() const { return alg_; }
  int64_t batchSize() const { return batch_; }

  /// Runs one of the plan's bodies (loss, constraint, solver, ...) on
  /// `args`; values it uses from outside must already be bound.
  std::vector<RValue> body(const Body &b, const std::vector<RValue> &args);
  /// Runs `b` once on `copies` batches stacked along the batch axis (e.g.
  /// every layer's state): the per-instance values it reads from outside
  /// are repeated `copies` times for the run, then bound as they were.
  std::vector<RValue>
  bodyStacked(const Body &b, const std::vector<RValue> &args, int64_t copies);
  /// Runs `b`, a body of one per-instance argument, on each of `values`
  /// (e.g. every layer's state): the results stacked along the batch axis,
  /// as bodyStacked gives for the values' concatenation. With kernels, a
  /// body that is one fused op ending in a reduction (a descent
  /// constraint's measure) runs as one autograd node, without stacking.
  std::vector<RValue> bodyOverLayers(const Body &b,
                                     const std::vector<torch::Tensor> &values);
  /// Binds a value by plan id (e.g. a target computed by a solver), moved
  /// to the executor's device.
  void bind(int64_t id, RValue v) {
    v.t = v.t.to(device_);
    env_[id] = std::move(v);
  }
  /// Where tensors live (CPU by default). Set it before binding inputs and
  /// initialising parameters; inputs of any device are moved there.
  void setDevice(torch::Device d) {
    device_ = d;
    constants_.clear();
    layerIndices_.clear();
  }
  /// Runs fused ops with these generated kernels (forward and backward, as
  /// a custom autograd function) instead of their bodies; null: eager.
  void setKernels(const unroll_kernels *k) { kernels_ = k; }
  const unroll_kernels *kernels() const { return kernels_; }
  /// Replaces parameter `id` by `t` (a leaf of the same shape, e.g. a view
  /// into an optimizer's flat buffer).
  void setParam(int64_t id, torch::Tensor t);
  torch::Device device() const { return device_; }
  /// The layer index seen by unroll.layer_index in bodies run next.
  void setLayerIndex(double l) { layerIndex_ = l; }

private:
  RValue get(int64_t id) const;
  void run(const Op &op);
  torch::Tensor addNoise(const std::string &state, torch::Tensor value);
  /// shift + scale * z for a draw z of `sizes` from gen_ (standard normal
  /// as torch::randn, else uniform as torch::rand: the same words of the
  /// generator, the same values to within 1e-6), made by the kernels'
  /// noise kernel; undefined where it cannot (no such kernel, not on the
  /// CPU, a shift or scale that is not a constant scalar, or a normal draw
  /// of fewer than 16 elements), and then nothing is drawn.
  torch::Tensor kernelDraw(c10::IntArrayRef sizes, bool normal,
                           const torch::Tensor &shift,
                           const torch::Tensor &scale);
  /// The matmul ops of body `b` whose product only a fused op with a
  /// kernel reads (found once per body, kept by the body's address).
  const std::set<int64_t> &absorbedProducts(const Body &b);

  Algorithm alg_;
  int64_t batch_ = 0;
  std::map<int64_t, RValue> env_;
  std::map<int64_t, torch::Tensor> params_;
  double layerIndex_ = 0;
  /// Scalar tensors of constant ops (by op id) and of layer indices, on
  /// device_; never modified in place.
  std::map<int64_t, torch::Tensor> constants_;
  std::map<double, torch::Tensor> layerIndices_;
  /// Set while a random initial state is drawn: `random` ops then draw
  /// [batch, shape], one value per instance.
  bool drawPerInstance_ = false;
  torch::Generator gen_;
  /// kernelDraw's generator words (int32 for uint32), reused.
  torch::Tensor words_;
  torch::Device device_ = torch::kCPU;
  const unroll_kernels *kernels_ = nullptr;
  /// With kernels: the absorbable products of the body being run, those
  /// of every body run so far, and the (matrix, vectors) of products
  /// deferred to the fused op that reads them.
  const std::set<int64_t> *absorbed_ = nullptr;
  std::map<const Body *, std::set<int64_t>> absorbedCache_;
  std::map<int64_t, std::pair<torch::Tensor, torch::Tensor>> products_;
  std::map<std::string, std::vector<torch::Tensor>> *probes_ = nullptr;
  std::vector<torch::Tensor> *samples_ = nullptr;
};

} // namespace unroll::runtime
