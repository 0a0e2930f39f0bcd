//===- UnrollOps.td - operations of the unroll dialect -----*- tablegen -*-===//

#ifndef UNROLL_OPS
#define UNROLL_OPS

include "UnrollDialect.td"
include "mlir/IR/EnumAttr.td"
include "mlir/IR/SymbolInterfaces.td"
include "mlir/Interfaces/CallInterfaces.td"
include "mlir/IR/RegionKindInterface.td"
include "mlir/Interfaces/InferTypeOpInterface.td"
include "mlir/Interfaces/SideEffectInterfaces.td"
include "mlir/Interfaces/ControlFlowInterfaces.td"

// Ranked once shapes are inferred; unranked inside generic functions and
// right after they are inlined (see the specialize and infer-shapes passes).
def Unroll_Tensor : TensorOf<[F32]>;

// Result types inferred from the operands; an unranked result is compatible
// with any inferred one until infer-shapes runs.
defvar Unroll_Infers = DeclareOpInterfaceMethods<InferTypeOpInterface>;
defvar Unroll_Compatible = [{
  static bool isCompatibleReturnTypes(::mlir::TypeRange l, ::mlir::TypeRange r);
}];

//===----------------------------------------------------------------------===//
// Enumerated attributes: printed and parsed as keywords (a string is read
// too), anything else is a parse error naming the attribute.
//===----------------------------------------------------------------------===//

def Unroll_Role : I32EnumAttr<"Role", "an input's role", [
    I32EnumAttrCase<"Data", 0, "data">,
    I32EnumAttrCase<"Given", 1, "given">]> {
  let cppNamespace = "::unroll::ir";
}

def Unroll_Binding : I32EnumAttr<"Binding", "a parameter's binding", [
    I32EnumAttrCase<"Shared", 0, "shared">,
    I32EnumAttrCase<"PerLayer", 1, "per_layer">]> {
  let cppNamespace = "::unroll::ir";
}

def Unroll_ConstraintMode : I32EnumAttr<"ConstraintMode",
    "how a descent constraint compares consecutive layers", [
    I32EnumAttrCase<"Difference", 0, "difference">,
    I32EnumAttrCase<"Ratio", 1, "ratio">]> {
  let cppNamespace = "::unroll::ir";
}

def Unroll_Distribution : I32EnumAttr<"Distribution",
    "a distribution of random draws", [
    I32EnumAttrCase<"Normal", 0, "normal">,
    I32EnumAttrCase<"Uniform", 1, "uniform">]> {
  let cppNamespace = "::unroll::ir";
}

//===----------------------------------------------------------------------===//
// Structure
//===----------------------------------------------------------------------===//

def Unroll_AlgorithmOp : Unroll_Op<"algorithm", [Symbol, NoTerminator,
    SingleBlock, NoRegionArguments]> {
  let summary = "an unrolled algorithm: inputs, parameters, state and step";
  let arguments = (ins SymbolNameAttr:$sym_name, StrAttr:$problem,
                       I64Attr:$layers);
  let regions = (region SizedRegion<1>:$body);
  let assemblyFormat = [{
    $sym_name `solves` $problem `layers` `(` $layers `)` attr-dict-with-keyword
    $body
  }];
  let hasVerifier = 1;
}

def Unroll_InputOp : Unroll_Op<"input", [Pure]> {
  let summary = "per-instance data or shared given data of the problem";
  let arguments = (ins StrAttr:$name, Unroll_Role:$role);
  let results = (outs Unroll_Tensor:$result);
  let assemblyFormat = "$role $name attr-dict `:` type($result)";
}

def Unroll_ParamOp : Unroll_Op<"param", [SingleBlockImplicitTerminator<"YieldOp">]> {
  let summary = "a trainable parameter, per layer or shared";
  let description = [{
    The region computes the initial value. A `per_layer` parameter becomes one
    tensor per layer when the algorithm is unrolled (each copy with its
    `layer` attribute); `shared` stays one.
  }];
  let arguments = (ins StrAttr:$name, Unroll_Binding:$binding,
                       OptionalAttr<I64Attr>:$layer);
  let results = (outs Unroll_Tensor:$result);
  let regions = (region SizedRegion<1>:$init);
  let assemblyFormat = "$binding $name attr-dict `:` type($result) $init";
  let hasVerifier = 1;
}

