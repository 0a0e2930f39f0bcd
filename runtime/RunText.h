#pragma once
// Numbers and durations as training and evaluation print them.

#include <string>
#include <vector>

namespace unroll::runtime {

/// `v` with `prec` significant digits.
std::string fmt(double v, int prec = 3);
/// Seconds as "42s", "3m07s" or "2h05m"; "?" if not a duration.
std::string duration(double s);
/// The values with two significant digits, each after a space.
std::string row(const std::vector<double> &v);

} // namespace unroll::runtime
