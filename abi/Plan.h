#pragma once
// The plan (docs/plan.md) as typed structs: read from JSON and checked
// once, by readPlan, then walked by the runtime's executor, the kernel
// generator and the export lowering, which dispatch on the op's OpCode.

#include "abi/PlanFormat.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace unroll::abi {

/// A plan op, one enumerator per entry of abi/PlanOps.def.
enum class OpCode {
#define PLAN_OP(Enumerator, Name) Enumerator,
#include "abi/PlanOps.def"
#undef PLAN_OP
};

/// The op's name in the plan ("matmul").
const char *opName(OpCode code);
/// The op called `name`, if there is one.
std::optional<OpCode> opCodeOf(std::string_view name);
/// Whether the op combines its operands element by element (with
/// broadcasting): the binary arithmetic ops and `unary`.
bool isElementwise(OpCode code);

/// `unary`'s function.
enum class UnaryFn {
  Neg,
  Abs,
  Sign,
  Relu,
  Step,
  Exp,
  Log,
  Sqrt,
  Tanh,
  Sigmoid,
  Square
};
/// `reduce`'s kind: sum and mean may take an axis, the norms reduce all.
enum class ReduceKind { Sum, Mean, Norm, Norm1, Sqnorm };
/// `random`'s and a noise's distribution: N(a, b^2) or U(a, b).
enum class Distribution { Normal, Uniform };
/// An input's role: per-instance data or a given value shared by all.
enum class Role { Data, Given };
/// A parameter's binding: one value for all layers or a copy per layer.
enum class Binding { Shared, PerLayer };
/// What a descent constraint measures.
enum class ConstraintForm { Distance, GradNorm, Objective };
/// How a descent constraint compares a layer's measure with the previous.
enum class ConstraintMode { Difference, Ratio };
/// The non-smooth term of the objective split for classical solvers.
enum class Prox { L1, None };

/// The spellings the plan uses.
const char *spelling(UnaryFn v);
const char *spelling(ReduceKind v);
const char *spelling(Distribution v);
const char *spelling(Role v);
const char *spelling(Binding v);
const char *spelling(ConstraintForm v);
const char *spelling(ConstraintMode v);
const char *spelling(Prox v);

/// Per-instance dimensions (a batched value has the batch axis in front).
using Shape = std::vector<int64_t>;

struct Body;

/// One op. The attribute fields hold what its OpCode has (docs/plan.md).
struct Op {
  OpCode code = OpCode::Constant;
  /// Operand ids.
  std::vector<int64_t> args;
  /// The result of an op with one (every op but `minibatch` and `probe`).
  int64_t id = -1;
  Shape shape;
  /// The results of `minibatch`, one per operand.
  std::vector<int64_t> ids;
  std::vector<Shape> shapes;

  double value = 0;            ///< constant
  std::optional<int64_t> axis; ///< expand, concat, slice, logsumexp,
                               ///< softmax; reduce (sum, mean) if present
  int64_t start = 0;           ///< slice
  int64_t size = 0;            ///< minibatch: samples per draw
  UnaryFn fn = UnaryFn::Neg;   ///< unary
  ReduceKind reduce = ReduceKind::Sum;              ///< reduce
  Distribution distribution = Distribution::Normal; ///< random
  std::string name;                                 ///< probe
  /// fused: the kernel number (equal numbers compute the same thing), the
  /// body over the op's operands and the operands' shapes.
  int64_t kernel = -1;
  std::shared_ptr<const Body> body;
  std::vector<Shape> argShapes;

  /// Whether this fused op ends in a reduction over all axes (a loss's or
  /// a descent constraint's measure): one value per instance.
  bool reduces() const;
  /// The per-instance shape this fused op's kernel runs over (its operands'
  /// and adjoints'): the result's, or for a chain that ends in a reduction,
  /// the reduced value's.
  const Shape &domain() const;
};

/// A region: argument ids, ops in order, yielded ids.
struct Body {
  std::vector<int64_t> args;
  std::vector<Op> ops;
  std::vector<int64_t> yield;
};

struct Input {
  int64_t id = -1;
  std::string name;
  Role role = Role::Data;
  Shape shape;
};

struct Param {
  int64_t id = -1;
  std::string name;
  Binding binding = Binding::Shared;
  /// The layer (1..L) of a per-layer copy.
  std::optional<int64_t> layer;
  Shape shape;
  Body init;
};