def Unroll_StateOp : Unroll_Op<"state", [SingleBlockImplicitTerminator<"YieldOp">]> {
  let summary = "a state variable of the algorithm and its initial value";
  let description = [{
    A variable of the problem, or with `algorithm` one the algorithm owns
    (a `state` declaration: a momentum point, a dual variable), which the
    objective and the targets do not take. The problem's variables come
    first. The init region may read earlier states' initial values.
  }];
  let arguments = (ins StrAttr:$name, UnitAttr:$random, UnitAttr:$algorithm);
  let results = (outs Unroll_Tensor:$result);
  let regions = (region SizedRegion<1>:$init);
  let assemblyFormat = "$name attr-dict `:` type($result) $init";
  let hasVerifier = 1;
}

def Unroll_StepOp : Unroll_Op<"step", [SingleBlockImplicitTerminator<"YieldOp">]> {
  let summary = "the body of one layer";
  let description = [{
    Takes the state before the layer (one operand per `unroll.state`, bound
    to the block arguments) and yields the state after it, in the same order.
  }];
  let arguments = (ins Variadic<Unroll_Tensor>:$state);
  let regions = (region SizedRegion<1>:$body);
  let assemblyFormat = "`(` $state `)` attr-dict `:` type($state) $body";
  let hasVerifier = 1;
}

def Unroll_LayerOp : Unroll_Op<"layer",
    [SingleBlockImplicitTerminator<"YieldOp">]> {
  let summary = "one explicit layer of an unrolled algorithm";
  let description = [{
    Made by the unroll-layers pass from `unroll.step`: layer `index` (1..L)
    maps the state after layer index-1 to the state after this layer. Its
    body refers to this layer's own copies of `per_layer` parameters.
  }];
  let arguments = (ins I64Attr:$index, Variadic<Unroll_Tensor>:$state);
  let results = (outs Variadic<Unroll_Tensor>:$results);
  let regions = (region SizedRegion<1>:$body);
  let assemblyFormat = [{
    $index `(` $state `)` attr-dict `:` functional-type($state, $results) $body
  }];
  let hasVerifier = 1;
}

def Unroll_GradOp : Unroll_Op<"grad",
    [SingleBlockImplicitTerminator<"YieldOp">, Unroll_Infers]> {
  let extraClassDeclaration = Unroll_Compatible;
  let summary = "gradient of a scalar function with respect to its first argument";
  let description = [{
    The body is the function: its block arguments mirror the operands, and it
    yields a scalar. The result is d(body)/d(first argument), of the first
    operand's type; values the body captures from above are constants. The
    `differentiate` pass replaces the op by explicit IR.
  }];
  let arguments = (ins Variadic<Unroll_Tensor>:$args);
  let results = (outs Unroll_Tensor:$result);
  let regions = (region SizedRegion<1>:$body);
  let assemblyFormat = [{
    `(` $args `)` attr-dict `:` functional-type($args, $result) $body
  }];
  let hasVerifier = 1;
}

def Unroll_CallOp : Unroll_Op<"call",
    [DeclareOpInterfaceMethods<SymbolUserOpInterface>]> {
  let summary = "a call of a DSL function, inlined by the specialize pass";
  let description = [{
    The callee is a `func.func` whose body is generic: its tensor
    arguments may be unranked, so an argument may have any type compatible
    with the parameter's (unlike `func.call`, which requires equal types).
  }];
  let arguments = (ins FlatSymbolRefAttr:$callee,
                       Variadic<Unroll_Tensor>:$operands);
  let results = (outs Unroll_Tensor:$result);
  let assemblyFormat = [{
    $callee `(` $operands `)` attr-dict `:` functional-type($operands, $result)
  }];
}

//===----------------------------------------------------------------------===//
// Training: the objective, targets, loss, constraints, noise
//===----------------------------------------------------------------------===//

def Unroll_ObjectiveOp : Unroll_Op<"objective",
    [SingleBlockImplicitTerminator<"YieldOp">]> {
  let summary = "the problem's objective f as a function of its variables";
  let regions = (region SizedRegion<1>:$body);
  let assemblyFormat = "attr-dict-with-keyword $body";
  let hasVerifier = 1;
}

