#include "runtime/Report.h"

#include "abi/Files.h"
#include "runtime/Safetensors.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <sstream>
#include <vector>

namespace unroll::runtime {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

struct Series {
  std::string name;
  std::vector<double> xs, ys;
  bool dashed = false;
};

const char *kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e",
                         "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

std::string esc(const std::string &s) {
  std::string o;
  for (char c : s)
    o += c == '<'   ? "&lt;"
         : c == '>' ? "&gt;"
         : c == '&' ? "&amp;"
                    : std::string(1, c);
  return o;
}

std::string num(double v) {
  std::ostringstream os;
  os << std::setprecision(3) << v;
  return os.str();
}

/// A line chart as inline SVG; `logY` uses a log10 axis (non-positive
/// values are dropped from it).
std::string chart(const std::string &title, const std::string &xlabel,
                  const std::vector<Series> &series, bool logY) {
  const double W = 440, H = 270, ml = 60, mr = 12, mt = 28, mb = 40;
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  auto ty = [&](double y) { return logY ? std::log10(y) : y; };
  for (const Series &s : series)
    for (size_t i = 0; i < s.xs.size() && i < s.ys.size(); ++i) {
      if (!std::isfinite(s.ys[i]) || (logY && s.ys[i] <= 0))
        continue;
      x0 = std::min(x0, s.xs[i]);
      x1 = std::max(x1, s.xs[i]);
      y0 = std::min(y0, ty(s.ys[i]));
      y1 = std::max(y1, ty(s.ys[i]));
    }
  std::ostringstream o;
  o << "<figure><svg viewBox='0 0 " << W << " " << H << "' width='" << W
    << "' height='" << H << "' xmlns='http://www.w3.org/2000/svg'>"
    << "<text x='" << W / 2 << "' y='17' text-anchor='middle' "
    << "font-weight='bold'>" << esc(title) << "</text>";
  if (!(x0 <= x1)) {
    o << "<text x='" << W / 2 << "' y='" << H / 2
      << "' text-anchor='middle'>no data</text></svg></figure>";
    return o.str();
  }
  if (x1 == x0)
    x1 = x0 + 1;
  if (y1 == y0) {
    y0 -= logY ? 0.5 : std::max(1e-12, std::abs(y0) * 0.1);
    y1 += logY ? 0.5 : std::max(1e-12, std::abs(y1) * 0.1);
  }
  auto px = [&](double x) { return ml + (x - x0) / (x1 - x0) * (W - ml - mr); };
  auto py = [&](double y) {
    return H - mb - (ty(y) - y0) / (y1 - y0) * (H - mt - mb);
  };
  auto pyRaw = [&](double t) {
    return H - mb - (t - y0) / (y1 - y0) * (H - mt - mb);
  };
  o << "<rect x='" << ml << "' y='" << mt << "' width='" << W - ml - mr
    << "' height='" << H - mt - mb << "' fill='none' stroke='#999'/>";
  for (int i = 0; i <= 4; ++i) {
    double t = y0 + (y1 - y0) * i / 4, y = pyRaw(t);
    o << "<line x1='" << ml << "' x2='" << W - mr << "' y1='" << y << "' y2='"
      << y << "' stroke='#eee'/><text x='" << ml - 4 << "' y='" << y + 4
      << "' text-anchor='end' font-size='10'>"
      << num(logY ? std::pow(10, t) : t) << "</text>";
    double xv = x0 + (x1 - x0) * i / 4;
    o << "<text x='" << px(xv) << "' y='" << H - mb + 14
      << "' text-anchor='middle' font-size='10'>" << num(xv) << "</text>";
  }
  o << "<text x='" << (ml + W - mr) / 2 << "' y='" << H - 6
    << "' text-anchor='middle' font-size='11'>" << esc(xlabel) << "</text>";
  for (size_t k = 0; k < series.size(); ++k) {
    const Series &s = series[k];
    const char *color = kColors[k % 10];
    std::string pts;
    for (size_t i = 0; i < s.xs.size() && i < s.ys.size(); ++i)
      if (std::isfinite(s.ys[i]) && !(logY && s.ys[i] <= 0))
        pts += num(px(s.xs[i])) + "," + num(py(s.ys[i])) + " ";
    o << "<polyline fill='none' stroke='" << color << "' stroke-width='1.8'"
      << (s.dashed ? " stroke-dasharray='5,3'" : "") << " points='" << pts
      << "'/>";
    if (series.size() > 1 || !s.name.empty())
      o << "<text x='" << W - mr - 4 << "' y='" << mt + 12 + 12 * k
        << "' text-anchor='end' font-size='10' fill='" << color << "'>"
        << esc(s.name) << "</text>";
  }
  o << "</svg></figure>";
  return o.str();
}

std::vector<double> numbers(const json &a) {
  std::vector<double> v;
  if (a.is_array())
    for (const json &x : a)
      v.push_back(x.is_number() ? x.get<double>() : NAN);
  return v;
}

std::vector<double> range(size_t n, double from = 0) {
  std::vector<double> v;
  for (size_t i = 0; i < n; ++i)
    v.push_back(from + static_cast<double>(i));
  return v;
}

json readJsonFile(const fs::path &p) {
  std::optional<std::string> text = abi::readFile(p.string());
  return text ? json::parse(*text, nullptr, false) : json();
}

std::vector<json> readMetrics(const fs::path &p) {
  std::vector<json> out;
  std::ifstream in(p);
  for (std::string line; std::getline(in, line);) {
    json m = json::parse(line, nullptr, false);
    if (!m.is_discarded())
      out.push_back(m);
  }
  return out;
}

/// One per-layer curve of eval.json for the run and the baseline.
std::string layerChart(const std::string &title, const std::string &key,
                       const json &ev, const json &base, bool logY) {
  std::vector<Series> s;
  s.push_back({"this run", range(ev[key].size()), numbers(ev[key])});
  if (base.is_object() && base.contains(key))
    s.push_back(
        {"baseline", range(base[key].size()), numbers(base[key]), true});
  return chart(title, "layer", s, logY);
}

std::string sweepChart(const std::string &title, const std::string &key,
                       const std::string &var, const json &ev,
                       const json &base) {
  auto series = [&](const json &e, const std::string &name, bool dashed) {
    Series s{name, {}, {}, dashed};
    for (const json &p : e[key]) {
      s.xs.push_back(p[var].get<double>());
      s.ys.push_back(p["final"].is_number() ? p["final"].get<double>() : NAN);
    }
    return s;
  };
  std::vector<Series> s{series(ev, "this run", false)};
  if (base.is_object() && base.contains(key))
    s.push_back(series(base, "baseline", true));
  return chart(title, var, s, true);
}

} // namespace

