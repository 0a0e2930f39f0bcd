#include "dsl/Types.h"

#include "dsl/AST.h"

#include <algorithm>
#include <cassert>

namespace unroll::dsl {

namespace {
constexpr size_t kMaxTerms = 32;

long long checkedAdd(long long a, long long b) {
  long long r;
  if (__builtin_add_overflow(a, b, &r))
    throw DimError("its value overflows 64-bit integers");
  return r;
}
long long checkedMul(long long a, long long b) {
  long long r;
  if (__builtin_mul_overflow(a, b, &r))
    throw DimError("its value overflows 64-bit integers");
  return r;
}
} // namespace

Dim Dim::constant(long long v) {
  Dim d;
  if (v != 0)
    d.terms_[{}] = v;
  return d;
}

Dim Dim::symbol(const std::string &name) {
  Dim d;
  d.terms_[{name}] = 1;
  return d;
}

bool Dim::isConstant() const {
  return terms_.empty() ||
         (terms_.size() == 1 && terms_.begin()->first.empty());
}

long long Dim::value() const {
  assert(isConstant() && "value() of a symbolic dimension");
  return terms_.empty() ? 0 : terms_.begin()->second;
}

void Dim::addTerm(const Monomial &m, long long c) {
  long long v = checkedAdd(terms_[m], c);
  if (v == 0)
    terms_.erase(m);
  else
    terms_[m] = v;
  if (terms_.size() > kMaxTerms)
    throw DimError("dimension expression is too complex");
}

Dim Dim::operator+(const Dim &o) const {
  Dim r = *this;
  for (auto &[m, c] : o.terms_)
    r.addTerm(m, c);
  return r;
}

Dim Dim::operator-(const Dim &o) const { return *this + o * Dim::constant(-1); }

Dim Dim::operator*(const Dim &o) const {
  Dim r;
  for (auto &[m1, c1] : terms_)
    for (auto &[m2, c2] : o.terms_) {
      Monomial m = m1;
      m.insert(m.end(), m2.begin(), m2.end());
      std::sort(m.begin(), m.end());
      if (m.size() > 8)
        throw DimError("dimension expression is too complex");
      r.addTerm(m, checkedMul(c1, c2));
    }
  return r;
}

Dim Dim::divide(long long k) const {
  assert(k != 0 && "division by zero must be rejected by the caller");
  bool exact = true;
  for (auto &[m, c] : terms_)
    exact &= c % k == 0;
  if (exact) {
    Dim r;
    for (auto &[m, c] : terms_)
      r.terms_[m] = c / k;
    return r;
  }
  if (isConstant())
    throw DimError("dimension " + str() + " is not divisible by " +
                   std::to_string(k));
  return Dim::symbol("(" + str() + ")/" + std::to_string(k));
}

Dim Dim::substitute(const std::map<std::string, Dim> &env) const {
  if (env.empty())
    return *this;
  Dim r;
  for (auto &[m, c] : terms_) {
    Dim term = Dim::constant(c);
    for (const std::string &s : m) {
      auto it = env.find(s);
      term = term * (it == env.end() ? Dim::symbol(s) : it->second);
    }
    r = r + term;
  }
  return r;
}

std::string Dim::str() const {
  if (terms_.empty())
    return "0";
  std::string out;
  // Symbolic terms first, constant last: "features + 1".
  auto emit = [&](const Monomial &m, long long c) {
    bool neg = c < 0;
    // Unsigned: the magnitude of the most negative coefficient.
    unsigned long long a = neg ? 0ULL - static_cast<unsigned long long>(c)
                               : static_cast<unsigned long long>(c);
    if (out.empty())
      out += neg ? "-" : "";
    else
      out += neg ? " - " : " + ";
    std::string body;
    for (size_t i = 0; i < m.size(); ++i)
      body += (i ? "*" : "") + m[i];
    if (m.empty())
      out += std::to_string(a);
    else if (a == 1)
      out += body;
    else
      out += std::to_string(a) + "*" + body;
  };
  for (auto &[m, c] : terms_)
    if (!m.empty())
      emit(m, c);
  auto it = terms_.find({});
  if (it != terms_.end())
    emit({}, it->second);
  return out;
}

std::string Type::str() const {
  switch (kind) {
  case Kind::Error:
    return "<error>";
  case Kind::Any:
    return "any";
  case Kind::Int:
    return "int";
  case Kind::Dist:
    return "distribution";
  case Kind::Func:
    return "function";
  case Kind::Module:
    return "module";
  case Kind::Layered:
    return "layered " + elems[0].str();
  case Kind::Tuple: {
    std::string s = "(";
    for (size_t i = 0; i < elems.size(); ++i)
      s += (i ? ", " : "") + elems[i].str();
    return s + ")";
  }
  case Kind::Tensor: {
    if (shape.empty())
      return "scalar";
    std::string s = shape.size() == 1   ? "vec["
                    : shape.size() == 2 ? "mat["
                                        : "tensor[";
    for (size_t i = 0; i < shape.size(); ++i)
      s += (i ? ", " : "") + shape[i].str();
    return s + "]";
  }
  }
  return "?";
}

} // namespace unroll::dsl