def Unroll_CompositeOp : Unroll_Op<"composite",
    [SingleBlockImplicitTerminator<"YieldOp">]> {
  let summary = "the objective split for proximal solvers: f = g + w ||y||_1";
  let description = [{
    The body takes the variable and yields g(y) (the smooth part), its
    gradient (explicit after `differentiate`) and the weight w of the l1
    term (`prox = "l1"`; with `prox = "none"` the weight is 0). Classical
    solvers (ISTA, FISTA) for `unroll.target` run from these alone.
  }];
  let arguments = (ins StrAttr:$prox);
  let regions = (region SizedRegion<1>:$body);
  let assemblyFormat = "$prox attr-dict-with-keyword $body";
  let hasVerifier = 1;
}

def Unroll_ProjectionOp : Unroll_Op<"projection",
    [SingleBlockImplicitTerminator<"YieldOp">]> {
  let summary = "the projection onto a problem variable's constraint set";
  let description = [{
    The body maps a value of the problem's variable `on` to its Euclidean
    projection onto the set `set` (`var y : T in box(0, 1)`). Classical
    solvers project their iterates with it; evaluation measures each
    layer's distance to the set.
  }];
  let arguments = (ins StrAttr:$set, StrAttr:$on);
  let regions = (region SizedRegion<1>:$body);
  let assemblyFormat = "$set `on` $on attr-dict-with-keyword $body";
  let hasVerifier = 1;
}

def Unroll_ProximalOp : Unroll_Op<"proximal",
    [SingleBlockImplicitTerminator<"YieldOp">]> {
  let summary = "the proximal operator of the objective's non-smooth part";
  let description = [{
    The body maps a point v and a step t (a scalar) to prox_{t h}(v), for h
    the objective's non-smooth terms c * `of`(y), by the `prox` declared for
    `of` (prox_{t c of}). Classical solvers step with it, after the
    gradient step on the smooth part of the unroll.composite.
  }];
  let arguments = (ins StrAttr:$of);
  let regions = (region SizedRegion<1>:$body);
  let assemblyFormat = "$of attr-dict-with-keyword $body";
  let hasVerifier = 1;
}

def Unroll_ComposedTermOp : Unroll_Op<"composed_term",
    [SingleBlockImplicitTerminator<"YieldOp">]> {
  let summary = "a non-smooth term c * h(A y + b) of the objective";
  let description = [{
    A term of the objective that applies a function `of` with a declared
    prox to an affine map of the problem's variable, such as total variation
    `norm1(diff(y))`. `map` takes y and yields A y + b; `adjoint` takes y
    and z (of the map's shape) and yields A^T z (the gradient of
    <A y + b, z> in y, explicit after `differentiate`); `prox` maps a point
    v of the map's shape and a step t to prox_{t c h}(v), by the `prox`
    declared for `of`.
    Primal-dual solvers for `unroll.target` step through the term with
    these; the term is not part of the unroll.composite's smooth part.
  }];
  let arguments = (ins StrAttr:$of);
  let regions = (region SizedRegion<1>:$map, SizedRegion<1>:$adjoint,
                        SizedRegion<1>:$prox);
  let assemblyFormat = [{
    $of attr-dict-with-keyword `map` $map `adjoint` $adjoint `prox` $prox
  }];
  let hasVerifier = 1;
}

def Unroll_TargetOp : Unroll_Op<"target"> {
  let summary = "the optimum of the problem, computed by a classical solver";
  let arguments = (ins StrAttr:$name, StrAttr:$solver,
                       OptionalAttr<F64Attr>:$tol, OptionalAttr<I64Attr>:$iters);
  let results = (outs Unroll_Tensor:$result);
  let assemblyFormat = "$name `solver` $solver attr-dict `:` type($result)";
}

def Unroll_LossOp : Unroll_Op<"loss",
    [SingleBlockImplicitTerminator<"YieldOp">]> {
  let summary = "the training loss, a function of the final state";
  let regions = (region SizedRegion<1>:$body);
  let assemblyFormat = "attr-dict-with-keyword $body";
  let hasVerifier = 1;
}

