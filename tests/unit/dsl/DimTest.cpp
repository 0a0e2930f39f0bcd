#include "dsl/Types.h"

#include <catch2/catch.hpp>

using namespace unroll::dsl;

TEST_CASE("dims: symbolic arithmetic normalises", "[dims]") {
  Dim f = Dim::symbol("features");
  Dim one = Dim::constant(1);
  CHECK((f + one).str() == "features + 1");
  CHECK((one + f) == (f + one));
  CHECK(((f + one) * Dim::constant(2)).str() == "2*features + 2");
  CHECK((f - f).str() == "0");
  CHECK((Dim::symbol("c") * Dim::symbol("h")).str() == "c*h");
}

TEST_CASE("dims: substitution evaluates bound symbols", "[dims]") {
  Dim d = Dim::symbol("p") * Dim::constant(2) + Dim::symbol("q");
  Dim v = d.substitute({{"p", Dim::constant(3)}, {"q", Dim::constant(4)}});
  REQUIRE(v.isConstant());
  CHECK(v.value() == 10);
  CHECK(d.substitute({{"p", Dim::constant(3)}}).str() == "q + 6");
}

TEST_CASE("dims: division is exact or opaque", "[dims]") {
  CHECK((Dim::symbol("c") * Dim::constant(4)).divide(2).str() == "2*c");
  CHECK(Dim::symbol("c").divide(2).str() == "(c)/2");
  CHECK(Dim::symbol("c").divide(2) == Dim::symbol("c").divide(2));
  CHECK_THROWS_AS(Dim::constant(7).divide(2), DimError);
  CHECK(Dim::constant(28).divide(2).value() == 14);
}

TEST_CASE("dims: overflow is an error, not UB", "[dims]") {
  Dim big = Dim::constant(1LL << 62);
  CHECK_THROWS_AS(big * Dim::constant(4), DimError);
  CHECK_THROWS_AS(big + big, DimError);
}

TEST_CASE("types print in the language's own syntax", "[dims]") {
  CHECK(Type::scalar().str() == "scalar");
  CHECK(Type::tensor({Dim::symbol("d")}).str() == "vec[d]");
  CHECK(Type::tensor({Dim::symbol("p"), Dim::symbol("d")}).str() ==
        "mat[p, d]");
  CHECK(Type::tensor({Dim::constant(1), Dim::constant(2), Dim::constant(3)})
            .str() == "tensor[1, 2, 3]");
  CHECK(Type::layered(Type::tensor({Dim::symbol("d")})).str() ==
        "layered vec[d]");
}
