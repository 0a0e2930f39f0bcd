"""The paper's claim on a tiny configuration: the constrained model's mean
test distance to y* decreases at every layer by the constraint's margin,
the unconstrained model violates that at some layer, and both end close."""
import json
import sys

eps = 0.05
# usage: check_descent.py CONSTRAINED/eval.json (evaluated with --baseline)
ev = json.load(open(sys.argv[1]))
con = ev["distance"]
unc = ev["baseline_eval"]["distance"]
print("constrained  ", " ".join("%.3g" % d for d in con))
print("unconstrained", " ".join("%.3g" % d for d in unc))
# Layer 1 starts from a random y0: the constraint holds in expectation, so
# allow the float rounding of a mean over the test set, nothing more.
con_ok = all(con[l] <= (1 - eps) * con[l - 1] * (1 + 1e-3)
             for l in range(1, len(con)))
unc_ok = all(unc[l] <= (1 - eps) * unc[l - 1] for l in range(1, len(unc)))
close = abs(con[-1] - unc[-1]) <= 0.5 * max(con[-1], unc[-1])
print("constrained descends at every layer:", con_ok)
print("unconstrained descends at every layer:", unc_ok)
print("final distances close:", close)
sys.exit(0 if con_ok and not unc_ok and close else 1)