def Unroll_ConstraintOp : Unroll_Op<"constraint",
    [SingleBlockImplicitTerminator<"YieldOp">]> {
  let summary = "a descent constraint on every layer";
  let description = [{
    The body computes the measure m(q_l) of the quantity `on` at one layer.
    The constraint at layer l is m(q_l) - (1 - eps) m(q_{l-1}) <= 0
    (`difference`) or m(q_l) / m(q_{l-1}) - (1 - eps) <= 0 (`ratio`).
  }];
  let arguments = (ins StrAttr:$form, StrAttr:$on, F64Attr:$eps,
                       Unroll_ConstraintMode:$mode);
  let regions = (region SizedRegion<1>:$body);
  let assemblyFormat =
      "$form `on` $on `eps` $eps `mode` $mode attr-dict-with-keyword $body";
  let hasVerifier = 1;
}

def Unroll_NoiseOp : Unroll_Op<"noise",
    [SingleBlockImplicitTerminator<"YieldOp">]> {
  let summary = "training-only noise added to a state variable after each layer";
  let description = [{
    The body takes the state at the layer (unroll.layer_index is the layer)
    and yields the distribution's two scalar parameters.
  }];
  let arguments = (ins StrAttr:$on, Unroll_Distribution:$distribution);
  let regions = (region SizedRegion<1>:$body);
  let assemblyFormat = "$distribution `on` $on attr-dict-with-keyword $body";
  let hasVerifier = 1;
}

def Unroll_ProbeOp : Unroll_Op<"probe"> {
  let summary = "names a step result that training reads at every layer";
  let arguments = (ins StrAttr:$name, Unroll_Tensor:$value);
  let assemblyFormat = "$name $value attr-dict `:` type($value)";
}

def Unroll_FusedOp : Unroll_Op<"fused", [IsolatedFromAbove,
    SingleBlockImplicitTerminator<"YieldOp">]> {
  let summary = "a chain of elementwise ops (and a final reduction) for the kernel generator";
  let description = [{
    Made by the fuse-elementwise pass: the body computes the result from the
    operands (bound to its block arguments) with elementwise ops only, so it
    can become one generated kernel. In the bodies of losses and descent
    constraints the chain may end in a reduction over all axes, which the
    body yields (a per-instance measure such as ||y - y*||).
  }];
  let arguments = (ins Variadic<Unroll_Tensor>:$inputs);
  let results = (outs Unroll_Tensor:$result);
  let regions = (region SizedRegion<1>:$body);
  let assemblyFormat = [{
    `(` $inputs `)` attr-dict `:` functional-type($inputs, $result) $body
  }];
  let hasVerifier = 1;
}

def Unroll_YieldOp : Unroll_Op<"yield", [Pure, Terminator,
    ParentOneOf<["ParamOp", "StateOp", "StepOp", "LayerOp", "GradOp",
                 "ObjectiveOp", "LossOp", "ConstraintOp", "NoiseOp",
                 "FusedOp", "CompositeOp", "ProjectionOp", "ProximalOp",
                 "ComposedTermOp"]>]> {
  let summary = "ends a param/state initialiser, a step or a layer";
  let arguments = (ins Variadic<Unroll_Tensor>:$values);
  let builders = [OpBuilder<(ins), [{ /* nothing */ }]>];
  let assemblyFormat = "($values^ `:` type($values))? attr-dict";
}

def Unroll_LayerIndexOp : Unroll_Op<"layer_index", [Pure]> {
  let summary = "the index l of the layer being computed, as a scalar";
  let results = (outs Unroll_Tensor:$result);
  let assemblyFormat = "attr-dict `:` type($result)";
}

//===----------------------------------------------------------------------===//
// Values and distributions
//===----------------------------------------------------------------------===//

def Unroll_ConstantOp : Unroll_Op<"constant", [Pure]> {
  let summary = "a scalar constant";
  let arguments = (ins F32Attr:$value);
  let results = (outs Unroll_Tensor:$result);
  let assemblyFormat = "$value attr-dict `:` type($result)";
  let hasVerifier = 1;
}

def Unroll_FillOp : Unroll_Op<"fill", [Pure]> {
  let summary = "a tensor of the result type filled with a scalar";
  let arguments = (ins Unroll_Tensor:$value);
  let results = (outs Unroll_Tensor:$result);
  let assemblyFormat = "$value attr-dict `:` type($value) `->` type($result)";
  let hasVerifier = 1;
}

