#include "compiler/dialect/UnrollDialect.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/Interfaces/FunctionInterfaces.h"
#include "llvm/ADT/StringSwitch.h"

using namespace mlir;

/// `: T` for an op whose result has its operand's type, `: T -> R` while
/// the result is not known yet (unranked, after a generic function is
/// inlined and before infer-shapes).
static ParseResult parseSameOrResult(OpAsmParser &parser, Type &operand,
                                     Type &result) {
  if (parser.parseType(operand))
    return failure();
  result = operand;
  if (succeeded(parser.parseOptionalArrow()))
    return parser.parseType(result);
  return success();
}

static void printSameOrResult(OpAsmPrinter &printer, Operation *, Type operand,
                              Type result) {
  printer << operand;
  if (result != operand)
    printer << " -> " << result;
}

#include "compiler/dialect/UnrollDialect.cpp.inc"
#include "compiler/dialect/UnrollEnums.cpp.inc"

namespace unroll::ir {

void UnrollDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "compiler/dialect/UnrollOps.cpp.inc"
      >();
}

RankedTensorType tensorType(MLIRContext *ctx, llvm::ArrayRef<int64_t> shape) {
  return RankedTensorType::get(shape, Float32Type::get(ctx));
}

Type unrankedTensor(MLIRContext *ctx) {
  return UnrankedTensorType::get(Float32Type::get(ctx));
}

bool isUnranked(Type t) { return isa<UnrankedTensorType>(t); }

bool compatibleTypes(Type a, Type b) {
  return a == b || isUnranked(a) || isUnranked(b);
}

bool anyUnranked(ValueRange values) {
  return llvm::any_of(values, [](Value v) { return isUnranked(v.getType()); });
}

bool hasUnrankedTypes(Operation *op) {
  if (anyUnranked(op->getOperands()) || anyUnranked(op->getResults()))
    return true;
  for (Region &r : op->getRegions())
    for (Block &b : r)
      if (anyUnranked(b.getArguments()))
        return true;
  return false;
}

LogicalResult inferResultTypes(Operation *op) {
  auto iface = dyn_cast<InferTypeOpInterface>(op);
  if (!iface)
    return op->emitOpError("does not infer its result types");
  SmallVector<Type> types;
  if (failed(iface.inferReturnTypes(
          op->getContext(), op->getLoc(), op->getOperands(),
          op->getDiscardableAttrDictionary(), op->getPropertiesStorage(),
          op->getRegions(), types)))
    return failure();
  for (auto [r, t] : llvm::zip(op->getResults(), types))
    r.setType(t);
  return success();
}

FailureOr<llvm::SmallVector<int64_t>> broadcastShapes(ArrayRef<int64_t> a,
                                                      ArrayRef<int64_t> b) {
  ArrayRef<int64_t> lng = a.size() >= b.size() ? a : b;
  ArrayRef<int64_t> sht = a.size() >= b.size() ? b : a;
  llvm::SmallVector<int64_t> out(lng.begin(), lng.end());
  size_t off = lng.size() - sht.size();
  for (size_t i = 0; i < sht.size(); ++i) {
    int64_t l = lng[off + i], s = sht[i];
    if (l == s || s == 1)
      continue;
    if (l == 1) {
      out[off + i] = s;
      continue;
    }
    return failure();
  }
  return out;
}

FailureOr<llvm::SmallVector<int64_t>> matmulShape(ArrayRef<int64_t> a,
                                                  ArrayRef<int64_t> b) {
  if (a.empty() || b.empty())
    return failure();
  if (a.size() == 3 && b.size() == 3) {
    if (a[0] != b[0] || a[2] != b[1])
      return failure();
    return llvm::SmallVector<int64_t>{a[0], a[1], b[2]};
  }
  if (b.size() > 2 || a.back() != b.front())
    return failure();
  llvm::SmallVector<int64_t> out(a.begin(), a.end() - 1);
  if (b.size() == 2)
    out.push_back(b[1]);
  return out;
}

namespace {
ArrayRef<int64_t> shapeOf(Value v) {
  return cast<RankedTensorType>(v.getType()).getShape();
}

/// Inside a generic function the operands may be unranked; so is the
/// result until infer-shapes runs.
bool unrankedResult(MLIRContext *ctx, ValueRange operands,
                    SmallVectorImpl<Type> &inferred) {
  if (!anyUnranked(operands))
    return false;
  inferred.push_back(unrankedTensor(ctx));
  return true;
}

/// The operand's shape without `axis` (a reduction along it).
LogicalResult inferDroppingAxis(MLIRContext *ctx, std::optional<Location> loc,
                                Value operand, int64_t axis, StringRef what,
                                SmallVectorImpl<Type> &inferred) {
  llvm::SmallVector<int64_t> out(shapeOf(operand));
  if (axis < 0 || axis >= static_cast<int64_t>(out.size()))
    return emitOptionalError(loc, what, ": axis ", axis, " out of range for ",
                             operand.getType());
  out.erase(out.begin() + axis);
  inferred.push_back(tensorType(ctx, out));
  return success();
}

bool compatibleRanges(TypeRange l, TypeRange r) {
  if (l.size() != r.size())
    return false;
  for (auto [a, b] : llvm::zip(l, r))
    if (!compatibleTypes(a, b))
      return false;
  return true;
}

LogicalResult inferBinary(MLIRContext *ctx, std::optional<Location> loc,
                          ValueRange operands, SmallVectorImpl<Type> &inferred,
                          StringRef what) {
  if (operands.size() != 2)
    return emitOptionalError(loc, what, " takes two operands");
  if (unrankedResult(ctx, operands, inferred))
    return success();
  auto out = broadcastShapes(shapeOf(operands[0]), shapeOf(operands[1]));
  if (failed(out))
    return emitOptionalError(loc, what, ": shapes ", operands[0].getType(),
                             " and ", operands[1].getType(),
                             " do not broadcast");
  inferred.push_back(tensorType(ctx, *out));
  return success();
}
} // namespace

