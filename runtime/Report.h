#pragma once
// RUN_DIR/report.html: the run's training curves and, once evaluated, its
// per-layer curves and robustness sweeps beside a baseline run's, as inline
// SVG charts in one self-contained file.

#include <iosfwd>
#include <string>

namespace unroll::runtime {

/// Rewrites RUN_DIR/report.html (atomically) from config.json,
/// metrics.jsonl, eval.json and, if eval.json names one, the baseline
/// run's files. Missing parts are left out of the report.
void writeReport(const std::string &runDir, std::ostream &log);

} // namespace unroll::runtime