struct State {
  int64_t id = -1;
  std::string name;
  /// Whether the initial value is drawn (per instance).
  bool random = false;
  /// Whether the algorithm owns it (a `state` declaration) rather than the
  /// problem (a `var`): the objective and the targets do not take it.
  bool algorithm = false;
  Shape shape;
  Body init;
};

struct Target {
  int64_t id = -1;
  std::string name;
  std::string solver;
  std::optional<double> tol;
  std::optional<int64_t> iters;
  Shape shape;
  /// The entry as the plan writes it (its JSON text): with the solver's,
  /// what a cache of computed targets is keyed by.
  std::string text;
};

struct Layer {
  int64_t index = 0;
  /// The state ids it reads, the body mapping them and the ids it defines.
  std::vector<int64_t> state;
  Body body;
  std::vector<int64_t> results;
};

/// The objective split f = g + h + sum_k c_k h_k(A_k y + b_k): the body
/// maps y to g, grad g and the weight w of h where h = w ||y||_1 (prox
/// l1); `proximal` maps (v, t) to prox_{t h}(v) where f has a non-smooth
/// part h; `composed` holds the terms of affine maps.
struct Solver {
  struct Proximal {
    /// The function of h's terms (norm1, norm, or a user's).
    std::string of;
    Body body;
  };
  /// A non-smooth term c * h(A y + b) of an affine map of y.
  struct Composed {
    /// h's function.
    std::string of;
    /// Maps y to A y + b.
    Body map;
    /// Maps (y, z) to A^T z.
    Body adjoint;
    /// Maps (v, t), v of the map's shape, to prox_{t c h}(v).
    Body prox;
  };
  Prox prox = Prox::None;
  Body body;
  std::optional<Proximal> proximal;
  /// The terms that primal-dual solvers split off through their maps.
  std::vector<Composed> composed;
  /// The section as the plan writes it (its JSON text).
  std::string text;
};

/// The projection onto a problem variable's constraint set.
struct Projection {
  std::string set;
  std::string on;
  /// Maps a value of `on` to its projection.
  Body body;
  /// The section as the plan writes it (its JSON text).
  std::string text;
};

struct Constraint {
  ConstraintForm form = ConstraintForm::Distance;
  std::string on;
  double eps = 0;
  ConstraintMode mode = ConstraintMode::Difference;
  /// Maps the value of `on` at one layer to its measure.
  Body body;
};

struct Noise {
  std::string on;
  Distribution distribution = Distribution::Normal;
  /// Yields the distribution's two parameters at one layer.
  Body body;
};

/// One unrolled algorithm, in execution order: inputs, prelude, params,
/// states, targets, layers.
struct Algorithm {
  std::string name;
  std::string problem;
  int64_t layerCount = 0;
  std::vector<Input> inputs;
  std::vector<Op> prelude;
  std::vector<Param> params;
  /// The problem's variables, then the algorithm's own states.
  std::vector<State> states;
  std::vector<Target> targets;
  std::vector<Layer> layers;
  std::optional<Body> objective;
  std::optional<Body> loss;
  std::optional<Solver> solver;
  std::vector<Projection> projections;
  std::vector<Constraint> constraints;
  std::vector<Noise> noise;
  /// The train block's settings as the plan holds them (an object); the
  /// runtime resolves them into its options. None without a train block.
  std::optional<nlohmann::json> train;

  /// How many of `states`, from the first, are the problem's variables
  /// (the objective's arguments).
  size_t variableCount() const {
    size_t n = 0;
    while (n < states.size() && !states[n].algorithm)
      ++n;
    return n;
  }
  /// The projection onto state `name`'s set, if it has one.
  const Projection *projectionOf(const std::string &name) const {
    for (const Projection &p : projections)
      if (p.on == name)
        return &p;
    return nullptr;
  }
};

struct Plan {
  std::vector<Algorithm> algorithms;
};

/// Checks the whole structure of `plan` as docs/plan.md defines it, so that
/// no reader meets a missing key, a value of the wrong JSON type, an unknown
/// op, an op with the wrong number of operands or a missing attribute, an
/// enumerated attribute outside its values, or an id used before it is
/// defined, and returns it typed. Throws PlanFormatError naming the place.
Plan readPlan(const nlohmann::json &plan);

/// Calls `fn(op)` for every op of `b`, and of the bodies of its fused ops,
/// outer ops first.
template <typename Fn> void forEachOp(const Body &b, Fn &&fn) {
  for (const Op &op : b.ops) {
    fn(op);
    if (op.body)
      forEachOp(*op.body, fn);
  }
}

} // namespace unroll::abi