#define UNROLL_INFER_BINARY(Op, name)                                          \
  LogicalResult Op::inferReturnTypes(                                          \
      MLIRContext *ctx, std::optional<Location> loc, ValueRange operands,      \
      DictionaryAttr, OpaqueProperties, RegionRange,                           \
      SmallVectorImpl<Type> &inferred) {                                       \
    return inferBinary(ctx, loc, operands, inferred, name);                    \
  }
UNROLL_INFER_BINARY(AddOp, "add")
UNROLL_INFER_BINARY(SubOp, "sub")
UNROLL_INFER_BINARY(MulOp, "mul")
UNROLL_INFER_BINARY(DivOp, "div")
UNROLL_INFER_BINARY(PowOp, "pow")
UNROLL_INFER_BINARY(MaxOp, "max")
UNROLL_INFER_BINARY(MinOp, "min")
#undef UNROLL_INFER_BINARY

LogicalResult MatmulOp::inferReturnTypes(MLIRContext *ctx,
                                         std::optional<Location> loc,
                                         ValueRange operands, DictionaryAttr,
                                         OpaqueProperties, RegionRange,
                                         SmallVectorImpl<Type> &inferred) {
  if (unrankedResult(ctx, operands, inferred))
    return success();
  auto out = matmulShape(shapeOf(operands[0]), shapeOf(operands[1]));
  if (failed(out))
    return emitOptionalError(loc, "matmul: shapes ", operands[0].getType(),
                             " and ", operands[1].getType(), " do not fit");
  inferred.push_back(tensorType(ctx, *out));
  return success();
}

LogicalResult TransposeOp::inferReturnTypes(MLIRContext *ctx,
                                            std::optional<Location> loc,
                                            ValueRange operands, DictionaryAttr,
                                            OpaqueProperties, RegionRange,
                                            SmallVectorImpl<Type> &inferred) {
  if (unrankedResult(ctx, operands, inferred))
    return success();
  llvm::SmallVector<int64_t> s(shapeOf(operands[0]));
  if (s.size() < 2)
    return emitOptionalError(loc, "transpose needs rank 2 or 3");
  std::swap(s[s.size() - 1], s[s.size() - 2]);
  inferred.push_back(tensorType(ctx, s));
  return success();
}

LogicalResult ReduceOp::inferReturnTypes(MLIRContext *ctx,
                                         std::optional<Location> loc,
                                         ValueRange operands,
                                         DictionaryAttr attrs,
                                         OpaqueProperties props, RegionRange,
                                         SmallVectorImpl<Type> &inferred) {
  ReduceOp::Adaptor adaptor(operands, attrs, props);
  auto axis = adaptor.getAxis();
  if (!axis) { // all elements: a scalar, whatever the operand
    inferred.push_back(tensorType(ctx, {}));
    return success();
  }
  if (unrankedResult(ctx, operands, inferred))
    return success();
  return inferDroppingAxis(ctx, loc, operands[0], static_cast<int64_t>(*axis),
                           "reduce", inferred);
}

LogicalResult LogSumExpOp::inferReturnTypes(MLIRContext *ctx,
                                            std::optional<Location> loc,
                                            ValueRange operands,
                                            DictionaryAttr attrs,
                                            OpaqueProperties props, RegionRange,
                                            SmallVectorImpl<Type> &inferred) {
  if (unrankedResult(ctx, operands, inferred))
    return success();
  LogSumExpOp::Adaptor adaptor(operands, attrs, props);
  return inferDroppingAxis(ctx, loc, operands[0],
                           static_cast<int64_t>(adaptor.getAxis()), "logsumexp",
                           inferred);
}

LogicalResult LipschitzOp::inferReturnTypes(MLIRContext *ctx,
                                            std::optional<Location>, ValueRange,
                                            DictionaryAttr, OpaqueProperties,
                                            RegionRange,
                                            SmallVectorImpl<Type> &inferred) {
  inferred.push_back(tensorType(ctx, {}));
  return success();
}

LogicalResult GraphFilterOp::inferReturnTypes(MLIRContext *ctx,
                                              std::optional<Location> loc,
                                              ValueRange operands,
                                              DictionaryAttr, OpaqueProperties,
                                              RegionRange,
                                              SmallVectorImpl<Type> &inferred) {
  if (operands.size() != 3)
    return emitOptionalError(loc, "graph_filter takes S, x and h");
  inferred.push_back(operands[1].getType());
  return success();
}