void writeReport(const std::string &runDir, std::ostream &log) {
  fs::path dir(runDir);
  json config = readJsonFile(dir / "config.json");
  std::vector<json> metrics = readMetrics(dir / "metrics.jsonl");
  json ev = readJsonFile(dir / "eval.json");
  json base, baseConfig;
  std::vector<json> baseMetrics;
  if (ev.is_object() && ev.contains("baseline")) {
    fs::path b = ev["baseline"].get<std::string>();
    // The baseline's evaluation as this run's eval made it (older runs
    // left it in the baseline's own eval.json).
    base = ev.contains("baseline_eval") ? ev["baseline_eval"]
                                        : readJsonFile(b / "eval.json");
    baseConfig = readJsonFile(b / "config.json");
    baseMetrics = readMetrics(b / "metrics.jsonl");
  }
  std::ostringstream h;
  h << "<!doctype html><html><head><meta charset='utf-8'><title>Unroll run "
    << esc(dir.filename().string()) << "</title><style>"
    << "body{font-family:sans-serif;margin:2em;color:#222}"
    << "figure{display:inline-block;margin:0.5em}"
    << "table{border-collapse:collapse}td,th{border:1px solid #ccc;"
    << "padding:3px 8px;text-align:left}</style></head><body>"
    << "<h1>Unroll run <code>" << esc(dir.string()) << "</code></h1>";
  h << "<table>";
  auto rowOf = [&](const std::string &k, const std::string &v) {
    h << "<tr><th>" << esc(k) << "</th><td>" << esc(v) << "</td></tr>";
  };
  if (config.is_object()) {
    rowOf("spec", config.value("spec", ""));
    rowOf("algorithm", config.value("algorithm", ""));
    std::string sets;
    for (auto &s : config.value("settings", json::array()))
      sets += s.get<std::string>() + " ";
    rowOf("settings", sets.empty() ? "(none)" : sets);
    rowOf("options", config.value("options", json::object()).dump());
  }
  rowOf("epochs finished", std::to_string(metrics.size()));
  if (ev.is_object()) {
    rowOf("evaluated checkpoint", "epoch " + ev["epoch"].dump() + " on " +
                                      ev["test_size"].dump() +
                                      " test instances");
    if (ev["distance"].is_array() && !ev["distance"].empty())
      rowOf("final distance to optimum", ev["distance"].back().dump());
  }
  if (base.is_object()) {
    rowOf("baseline", ev["baseline"].get<std::string>() +
                          (baseConfig.is_object()
                               ? " (" + baseConfig.value("spec", "") + ")"
                               : ""));
    if (base["distance"].is_array() && !base["distance"].empty())
      rowOf("baseline final distance", base["distance"].back().dump());
  }
  h << "</table>";

  if (ev.is_object()) {
    h << "<h2>Layer by layer (test set)</h2>";
    h << layerChart("distance to the optimum", "distance", ev, base, true);
    h << layerChart("objective value", "objective", ev, base, true);
    h << layerChart("gradient norm (min-norm subgradient)", "gradient_norm", ev,
                    base, true);
    std::vector<Series> sat;
    for (const json &c : ev.value("constraints", json::array()))
      sat.push_back({c["form"].get<std::string>() + "(" +
                         c["on"].get<std::string>() + ")",
                     range(c["satisfied"].size(), 1), numbers(c["satisfied"])});
    if (base.is_object())
      for (const json &c : base.value("constraints", json::array()))
        sat.push_back({"baseline", range(c["satisfied"].size(), 1),
                       numbers(c["satisfied"]), true});
    if (!sat.empty())
      h << chart("share of test samples satisfying the constraint", "layer",
                 sat, false);
    // A constrained variable's distance to its set, layer by layer.
    for (const json &st : ev.value("sets", json::array())) {
      std::vector<Series> d{
          {"this run", range(st["distance"].size()), numbers(st["distance"])}};
      if (base.is_object())
        for (const json &b : base.value("sets", json::array()))
          if (b["on"] == st["on"])
            d.push_back({"baseline", range(b["distance"].size()),
                         numbers(b["distance"]), true});
      h << chart("distance of " + st["on"].get<std::string>() + " to set " +
                     st["set"].get<std::string>(),
                 "layer", d, false);
    }
    if (ev.contains("l1_histogram") && ev["l1_histogram"]["counts"].size()) {
      const json &hist = ev["l1_histogram"];
      size_t L = hist["counts"].size() - 1;
      double hi = hist["max"].get<double>();
      std::vector<Series> hs;
      for (size_t l : {size_t(1), L / 2, L}) {
        if (l == 0 || l > L)
          continue;
        std::vector<double> counts = numbers(hist["counts"][l]), xs;
        for (size_t b = 0; b < counts.size(); ++b)
          xs.push_back(hi * (static_cast<double>(b) + 0.5) /
                       static_cast<double>(counts.size()));
        hs.push_back({"layer " + std::to_string(l), xs, counts});
      }
      h << chart("histogram of ||y_l||_1", "||y||_1", hs, false);
    }
    if (!ev.value("ood", json::array()).empty() ||
        !ev.value("perturb", json::array()).empty()) {
      h << "<h2>Robustness</h2>";
      if (!ev["ood"].empty())
        h << sweepChart("final distance under input shift x + N(0, p^2)", "ood",
                        "p", ev, base);
      if (!ev["perturb"].empty())
        h << sweepChart("final distance with noise N(0, s^2) at every layer",
                        "perturb", "s", ev, base);
    }
  }
  if (!metrics.empty()) {
    h << "<h2>Training</h2>";
    auto curve = [](const std::vector<json> &m, const std::string &key) {
      Series s;
      for (const json &x : m) {
        s.xs.push_back(x["epoch"].get<double>());
        s.ys.push_back(x[key].is_number() ? x[key].get<double>() : NAN);
      }
      return s;
    };
    std::vector<Series> loss{curve(metrics, "train_loss"),
                             curve(metrics, "val_loss")};
    loss[0].name = "train";
    loss[1].name = "validation";
    if (!baseMetrics.empty()) {
      loss.push_back(curve(baseMetrics, "val_loss"));
      loss.back().name = "baseline validation";
      loss.back().dashed = true;
    }
    h << chart("loss", "epoch", loss, true);
    const json &last = metrics.back();
    if (last.contains("val_distance"))
      h << chart("validation distance per layer (last epoch)", "layer",
                 {{"", range(last["val_distance"].size()),
                   numbers(last["val_distance"])}},
                 true);
    if (last.contains("lambda") && !last["lambda"].empty()) {
      size_t L = last["lambda"][0].size();
      std::vector<Series> lam, viol;
      for (size_t l = 0; l < L; ++l) {
        Series a{"layer " + std::to_string(l + 1), {}, {}},
            v{"layer " + std::to_string(l + 1), {}, {}};
        for (const json &m : metrics) {
          a.xs.push_back(m["epoch"].get<double>());
          a.ys.push_back(m["lambda"][0][l].get<double>());
          v.xs.push_back(m["epoch"].get<double>());
          v.ys.push_back(m["violation"][0][l].get<double>());
        }
        lam.push_back(a);
        viol.push_back(v);
      }
      h << chart("dual variables lambda_l", "epoch", lam, false);
      h << chart("mean constraint value C_l (<= 0: satisfied)", "epoch", viol,
                 false);
    }
  }
  h << "<p><small>Written by Unroll from " << esc(dir.string())
    << "/{config.json, metrics.jsonl, eval.json}.</small></p></body></html>\n";
  try {
    writeFileAtomic((dir / "report.html").string(), h.str());
  } catch (const std::exception &e) {
    log << "warning: cannot write the report: " << e.what() << "\n";
  }
}

} // namespace unroll::runtime
