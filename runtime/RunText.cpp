#include "runtime/RunText.h"

#include <cmath>
#include <cstdint>
#include <iomanip>
#include <sstream>

namespace unroll::runtime {

std::string fmt(double v, int prec) {
  std::ostringstream os;
  os << std::setprecision(prec) << v;
  return os.str();
}

std::string duration(double s) {
  if (!std::isfinite(s) || s < 0)
    return "?";
  int64_t t = static_cast<int64_t>(s + 0.5);
  std::ostringstream os;
  if (t >= 3600)
    os << t / 3600 << "h" << std::setw(2) << std::setfill('0')
       << (t % 3600) / 60 << "m";
  else if (t >= 60)
    os << t / 60 << "m" << std::setw(2) << std::setfill('0') << t % 60 << "s";
  else
    os << t << "s";
  return os.str();
}

std::string row(const std::vector<double> &v) {
  std::string s;
  for (double x : v)
    s += " " + fmt(x, 2);
  return s;
}

} // namespace unroll::runtime