LogicalResult MinibatchOp::inferReturnTypes(MLIRContext *ctx,
                                            std::optional<Location> loc,
                                            ValueRange operands,
                                            DictionaryAttr attrs,
                                            OpaqueProperties props, RegionRange,
                                            SmallVectorImpl<Type> &inferred) {
  MinibatchOp::Adaptor adaptor(operands, attrs, props);
  for (Value v : operands) {
    if (isUnranked(v.getType())) {
      inferred.push_back(unrankedTensor(ctx));
      continue;
    }
    llvm::SmallVector<int64_t> s(shapeOf(v));
    if (s.size() < 2)
      return emitOptionalError(loc, "minibatch samples along axis 1 of ",
                               v.getType(), ", which has no axis 1");
    s[1] = static_cast<int64_t>(adaptor.getSize());
    inferred.push_back(tensorType(ctx, s));
  }
  return success();
}

LogicalResult GradOp::inferReturnTypes(MLIRContext *, std::optional<Location>,
                                       ValueRange operands, DictionaryAttr,
                                       OpaqueProperties, RegionRange,
                                       SmallVectorImpl<Type> &inferred) {
  if (operands.empty())
    return failure();
  inferred.push_back(operands[0].getType());
  return success();
}

LogicalResult HalfOp::inferReturnTypes(MLIRContext *ctx,
                                       std::optional<Location> loc,
                                       ValueRange operands, DictionaryAttr,
                                       OpaqueProperties, RegionRange,
                                       SmallVectorImpl<Type> &inferred) {
  if (unrankedResult(ctx, operands, inferred))
    return success();
  llvm::SmallVector<int64_t> s(shapeOf(operands[0]));
  if (s.empty() || s[0] % 2 != 0)
    return emitOptionalError(loc, "cannot halve ", operands[0].getType(),
                             " along axis 0");
  s[0] /= 2;
  inferred.push_back(tensorType(ctx, s));
  return success();
}

LogicalResult DiffOp::inferReturnTypes(MLIRContext *ctx,
                                       std::optional<Location> loc,
                                       ValueRange operands,
                                       DictionaryAttr attrs,
                                       OpaqueProperties props, RegionRange,
                                       SmallVectorImpl<Type> &inferred) {
  if (unrankedResult(ctx, operands, inferred))
    return success();
  DiffOp::Adaptor adaptor(operands, attrs, props);
  llvm::SmallVector<int64_t> s(shapeOf(operands[0]));
  int64_t axis = adaptor.getAxis();
  if (axis == -1)
    axis = static_cast<int64_t>(s.size()) - 1;
  if (axis < 0 || axis >= static_cast<int64_t>(s.size()) || s[axis] < 2)
    return emitOptionalError(loc, "cannot take differences of ",
                             operands[0].getType(), " along axis ", axis);
  s[axis] -= 1;
  inferred.push_back(tensorType(ctx, s));
  return success();
}

LogicalResult AppendOnesOp::inferReturnTypes(MLIRContext *ctx,
                                             std::optional<Location> loc,
                                             ValueRange operands,
                                             DictionaryAttr, OpaqueProperties,
                                             RegionRange,
                                             SmallVectorImpl<Type> &inferred) {
  if (unrankedResult(ctx, operands, inferred))
    return success();
  llvm::SmallVector<int64_t> s(shapeOf(operands[0]));
  if (s.empty())
    return emitOptionalError(loc, "append_ones needs at least one axis");
  s.back() += 1;
  inferred.push_back(tensorType(ctx, s));
  return success();
}

// Elementwise or square-matrix maps: the result has the operand's type.
#define UNROLL_INFER_SAME(Op)                                                  \
  LogicalResult Op::inferReturnTypes(                                          \
      MLIRContext *, std::optional<Location> loc, ValueRange operands,         \
      DictionaryAttr, OpaqueProperties, RegionRange,                           \
      SmallVectorImpl<Type> &inferred) {                                       \
    if (operands.size() != 1)                                                  \
      return emitOptionalError(loc, "takes one operand");                      \
    inferred.push_back(operands[0].getType());                                 \
    return success();                                                          \
  }
UNROLL_INFER_SAME(UnaryOp)
UNROLL_INFER_SAME(InverseOp)
UNROLL_INFER_SAME(StopGradientOp)
UNROLL_INFER_SAME(SoftmaxOp)
UNROLL_INFER_SAME(LipschitzGradOp)
#undef UNROLL_INFER_SAME

#define UNROLL_COMPATIBLE(Op)                                                  \
  bool Op::isCompatibleReturnTypes(TypeRange l, TypeRange r) {                 \
    return compatibleRanges(l, r);                                             \
  }