def Unroll_RandomOp : Unroll_Op<"random"> {
  let summary = "a sample of the result type from a distribution";
  let description = [{
    `normal` draws N(a, b^2), `uniform` draws U(a, b), elementwise.
  }];
  let arguments = (ins Unroll_Distribution:$distribution, Unroll_Tensor:$a,
                       Unroll_Tensor:$b);
  let results = (outs Unroll_Tensor:$result);
  let assemblyFormat = [{
    $distribution `(` $a `,` $b `)` attr-dict `:` type($a) `,` type($b) `->`
    type($result)
  }];
  let hasVerifier = 1;
}

def Unroll_EyeOp : Unroll_Op<"eye", [Pure]> {
  let summary = "an identity matrix";
  let results = (outs Unroll_Tensor:$result);
  let assemblyFormat = "attr-dict `:` type($result)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Math
//===----------------------------------------------------------------------===//

class Unroll_BinaryOp<string mnemonic> : Unroll_Op<mnemonic,
    [Pure, Unroll_Infers]> {
  let extraClassDeclaration = Unroll_Compatible;
  let summary = "elementwise " # mnemonic # " with broadcasting";
  let arguments = (ins Unroll_Tensor:$lhs, Unroll_Tensor:$rhs);
  let results = (outs Unroll_Tensor:$result);
  let assemblyFormat = [{
    $lhs `,` $rhs attr-dict `:` type($lhs) `,` type($rhs) `->` type($result)
  }];
}

def Unroll_AddOp : Unroll_BinaryOp<"add">;
def Unroll_SubOp : Unroll_BinaryOp<"sub">;
def Unroll_MulOp : Unroll_BinaryOp<"mul">;
def Unroll_DivOp : Unroll_BinaryOp<"div">;
def Unroll_PowOp : Unroll_BinaryOp<"pow">;
def Unroll_MaxOp : Unroll_BinaryOp<"max">;
def Unroll_MinOp : Unroll_BinaryOp<"min">;

def Unroll_UnaryOp : Unroll_Op<"unary", [Pure, Unroll_Infers]> {
  let extraClassDeclaration = Unroll_Compatible;
  let summary = "an elementwise function: neg, abs, sign, relu, exp, ...";
  let arguments = (ins StrAttr:$fn, Unroll_Tensor:$operand);
  let results = (outs Unroll_Tensor:$result);
  let assemblyFormat = [{
    $fn $operand attr-dict `:` custom<SameOrResult>(type($operand), type($result))
  }];
  let hasVerifier = 1;
}

def Unroll_MatmulOp : Unroll_Op<"matmul",
    [Pure, Unroll_Infers]> {
  let extraClassDeclaration = Unroll_Compatible;
  let summary = "matrix product, as the DSL's @";
  let arguments = (ins Unroll_Tensor:$lhs, Unroll_Tensor:$rhs);
  let results = (outs Unroll_Tensor:$result);
  let assemblyFormat = [{
    $lhs `,` $rhs attr-dict `:` type($lhs) `,` type($rhs) `->` type($result)
  }];
}

def Unroll_TransposeOp : Unroll_Op<"transpose",
    [Pure, Unroll_Infers]> {
  let extraClassDeclaration = Unroll_Compatible;
  let summary = "swaps the last two axes";
  let arguments = (ins Unroll_Tensor:$operand);
  let results = (outs Unroll_Tensor:$result);
  let assemblyFormat = "$operand attr-dict `:` type($operand) `->` type($result)";
}

def Unroll_ReduceOp : Unroll_Op<"reduce", [Pure, Unroll_Infers]> {
  let extraClassDeclaration = Unroll_Compatible;
  let summary = "sum, mean, norm, norm1 or sqnorm, over all or one axis";
  let arguments = (ins StrAttr:$kind, Unroll_Tensor:$operand,
                       OptionalAttr<I64Attr>:$axis);
  let results = (outs Unroll_Tensor:$result);
  let assemblyFormat = "$kind $operand attr-dict `:` type($operand) `->` type($result)";
  let hasVerifier = 1;
}

def Unroll_OuterOp : Unroll_Op<"outer",
    [Pure, Unroll_Infers]> {
  let extraClassDeclaration = Unroll_Compatible;
  let summary = "outer product of two vectors";
  let arguments = (ins Unroll_Tensor:$lhs, Unroll_Tensor:$rhs);
  let results = (outs Unroll_Tensor:$result);
  let assemblyFormat = [{
    $lhs `,` $rhs attr-dict `:` type($lhs) `,` type($rhs) `->` type($result)
  }];
}

def Unroll_ExpandOp : Unroll_Op<"expand", [Pure]> {
  let summary = "repeats a tensor along a new axis (inverse of a reduction)";
  let arguments = (ins Unroll_Tensor:$operand, I64Attr:$axis);
  let results = (outs Unroll_Tensor:$result);
  let assemblyFormat = "$operand attr-dict `:` type($operand) `->` type($result)";
  let hasVerifier = 1;
}

def Unroll_SumToOp : Unroll_Op<"sum_to", [Pure]> {
  let summary = "sums a broadcast result back to the shape it came from";
  let arguments = (ins Unroll_Tensor:$operand);
  let results = (outs Unroll_Tensor:$result);
  let assemblyFormat = "$operand attr-dict `:` type($operand) `->` type($result)";
  let hasVerifier = 1;
}

def Unroll_ConcatOp : Unroll_Op<"concat",
    [Pure, Unroll_Infers]> {
  let extraClassDeclaration = Unroll_Compatible;
  let summary = "joins two tensors along an axis";
  let arguments = (ins Unroll_Tensor:$lhs, Unroll_Tensor:$rhs, I64Attr:$axis);
  let results = (outs Unroll_Tensor:$result);
  let assemblyFormat = [{
    $lhs `,` $rhs attr-dict `:` type($lhs) `,` type($rhs) `->` type($result)
  }];
}

def Unroll_SliceOp : Unroll_Op<"slice", [Pure]> {
  let summary = "the entries start..start+size-1 along an axis";
  let arguments = (ins Unroll_Tensor:$operand, I64Attr:$axis, I64Attr:$start);
  let results = (outs Unroll_Tensor:$result);
  let assemblyFormat = "$operand attr-dict `:` type($operand) `->` type($result)";
  let hasVerifier = 1;
}

def Unroll_HalfOp : Unroll_Op<"half", [Pure, Unroll_Infers]> {
  let extraClassDeclaration = Unroll_Compatible;
  let summary = "the first or second half of a tensor along axis 0";
  let description = [{
    Made by IR generation for `first_half` and `second_half`, whose slice
    bounds depend on the operand's shape; infer-shapes turns it into an
    `unroll.slice` once that shape is known.
  }];
  let arguments = (ins StrAttr:$which, Unroll_Tensor:$operand);
  let results = (outs Unroll_Tensor:$result);
  let assemblyFormat = "$which $operand attr-dict `:` type($operand) `->` type($result)";
  let hasVerifier = 1;
}

def Unroll_DiffOp : Unroll_Op<"diff", [Pure, Unroll_Infers]> {
  let extraClassDeclaration = Unroll_Compatible;
  let summary = "forward differences x[i + 1] - x[i] along an axis";
  let description = [{
    Made by IR generation for `diff`, whose slice bounds depend on the
    operand's shape (axis -1: the last); infer-shapes turns it into two
    `unroll.slice`s and an `unroll.sub` once that shape is known.
  }];
  let arguments = (ins Unroll_Tensor:$operand, I64Attr:$axis);
  let results = (outs Unroll_Tensor:$result);
  let assemblyFormat = "$operand attr-dict `:` type($operand) `->` type($result)";
  let hasVerifier = 1;
}

def Unroll_AppendOnesOp : Unroll_Op<"append_ones", [Pure, Unroll_Infers]> {
  let extraClassDeclaration = Unroll_Compatible;
  let summary = "appends a column of ones along the last axis (a bias input)";
  let description = [{
    Made by IR generation for `append_ones`; infer-shapes turns it into an
    `unroll.fill` and an `unroll.concat` once the operand's shape is known.
  }];
  let arguments = (ins Unroll_Tensor:$operand);
  let results = (outs Unroll_Tensor:$result);
  let assemblyFormat = "$operand attr-dict `:` type($operand) `->` type($result)";
}

def Unroll_Squeeze2dOp : Unroll_Op<"squeeze2d",
    [Pure, Unroll_Infers]> {
  let extraClassDeclaration = Unroll_Compatible;
  let summary = "[c, h, w] -> [4c, h/2, w/2]: 2x2 pixel blocks into channels";
  let arguments = (ins Unroll_Tensor:$operand);
  let results = (outs Unroll_Tensor:$result);
  let assemblyFormat = "$operand attr-dict `:` type($operand) `->` type($result)";
}

def Unroll_Unsqueeze2dOp : Unroll_Op<"unsqueeze2d",
    [Pure, Unroll_Infers]> {
  let extraClassDeclaration = Unroll_Compatible;
  let summary = "[4c, h, w] -> [c, 2h, 2w]: the inverse of squeeze2d";
  let arguments = (ins Unroll_Tensor:$operand);
  let results = (outs Unroll_Tensor:$result);
  let assemblyFormat = "$operand attr-dict `:` type($operand) `->` type($result)";
}

def Unroll_Conv2dOp : Unroll_Op<"conv2d",
    [Pure, Unroll_Infers]> {
  let extraClassDeclaration = Unroll_Compatible;
  let summary = "2-D convolution, stride 1, zero 'same' padding";
  let arguments = (ins Unroll_Tensor:$input, Unroll_Tensor:$kernel);
  let results = (outs Unroll_Tensor:$result);
  let assemblyFormat = [{
    $input `,` $kernel attr-dict `:` type($input) `,` type($kernel) `->`
    type($result)
  }];
}

def Unroll_Conv2dTransposeOp : Unroll_Op<"conv2d_transpose",
    [Pure, Unroll_Infers]> {
  let extraClassDeclaration = Unroll_Compatible;
  let summary = "the adjoint of conv2d in its input";
  let description = [{
    `r[c, i, j] = sum_{o, u, v} k[o, c, u, v] g[o, i - u + kh/2, j - v + kw/2]`
    (zero outside the image): what reverse mode sends back through
    `conv2d(x, k)` to x.
  }];
  let arguments = (ins Unroll_Tensor:$input, Unroll_Tensor:$kernel);
  let results = (outs Unroll_Tensor:$result);
  let assemblyFormat = [{
    $input `,` $kernel attr-dict `:` type($input) `,` type($kernel) `->`
    type($result)
  }];
}

def Unroll_Conv2dKernelAdjointOp : Unroll_Op<"conv2d_kernel_adjoint", [Pure]> {
  let summary = "the adjoint of conv2d in its kernel";
  let description = [{
    `r[o, c, u, v] = sum_{i, j} g[o, i, j] x[c, i + u - kh/2, j + v - kw/2]`
    for the input x [c, h, w] and the result's adjoint g [o, h, w]; the
    result type [o, c, kh, kw] gives the kernel size.
  }];
  let arguments = (ins Unroll_Tensor:$input, Unroll_Tensor:$adjoint);
  let results = (outs Unroll_Tensor:$result);
  let assemblyFormat = [{
    $input `,` $adjoint attr-dict `:` type($input) `,` type($adjoint) `->`
    type($result)
  }];
  let hasVerifier = 1;
}

def Unroll_ReshapeOp : Unroll_Op<"reshape", [Pure]> {
  let summary = "the same elements, row-major, in another shape";
  let arguments = (ins Unroll_Tensor:$operand);
  let results = (outs Unroll_Tensor:$result);
  let assemblyFormat = "$operand attr-dict `:` type($operand) `->` type($result)";
  let hasVerifier = 1;
}

def Unroll_Conv1x1Op : Unroll_Op<"conv1x1",
    [Pure, Unroll_Infers]> {
  let extraClassDeclaration = Unroll_Compatible;
  let summary = "mixes channels with a matrix at every pixel";
  let arguments = (ins Unroll_Tensor:$input, Unroll_Tensor:$weight);
  let results = (outs Unroll_Tensor:$result);
  let assemblyFormat = [{
    $input `,` $weight attr-dict `:` type($input) `,` type($weight) `->`
    type($result)
  }];
}

def Unroll_StopGradientOp : Unroll_Op<"stop_gradient",
    [Pure, Unroll_Infers]> {
  let extraClassDeclaration = Unroll_Compatible;
  let summary = "its operand, through which no gradient flows";
  let description = [{
    The identity forward; backward, its adjoint is zero, both in
    compile-time differentiation (`grad`) and in training, which does not
    differentiate the parameters' loss through it. Noise scales are
    wrapped in it: the noise is an exploration device, not part of the
    model.
  }];
  let arguments = (ins Unroll_Tensor:$operand);
  let results = (outs Unroll_Tensor:$result);
  let assemblyFormat = [{
    $operand attr-dict `:` custom<SameOrResult>(type($operand), type($result))
  }];
}

def Unroll_InverseOp : Unroll_Op<"inverse", [Pure, Unroll_Infers]> {
  let extraClassDeclaration = Unroll_Compatible;
  let summary = "inverse of a square matrix";
  let arguments = (ins Unroll_Tensor:$operand);
  let results = (outs Unroll_Tensor:$result);
  let assemblyFormat = [{
    $operand attr-dict `:` custom<SameOrResult>(type($operand), type($result))
  }];
  let hasVerifier = 1;
}

def Unroll_LogSumExpOp : Unroll_Op<"logsumexp", [Pure, Unroll_Infers]> {
  let extraClassDeclaration = Unroll_Compatible;
  let summary = "log of the sum of exponentials along an axis";
  let arguments = (ins Unroll_Tensor:$operand, I64Attr:$axis);
  let results = (outs Unroll_Tensor:$result);
  let assemblyFormat = "$operand attr-dict `:` type($operand) `->` type($result)";
  let hasVerifier = 1;
}

def Unroll_SoftmaxOp : Unroll_Op<"softmax", [Pure, Unroll_Infers]> {
  let extraClassDeclaration = Unroll_Compatible;
  let summary = "softmax along an axis";
  let arguments = (ins Unroll_Tensor:$operand, I64Attr:$axis);
  let results = (outs Unroll_Tensor:$result);
  let assemblyFormat = [{
    $operand attr-dict `:` custom<SameOrResult>(type($operand), type($result))
  }];
  let hasVerifier = 1;
}

def Unroll_GraphFilterOp : Unroll_Op<"graph_filter", [Pure, Unroll_Infers]> {
  let extraClassDeclaration = Unroll_Compatible;
  let summary = "polynomial graph filter: sum_k h_k S^k x";
  let description = [{
    S is the graph shift operator [n, n]; x has one row per node (axis 0);
    h holds the K+1 taps.
  }];
  let arguments = (ins Unroll_Tensor:$shift, Unroll_Tensor:$signal,
                       Unroll_Tensor:$taps);
  let results = (outs Unroll_Tensor:$result);
  let assemblyFormat = [{
    $shift `,` $signal `,` $taps attr-dict `:` type($shift) `,` type($signal)
    `,` type($taps) `->` type($result)
  }];
  let hasVerifier = 1;
}

def Unroll_MinibatchOp : Unroll_Op<"minibatch", [Unroll_Infers]> {
  let extraClassDeclaration = Unroll_Compatible;
  let summary = "a fresh random sample of `size` along axis 1, shared by all operands";
  let arguments = (ins Variadic<Unroll_Tensor>:$operands, I64Attr:$size);
  let results = (outs Variadic<Unroll_Tensor>:$results);
  let assemblyFormat = [{
    $operands attr-dict `:` functional-type($operands, $results)
  }];
  let hasVerifier = 1;
}

def Unroll_LipschitzOp : Unroll_Op<"lipschitz", [Pure, Unroll_Infers]> {
  let extraClassDeclaration = Unroll_Compatible;
  let summary = "the squared spectral norm ||D||_2^2 of a matrix";
  let arguments = (ins Unroll_Tensor:$operand);
  let results = (outs Unroll_Tensor:$result);
  let assemblyFormat = "$operand attr-dict `:` type($operand) `->` type($result)";
  let hasVerifier = 1;
}

def Unroll_LipschitzGradOp : Unroll_Op<"lipschitz_grad",
    [Pure, Unroll_Infers]> {
  let extraClassDeclaration = Unroll_Compatible;
  let summary = "the gradient of lipschitz(D): 2 D v v^T, v the top right singular vector";
  let arguments = (ins Unroll_Tensor:$operand);
  let results = (outs Unroll_Tensor:$result);
  let assemblyFormat = [{
    $operand attr-dict `:` custom<SameOrResult>(type($operand), type($result))
  }];
  let hasVerifier = 1;
}

#endif // UNROLL_OPS
