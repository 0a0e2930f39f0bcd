"""Two runs of the same spec (say, compiled and eager backends) agree to
float rounding: per-epoch losses and per-layer evaluation distances
(with --metrics-only, the losses alone)."""
import json
import os
import sys


def metrics(d):
    with open(os.path.join(d, "metrics.jsonl")) as f:
        return [json.loads(l) for l in f]


def close(x, y, tol=1e-4):
    return abs(x - y) <= tol * (1 + abs(x))


a, b = metrics(sys.argv[1]), metrics(sys.argv[2])
assert len(a) == len(b), (len(a), len(b))
for ma, mb in zip(a, b):
    for key in ("train_loss", "val_loss"):
        assert close(ma[key], mb[key]), (ma["epoch"], key, ma[key], mb[key])
if "--metrics-only" in sys.argv:
    print("losses agree over %d epochs" % len(a))
    sys.exit(0)
ea = json.load(open(os.path.join(sys.argv[1], "eval.json")))
eb = json.load(open(os.path.join(sys.argv[2], "eval.json")))
pairs = list(zip(ea["distance"], eb["distance"]))
assert all(close(x, y) for x, y in pairs), pairs
assert close(ea["ood"][0]["final"], eb["ood"][0]["final"])
print("losses agree over %d epochs; distances agree over %d layers"
      % (len(a), len(pairs)))