UNROLL_COMPATIBLE(AddOp)
UNROLL_COMPATIBLE(SubOp)
UNROLL_COMPATIBLE(MulOp)
UNROLL_COMPATIBLE(DivOp)
UNROLL_COMPATIBLE(PowOp)
UNROLL_COMPATIBLE(MaxOp)
UNROLL_COMPATIBLE(MinOp)
UNROLL_COMPATIBLE(MatmulOp)
UNROLL_COMPATIBLE(TransposeOp)
UNROLL_COMPATIBLE(OuterOp)
UNROLL_COMPATIBLE(ConcatOp)
UNROLL_COMPATIBLE(Squeeze2dOp)
UNROLL_COMPATIBLE(Unsqueeze2dOp)
UNROLL_COMPATIBLE(Conv2dOp)
UNROLL_COMPATIBLE(Conv1x1Op)
UNROLL_COMPATIBLE(Conv2dTransposeOp)
UNROLL_COMPATIBLE(ReduceOp)
UNROLL_COMPATIBLE(LogSumExpOp)
UNROLL_COMPATIBLE(LipschitzOp)
UNROLL_COMPATIBLE(GraphFilterOp)
UNROLL_COMPATIBLE(MinibatchOp)
UNROLL_COMPATIBLE(GradOp)
UNROLL_COMPATIBLE(HalfOp)
UNROLL_COMPATIBLE(DiffOp)
UNROLL_COMPATIBLE(AppendOnesOp)
UNROLL_COMPATIBLE(UnaryOp)
UNROLL_COMPATIBLE(InverseOp)
UNROLL_COMPATIBLE(StopGradientOp)
UNROLL_COMPATIBLE(SoftmaxOp)
UNROLL_COMPATIBLE(LipschitzGradOp)
#undef UNROLL_COMPATIBLE

//===----------------------------------------------------------------------===//
// Verifiers
//===----------------------------------------------------------------------===//

LogicalResult AlgorithmOp::verify() {
  if (getLayers() < 1)
    return emitOpError("needs at least one layer, got ") << getLayers();
  int64_t steps = 0, states = 0, layers = 0, owned = 0;
  for (Operation &op : getBody().front()) {
    if (isa<StepOp>(op))
      ++steps;
    else if (auto s = dyn_cast<StateOp>(op)) {
      // The problem's variables first: readers take them as a prefix.
      if (!s.getAlgorithm() && owned > 0)
        return s.emitOpError("of the problem follows a state of the "
                             "algorithm; the problem's variables come first");
      ++states;
      owned += s.getAlgorithm();
    } else if (isa<LayerOp>(op))
      ++layers;
  }
  // Before unroll-layers: one step. After: one unroll.layer per layer.
  if (layers == 0 && steps != 1)
    return emitOpError("needs exactly one unroll.step, got ") << steps;
  if (layers != 0 && (steps != 0 || layers != getLayers()))
    return emitOpError("an unrolled algorithm needs ")
           << getLayers() << " unroll.layer ops and no step, got " << layers
           << " layers and " << steps << " steps";
  if (states == owned)
    return emitOpError("needs at least one unroll.state of the problem");
  return success();
}

LogicalResult LayerOp::verify() {
  if (hasUnrankedTypes(*this))
    return success();
  Block &b = getBody().front();
  if (b.getNumArguments() != getState().size() ||
      getResults().size() != getState().size())
    return emitOpError("needs as many block arguments and results as state "
                       "operands");
  auto yield = cast<YieldOp>(b.getTerminator());
  for (auto [s, a, y, r] :
       llvm::zip(getState(), b.getArguments(), yield.getValues(), getResults()))
    if (s.getType() != a.getType() || y.getType() != s.getType() ||
        r.getType() != s.getType())
      return emitOpError("state types must agree across operands, block "
                         "arguments, yield and results");
  if (yield.getValues().size() != getState().size())
    return emitOpError("yields ") << yield.getValues().size() << " values for "
                                  << getState().size() << " state variables";
  return success();
}

/// The yield of an initialiser region must produce the declared type (or a
/// value that broadcasts to it).
static LogicalResult verifyInit(Operation *op, Region &init, Type declared) {
  auto yield = cast<YieldOp>(init.front().getTerminator());
  if (yield.getValues().size() != 1)
    return op->emitOpError("initialiser must yield one value");
  Type t = yield.getValues()[0].getType();
  if (!compatibleTypes(t, declared))
    return op->emitOpError("initialiser yields ")
           << t << ", but the declared type is " << declared;
  return success();
}

LogicalResult ParamOp::verify() {
  return verifyInit(*this, getInit(), getType());
}

LogicalResult StateOp::verify() {
  return verifyInit(*this, getInit(), getType());
}

/// A body that maps a point (its first of `args` arguments, `takes` says
/// what they are) to one value of the point's type.
static LogicalResult verifyPointMap(Operation *op, Region &r, unsigned args,
                                    StringRef takes) {
  Block &b = r.front();
  if (b.getNumArguments() != args)
    return op->emitOpError("body takes ")
           << takes << ", not " << b.getNumArguments() << " values";
  auto yield = cast<YieldOp>(b.getTerminator());
  if (yield.getValues().size() != 1 ||
      !compatibleTypes(yield.getValues()[0].getType(),
                       b.getArgument(0).getType()))
    return op->emitOpError("body must yield one value of the point's type");
  return success();
}

LogicalResult ProjectionOp::verify() {
  return verifyPointMap(*this, getBody(), 1, "the point to project");
}

LogicalResult ProximalOp::verify() {
  return verifyPointMap(*this, getBody(), 2, "the point and the step");
}

