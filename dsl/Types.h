#pragma once
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace unroll::dsl {

struct FnDecl;
struct ModuleDecl;
struct ProblemInfo;
struct ModuleInst;
struct Scope;

/// The largest dimension, and element count, of a tensor: the exported
/// code and Halide index with 32-bit extents.
constexpr long long kMaxDimension = 2147483647;

/// Raised by Dim arithmetic that cannot be represented (overflow, too many
/// terms, inexact division of a constant). Sema turns it into a diagnostic.
class DimError : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// A tensor dimension: a polynomial with integer coefficients over symbolic
/// sizes (problem parameters such as `p`, `features`). Keeping dimensions
/// symbolic lets messages say `mat[p, d]` rather than `mat[1024, 1228]`.
class Dim {
public:
  using Monomial = std::vector<std::string>; // sorted symbol names
  Dim() = default;
  static Dim constant(long long v);
  static Dim symbol(const std::string &name);

  bool isConstant() const;
  /// The value of a constant dimension.
  long long value() const;
  bool operator==(const Dim &o) const { return terms_ == o.terms_; }
  bool operator!=(const Dim &o) const { return !(*this == o); }

  Dim operator+(const Dim &o) const;
  Dim operator-(const Dim &o) const;
  Dim operator*(const Dim &o) const;
  /// Exact division by a constant: each coefficient must divide evenly;
  /// otherwise the quotient becomes an opaque symbol such as `(h)/3`.
  Dim divide(long long k) const;
  /// Replaces the symbols named in `env` by their values.
  Dim substitute(const std::map<std::string, Dim> &env) const;
  std::string str() const;

private:
  void addTerm(const Monomial &m, long long c);
  std::map<Monomial, long long> terms_; // no zero coefficients stored
};

/// The type of a DSL value, computed by Sema.
struct Type {
  enum class Kind {
    Error,   // already reported; silences follow-on errors
    Any,     // unknown until the enclosing function is called
    Int,     // a compile-time integer (sizes, layer indices)
    Tensor,  // a float tensor of the given shape; rank 0 is a scalar
    Dist,    // a distribution or fill used to initialise (normal(0, 1))
    Func,    // a function value (passed to grad, grad_norm, ...)
    Module,  // an instance of a stdlib/user module (flow, mlp)
    Layered, // a value with one instance per layer (state seen from train)
    Tuple,   // several results (minibatch)
  };
  Kind kind = Kind::Error;
  std::vector<Dim> shape;     // Tensor
  Dim intValue;               // Int (may be symbolic)
  const FnDecl *fn = nullptr; // Func: user function ...
  Scope *fnScope = nullptr;   //   ... and the scope it was defined in,
  ModuleInst *self = nullptr; //   ... and its module instance (methods)
  const ProblemInfo *objective = nullptr; // Func: a problem's objective
  ModuleInst *module = nullptr;           // Module
  std::vector<Type> elems;                // Tuple; Layered has one element

  static Type error() { return Type{}; }
  static Type any() { return make(Kind::Any); }
  static Type integer(Dim v) {
    Type t = make(Kind::Int);
    t.intValue = std::move(v);
    return t;
  }
  static Type tensor(std::vector<Dim> shape) {
    Type t = make(Kind::Tensor);
    t.shape = std::move(shape);
    return t;
  }
  static Type scalar() { return tensor({}); }
  static Type dist() { return make(Kind::Dist); }
  static Type layered(Type elem) {
    Type t = make(Kind::Layered);
    t.elems.push_back(std::move(elem));
    return t;
  }
  static Type make(Kind k) {
    Type t;
    t.kind = k;
    return t;
  }

  bool isError() const { return kind == Kind::Error; }
  /// Error or Any: no further checks are possible.
  bool isUnknown() const { return kind == Kind::Error || kind == Kind::Any; }
  bool isTensor() const { return kind == Kind::Tensor; }
  bool isScalar() const { return kind == Kind::Tensor && shape.empty(); }
  /// Tensors and ints (ints promote to scalars in arithmetic).
  bool isNumeric() const { return kind == Kind::Tensor || kind == Kind::Int; }
  size_t rank() const { return shape.size(); }
  /// vec[d], mat[p, d], tensor[a, b, c], scalar, int, ...
  std::string str() const;
};

} // namespace unroll::dsl
