//===- UnrollDialect.td - the unroll dialect ---------------*- tablegen -*-===//
//
// The dialect of unrolled algorithms: problem inputs, trainable parameters,
// state, the step body, and the tensor math the DSL offers.
//
//===----------------------------------------------------------------------===//

#ifndef UNROLL_DIALECT
#define UNROLL_DIALECT

include "mlir/IR/OpBase.td"

def Unroll_Dialect : Dialect {
  let name = "unroll";
  let summary = "Unrolled optimisation algorithms";
  let description = [{
    An `unroll.algorithm` holds the inputs of the problem it solves
    (`unroll.input`), its trainable parameters (`unroll.param`), the initial
    state (`unroll.state`) and one `unroll.step`: the body of a layer. Values
    are ranked tensors of f32 with static shapes; scalars are tensor<f32>.
  }];
  let cppNamespace = "::unroll::ir";
}

class Unroll_Op<string mnemonic, list<Trait> traits = []>
    : Op<Unroll_Dialect, mnemonic, traits>;

#endif // UNROLL_DIALECT