LogicalResult ComposedTermOp::verify() {
  Block &map = getMap().front(), &adj = getAdjoint().front(),
        &prox = getProx().front();
  Type scalar = tensorType(getContext(), {});
  if (map.getNumArguments() != 1)
    return emitOpError("map takes the problem's variable");
  auto mapped = cast<YieldOp>(map.getTerminator()).getValues();
  if (mapped.size() != 1)
    return emitOpError("map must yield one value, the mapped point");
  Type y = map.getArgument(0).getType(), z = mapped[0].getType();
  if (adj.getNumArguments() != 2 ||
      !compatibleTypes(adj.getArgument(0).getType(), y) ||
      !compatibleTypes(adj.getArgument(1).getType(), z))
    return emitOpError("adjoint takes the variable and a point of the map's "
                       "type");
  auto back = cast<YieldOp>(adj.getTerminator()).getValues();
  if (back.size() != 1 || !compatibleTypes(back[0].getType(), y))
    return emitOpError("adjoint must yield one value of the variable's type");
  if (prox.getNumArguments() != 2 ||
      !compatibleTypes(prox.getArgument(0).getType(), z) ||
      !compatibleTypes(prox.getArgument(1).getType(), scalar))
    return emitOpError("prox takes a point of the map's type and the step");
  auto p = cast<YieldOp>(prox.getTerminator()).getValues();
  if (p.size() != 1 || !compatibleTypes(p[0].getType(), z))
    return emitOpError("prox must yield one value of the map's type");
  return success();
}

LogicalResult StepOp::verify() {
  Block &b = getBody().front();
  if (b.getNumArguments() != getState().size())
    return emitOpError("has ")
           << getState().size() << " state operands but its body takes "
           << b.getNumArguments();
  for (auto [v, a] : llvm::zip(getState(), b.getArguments()))
    if (!compatibleTypes(v.getType(), a.getType()))
      return emitOpError("state operand type ")
             << v.getType() << " differs from block argument " << a.getType();
  auto yield = cast<YieldOp>(b.getTerminator());
  if (yield.getValues().size() != getState().size())
    return emitOpError("yields ") << yield.getValues().size() << " values for "
                                  << getState().size() << " state variables";
  for (auto [v, s] : llvm::zip(yield.getValues(), getState()))
    if (!compatibleTypes(v.getType(), s.getType()))
      return emitOpError("yields ")
             << v.getType() << " for a state of type " << s.getType();
  return success();
}

LogicalResult ConstantOp::verify() {
  if (hasUnrankedTypes(*this))
    return success();
  if (getType().getRank() != 0)
    return emitOpError("result must be a scalar tensor<f32>");
  return success();
}

LogicalResult FillOp::verify() {
  if (hasUnrankedTypes(*this))
    return success();
  if (getValue().getType().getRank() != 0)
    return emitOpError("fill value must be a scalar");
  return success();
}

LogicalResult RandomOp::verify() {
  if (hasUnrankedTypes(*this))
    return success();
  if (getA().getType().getRank() != 0 || getB().getType().getRank() != 0)
    return emitOpError("distribution parameters must be scalars");
  return success();
}

static bool isSquareMatrix(Type t) {
  auto s = cast<RankedTensorType>(t).getShape();
  return s.size() == 2 && s[0] == s[1];
}

LogicalResult EyeOp::verify() {
  if (hasUnrankedTypes(*this))
    return success();
  if (!isSquareMatrix(getType()))
    return emitOpError("result must be a square matrix");
  return success();
}

LogicalResult UnaryOp::verify() {
  bool known = llvm::StringSwitch<bool>(getFn())
                   .Cases("neg", "abs", "sign", "relu", "exp", "log", true)
                   .Cases("sqrt", "tanh", "sigmoid", "square", "step", true)
                   .Default(false);
  if (!known)
    return emitOpError("unknown elementwise function '") << getFn() << "'";
  return success();
}

LogicalResult ReduceOp::verify() {
  if (hasUnrankedTypes(*this))
    return success();
  StringRef k = getKind();
  bool axisKind = k == "sum" || k == "mean";
  if (!axisKind && k != "norm" && k != "norm1" && k != "sqnorm")
    return emitOpError("unknown reduction '") << k << "'";
  auto in = getOperand().getType().getShape();
  llvm::SmallVector<int64_t> want;
  if (auto ax = getAxis()) {
    if (!axisKind)
      return emitOpError("'") << k << "' reduces over all elements";
    if (*ax < 0 || *ax >= static_cast<int64_t>(in.size()))
      return emitOpError("axis ") << *ax << " out of range";
    want.assign(in.begin(), in.end());
    want.erase(want.begin() + *ax);
  }
  if (getType().getShape() != ArrayRef<int64_t>(want))
    return emitOpError("result type ")
           << getType() << " does not match the reduction";
  return success();
}

LogicalResult OuterOp::inferReturnTypes(MLIRContext *ctx,
                                        std::optional<Location> loc,
                                        ValueRange operands, DictionaryAttr,
                                        OpaqueProperties, RegionRange,
                                        SmallVectorImpl<Type> &inferred) {
  if (unrankedResult(ctx, operands, inferred))
    return success();
  auto a = shapeOf(operands[0]), b = shapeOf(operands[1]);
  if (a.size() != 1 || b.size() != 1)
    return emitOptionalError(loc, "outer needs two vectors");
  inferred.push_back(tensorType(ctx, {a[0], b[0]}));
  return success();
}

