#pragma once
// The forward pass of a trained program (every layer, with its parameters
// as constants) as one Halide pipeline: the core of `unrollc export`, which
// compiles it ahead of time so that inference needs neither LibTorch, MLIR
// nor Halide. Only what the layers and the initial states use is lowered;
// a state drawn at random becomes an input (the caller supplies the draw),
// and so do the uniform draws that pick the layers' minibatches.

#include "abi/Plan.h"

#include <Halide.h>

#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace unroll::compiler {

/// A program that export cannot lower (an op without an inference
/// lowering yet, a missing parameter); the message says which.
class ExportError : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// One input of the exported function.
struct InferenceInput {
  std::string name;
  std::vector<int64_t> shape; // per instance for batched inputs
  bool batched = false;       // data inputs and random initial states
  /// What the caller supplies, where it is not a named input of the spec
  /// (a random draw).
  std::string note;
  Halide::ImageParam param; // rank |shape| (+1 for the batch, outermost)
  /// Not -1: the value of state `state` that the first layer lowered
  /// starts from (a StateRange that does not start at the initial state).
  int state = -1;
};

/// Which states to lower: states[from..to] (to < 0: the last), the first
/// of them an input of the pipeline unless it is the initial state
/// (from = 0). Export compiles a big program one layer per pipeline:
/// Halide's compile time grows with the square of a pipeline's size.
struct StateRange {
  int64_t from = 0;
  int64_t to = -1;
};

struct InferencePipeline {
  std::string algorithm;
  /// Data inputs, then given inputs the layers use, then the initial
  /// states drawn at random, then (if the layers draw minibatches) their
  /// uniform draws, `samples`, then the states the first layer starts from
  /// (with a StateRange from > 0).
  std::vector<InferenceInput> inputs;
  /// The number of layers of the algorithm (all of them, not only those
  /// lowered).
  int64_t layers = 0;
  /// The index of the first state in `states`.
  int64_t firstState = 0;
  /// Ops in all layers (with those of their fused regions), lowered or
  /// not: what export splits big programs by.
  int64_t layerOps = 0;
  std::vector<std::string> stateNames;
  std::vector<std::vector<int64_t>> stateShapes;
  /// states[l][i]: state i after layer firstState + l (0: the initial
  /// state), each a Func over (state axes innermost first..., batch).
  std::vector<std::vector<Halide::Func>> states;
  /// Products of a shared matrix and per-instance vectors, matrices or
  /// stacks (GEMMs over all their vectors), and how many of them are computed
  /// in the tiles of the layer output that reads them (on the CPU) instead of
  /// into arrays of their own.
  size_t products = 0, productsInTiles = 0;
  /// Reductions computed as sums inside loops of their own (convolutions,
  /// per-agent products), and how many of them are stored after the
  /// element-by-element op that is their only reader (a ReLU) instead of
  /// before it.
  size_t reductions = 0, reductionsFused = 0;
  /// The schedules of the layer outputs, of the other reductions
  /// (computed once each) and of the products lowered as GEMMs (on the CPU, a
  /// product that only one layer output reads is computed in that output's
  /// tiles), to apply for the target being compiled for.
  std::vector<std::function<void(const Halide::Target &)>> schedules;
};

/// Lowers the trained algorithm of `plan` with parameter values `params`,
/// keyed as in checkpoints ("param.Wu.3", "param.D"): the states in
/// `range`. Throws ExportError.
InferencePipeline
lowerForInference(const abi::Plan &plan,
                  const std::map<std::string, Halide::Buffer<float>> &params,
                  const StateRange &range = {});

} // namespace unroll::compiler
