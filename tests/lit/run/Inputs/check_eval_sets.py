"""Prints, from an eval.json, each constrained variable's set and whether
every test instance lies in it at every layer.

usage: check_eval_sets.py EVAL_JSON"""
import json
import sys

ev = json.load(open(sys.argv[1]))
for s in ev["sets"]:
    print("set %s on %s: feasible at every layer: %s" % (
        s["set"], s["on"], all(f == 1.0 for f in s["feasible"])))