LogicalResult ConcatOp::inferReturnTypes(MLIRContext *ctx,
                                         std::optional<Location> loc,
                                         ValueRange operands,
                                         DictionaryAttr attrs,
                                         OpaqueProperties props, RegionRange,
                                         SmallVectorImpl<Type> &inferred) {
  if (unrankedResult(ctx, operands, inferred))
    return success();
  ConcatOp::Adaptor adaptor(operands, attrs, props);
  auto a = shapeOf(operands[0]), b = shapeOf(operands[1]);
  int64_t ax = adaptor.getAxis();
  if (a.size() != b.size() || ax < 0 || ax >= static_cast<int64_t>(a.size()))
    return emitOptionalError(loc, "concat: bad axis or ranks");
  llvm::SmallVector<int64_t> out(a);
  for (size_t i = 0; i < a.size(); ++i)
    if (static_cast<int64_t>(i) != ax && a[i] != b[i])
      return emitOptionalError(loc, "concat: shapes differ off the axis");
  out[ax] += b[ax];
  inferred.push_back(tensorType(ctx, out));
  return success();
}

LogicalResult SliceOp::verify() {
  if (hasUnrankedTypes(*this))
    return success();
  auto in = getOperand().getType().getShape();
  auto out = getType().getShape();
  int64_t ax = getAxis(), st = getStart();
  if (in.size() != out.size() || ax < 0 ||
      ax >= static_cast<int64_t>(in.size()))
    return emitOpError("bad axis or rank");
  for (size_t i = 0; i < in.size(); ++i)
    if (static_cast<int64_t>(i) != ax && in[i] != out[i])
      return emitOpError("shape may change only along the axis");
  if (st < 0 || st + out[ax] > in[ax])
    return emitOpError("slice ")
           << st << ".." << st + out[ax] - 1 << " out of range";
  return success();
}

LogicalResult Squeeze2dOp::inferReturnTypes(MLIRContext *ctx,
                                            std::optional<Location> loc,
                                            ValueRange operands, DictionaryAttr,
                                            OpaqueProperties, RegionRange,
                                            SmallVectorImpl<Type> &inferred) {
  if (unrankedResult(ctx, operands, inferred))
    return success();
  auto s = shapeOf(operands[0]);
  if (s.size() != 3 || s[1] % 2 || s[2] % 2)
    return emitOptionalError(loc, "squeeze2d needs [c, h, w], h and w even");
  inferred.push_back(tensorType(ctx, {4 * s[0], s[1] / 2, s[2] / 2}));
  return success();
}

LogicalResult Unsqueeze2dOp::inferReturnTypes(MLIRContext *ctx,
                                              std::optional<Location> loc,
                                              ValueRange operands,
                                              DictionaryAttr, OpaqueProperties,
                                              RegionRange,
                                              SmallVectorImpl<Type> &inferred) {
  if (unrankedResult(ctx, operands, inferred))
    return success();
  auto s = shapeOf(operands[0]);
  if (s.size() != 3 || s[0] % 4)
    return emitOptionalError(loc, "unsqueeze2d needs [4c, h, w]");
  inferred.push_back(tensorType(ctx, {s[0] / 4, 2 * s[1], 2 * s[2]}));
  return success();
}

LogicalResult Conv2dOp::inferReturnTypes(MLIRContext *ctx,
                                         std::optional<Location> loc,
                                         ValueRange operands, DictionaryAttr,
                                         OpaqueProperties, RegionRange,
                                         SmallVectorImpl<Type> &inferred) {
  if (unrankedResult(ctx, operands, inferred))
    return success();
  auto x = shapeOf(operands[0]), k = shapeOf(operands[1]);
  if (x.size() != 3 || k.size() != 4 || x[0] != k[1] || k[2] % 2 == 0 ||
      k[3] % 2 == 0)
    return emitOptionalError(loc, "conv2d needs [ci, h, w] and [co, ci, kh, "
                                  "kw] with odd kh, kw");
  inferred.push_back(tensorType(ctx, {k[0], x[1], x[2]}));
  return success();
}

LogicalResult Conv2dTransposeOp::inferReturnTypes(
    MLIRContext *ctx, std::optional<Location> loc, ValueRange operands,
    DictionaryAttr, OpaqueProperties, RegionRange,
    SmallVectorImpl<Type> &inferred) {
  if (unrankedResult(ctx, operands, inferred))
    return success();
  auto g = shapeOf(operands[0]), k = shapeOf(operands[1]);
  if (g.size() != 3 || k.size() != 4 || g[0] != k[0] || k[2] % 2 == 0 ||
      k[3] % 2 == 0)
    return emitOptionalError(loc, "conv2d_transpose needs [co, h, w] and [co, "
                                  "ci, kh, kw] with odd kh, kw");
  inferred.push_back(tensorType(ctx, {k[1], g[1], g[2]}));
  return success();
}

LogicalResult Conv1x1Op::inferReturnTypes(MLIRContext *ctx,
                                          std::optional<Location> loc,
                                          ValueRange operands, DictionaryAttr,
                                          OpaqueProperties, RegionRange,
                                          SmallVectorImpl<Type> &inferred) {
  if (unrankedResult(ctx, operands, inferred))
    return success();
  auto x = shapeOf(operands[0]), w = shapeOf(operands[1]);
  if (x.size() != 3 || w.size() != 2 || x[0] != w[1])
    return emitOptionalError(loc, "conv1x1 needs [c, h, w] and [co, c]");
  inferred.push_back(tensorType(ctx, {w[0], x[1], x[2]}));
  return success();
}

