"""Checks the structure of RUN_DIR/eval.json: every per-layer list has L + 1
entries, shares are in [0, 1], sweeps have the requested points."""
import json
import sys

ev = json.load(open(sys.argv[1]))
L = ev["layers"]
for key in ("distance", "objective", "gradient_norm", "l1_norm"):
    assert len(ev[key]) == L + 1, (key, ev[key])
    assert all(v is not None and v >= 0 for v in ev[key]), (key, ev[key])
for c in ev["constraints"]:
    assert len(c["satisfied"]) == L, c
    assert all(0 <= v <= 1 for v in c["satisfied"]), c
counts = ev["l1_histogram"]["counts"]
assert len(counts) == L + 1 and all(sum(c) == ev["test_size"] for c in counts)
ood = [p["p"] for p in ev["ood"]]
perturb = [p["s"] for p in ev["perturb"]]
print("layers", L, "ood", ood, "perturb", perturb)