LogicalResult LogSumExpOp::verify() {
  if (hasUnrankedTypes(*this))
    return success();
  auto in = getOperand().getType().getShape();
  int64_t ax = getAxis();
  if (ax < 0 || ax >= static_cast<int64_t>(in.size()))
    return emitOpError("axis out of range");
  llvm::SmallVector<int64_t> want(in);
  want.erase(want.begin() + ax);
  if (getType().getShape() != ArrayRef<int64_t>(want))
    return emitOpError("result must drop the axis");
  return success();
}

LogicalResult SoftmaxOp::verify() {
  if (hasUnrankedTypes(*this))
    return success();
  if (getAxis() < 0 || getAxis() >= getType().getRank())
    return emitOpError("axis out of range");
  return success();
}

LogicalResult GraphFilterOp::verify() {
  if (hasUnrankedTypes(*this))
    return success();
  auto s = getShift().getType().getShape();
  auto x = getSignal().getType();
  if (s.size() != 2 || s[0] != s[1] || x.getRank() < 1 ||
      x.getShape()[0] != s[0] || getTaps().getType().getRank() != 1 ||
      getType() != x)
    return emitOpError(
        "needs S [n, n], x [n, ...], h [K+1] and returns x's type");
  return success();
}

LogicalResult MinibatchOp::verify() {
  if (hasUnrankedTypes(*this))
    return success();
  if (getOperands().size() != getResults().size() || getOperands().empty())
    return emitOpError("needs one result per operand");
  for (auto [in, out] : llvm::zip(getOperands(), getResults())) {
    auto i = cast<RankedTensorType>(in.getType()).getShape();
    auto o = cast<RankedTensorType>(out.getType()).getShape();
    if (i.size() < 2 || i.size() != o.size() || o[1] != getSize())
      return emitOpError("results are the operands with axis 1 of size ")
             << getSize();
    for (size_t d = 0; d < i.size(); ++d)
      if (d != 1 && i[d] != o[d])
        return emitOpError("only axis 1 may change");
  }
  return success();
}

LogicalResult InverseOp::verify() {
  if (hasUnrankedTypes(*this))
    return success();
  if (!isSquareMatrix(getType()))
    return emitOpError("needs a square matrix");
  return success();
}

LogicalResult ExpandOp::verify() {
  if (hasUnrankedTypes(*this))
    return success();
  auto in = getOperand().getType().getShape();
  auto out = getType().getShape();
  int64_t ax = getAxis();
  if (out.size() != in.size() + 1 || ax < 0 ||
      ax >= static_cast<int64_t>(out.size()))
    return emitOpError("result must have one more axis than the operand");
  llvm::SmallVector<int64_t> dropped(out.begin(), out.end());
  dropped.erase(dropped.begin() + ax);
  if (ArrayRef<int64_t>(dropped) != in)
    return emitOpError("result ")
           << getType() << " is not " << getOperand().getType() << " with axis "
           << ax << " inserted";
  return success();
}

LogicalResult SumToOp::verify() {
  if (hasUnrankedTypes(*this))
    return success();
  auto b =
      broadcastShapes(getType().getShape(), getOperand().getType().getShape());
  if (failed(b) || ArrayRef<int64_t>(*b) != getOperand().getType().getShape())
    return emitOpError("result ")
           << getType() << " does not broadcast to " << getOperand().getType();
  return success();
}

LogicalResult GradOp::verify() {
  if (getArgs().empty())
    return emitOpError("needs at least the argument to differentiate by");
  if (!compatibleTypes(getType(), getArgs()[0].getType()))
    return emitOpError("result type must be the first argument's type");
  Block &b = getBody().front();
  if (b.getNumArguments() != getArgs().size())
    return emitOpError("body must take one argument per operand");
  for (auto [v, a] : llvm::zip(getArgs(), b.getArguments()))
    if (!compatibleTypes(v.getType(), a.getType()))
      return emitOpError("operand and body argument types differ");
  auto yield = cast<YieldOp>(b.getTerminator());
  if (yield.getValues().size() != 1 ||
      !compatibleTypes(yield.getValues()[0].getType(),
                       tensorType(getContext(), {})))
    return emitOpError("body must yield one scalar");
  return success();
}

/// The body of a training op yields `n` scalars.
static LogicalResult verifyScalarBody(Operation *op, Region &body, unsigned n) {
  auto yield = cast<YieldOp>(body.front().getTerminator());
  if (yield.getValues().size() != n)
    return op->emitOpError("body must yield ") << n << " scalar(s)";
  for (Value v : yield.getValues())
    if (!compatibleTypes(v.getType(), tensorType(op->getContext(), {})))
      return op->emitOpError("body must yield scalars, got ") << v.getType();
  return success();
}

LogicalResult ObjectiveOp::verify() {
  return verifyScalarBody(*this, getBody(), 1);
}
LogicalResult CompositeOp::verify() {
  if (getProx() != "l1" && getProx() != "none")
    return emitOpError("prox must be 'l1' or 'none'");
  Block &b = getBody().front();
  if (b.getNumArguments() != 1)
    return emitOpError("body takes the problem's variable");
  auto yield = cast<YieldOp>(b.getTerminator());
  auto vals = yield.getValues();
  Type scalar = tensorType(getContext(), {});
  if (vals.size() != 3 || !compatibleTypes(vals[0].getType(), scalar) ||
      !compatibleTypes(vals[1].getType(), b.getArgument(0).getType()) ||
      !compatibleTypes(vals[2].getType(), scalar))
    return emitOpError("body must yield g (scalar), its gradient (the "
                       "variable's type) and the l1 weight (scalar)");
  return success();
}

LogicalResult LossOp::verify() { return verifyScalarBody(*this, getBody(), 1); }

LogicalResult ConstraintOp::verify() {
  StringRef f = getForm();
  if (f != "distance" && f != "grad_norm" && f != "objective")
    return emitOpError("form must be distance, grad_norm or objective");
  double eps = getEps().convertToDouble();
  if (eps < 0 || eps >= 1)
    return emitOpError("eps must be in [0, 1)");
  if (getBody().front().getNumArguments() != 1)
    return emitOpError("body takes the constrained value at one layer");
  return verifyScalarBody(*this, getBody(), 1);
}

LogicalResult NoiseOp::verify() {
  if (getBody().front().getNumArguments() != 1)
    return emitOpError("body takes the state at one layer");
  return verifyScalarBody(*this, getBody(), 2);
}

LogicalResult FusedOp::verify() {
  if (hasUnrankedTypes(*this))
    return success();
  Block &b = getBody().front();
  if (b.getNumArguments() != getInputs().size())
    return emitOpError("body must take one argument per input");
  auto yield = cast<YieldOp>(b.getTerminator());
  for (Operation &op : b.without_terminator()) {
    // A reduction over all axes may end the chain: its value is the one
    // yielded.
    if (auto r = dyn_cast<ReduceOp>(op); r && !r.getAxis() &&
                                         yield.getValues().size() == 1 &&
                                         yield.getValues()[0] == r.getResult())
      continue;
    if (!isa<AddOp, SubOp, MulOp, DivOp, PowOp, MaxOp, MinOp, UnaryOp,
             ConstantOp>(op))
      return emitOpError("body may hold elementwise ops only (and a "
                         "reduction over all axes that it yields), found ")
             << op.getName();
  }
  if (yield.getValues().size() != 1 ||
      yield.getValues()[0].getType() != getType())
    return emitOpError("body must yield one value of the result type");
  return success();
}

LogicalResult Conv2dKernelAdjointOp::verify() {
  if (hasUnrankedTypes(*this))
    return success();
  auto x = getInput().getType().getShape();
  auto g = getAdjoint().getType().getShape();
  auto k = getType().getShape();
  if (x.size() != 3 || g.size() != 3 || k.size() != 4 || x[1] != g[1] ||
      x[2] != g[2] || k[0] != g[0] || k[1] != x[0] || k[2] % 2 == 0 ||
      k[3] % 2 == 0)
    return emitOpError("needs x [ci, h, w], g [co, h, w] and returns "
                       "[co, ci, kh, kw] with odd kh, kw");
  return success();
}

LogicalResult ReshapeOp::verify() {
  if (hasUnrankedTypes(*this))
    return success();
  if (getType().getNumElements() != getOperand().getType().getNumElements())
    return emitOpError("cannot reshape ")
           << getOperand().getType() << " to " << getType();
  return success();
}

LogicalResult LipschitzGradOp::verify() {
  if (hasUnrankedTypes(*this))
    return success();
  if (getType().getRank() != 2)
    return emitOpError("takes a matrix");
  return success();
}

LogicalResult HalfOp::verify() {
  if (getWhich() != "first" && getWhich() != "second")
    return emitOpError("which must be 'first' or 'second', got '")
           << getWhich() << "'";
  return success();
}

LogicalResult DiffOp::verify() {
  auto in = dyn_cast<RankedTensorType>(getOperand().getType());
  const int64_t axis = static_cast<int64_t>(getAxis());
  if (in && (axis < -1 || axis >= in.getRank()))
    return emitOpError("axis ")
           << axis << " is outside " << getOperand().getType();
  return success();
}

LogicalResult CallOp::verifySymbolUses(SymbolTableCollection &symbols) {
  auto fn = symbols.lookupNearestSymbolFrom<FunctionOpInterface>(
      *this, getCalleeAttr());
  if (!fn)
    return emitOpError("calls @") << getCallee() << ", which is not a function";
  ArrayRef<Type> params = fn.getArgumentTypes(), results = fn.getResultTypes();
  if (params.size() != getOperands().size() || results.size() != 1)
    return emitOpError("@") << getCallee() << " takes " << params.size()
                            << " arguments and returns " << results.size()
                            << " values; the call passes "
                            << getOperands().size() << " and expects one";
  for (auto [p, v] : llvm::zip(params, getOperands()))
    if (!compatibleTypes(p, v.getType()))
      return emitOpError("passes ")
             << v.getType() << " for a parameter of type " << p;
  if (!compatibleTypes(results[0], getType()))
    return emitOpError("expects ")
           << getType() << " from a function returning " << results[0];
  return success();
}

LogicalResult LipschitzOp::verify() {
  if (hasUnrankedTypes(*this))
    return success();
  if (getOperand().getType().getRank() != 2 || getType().getRank() != 0)
    return emitOpError("takes a matrix and returns a scalar");
  return success();
}

} // namespace unroll::ir

#define GET_OP_CLASSES
#include "compiler/dialect/UnrollOps.cpp.inc"
