"""Damages a run's plan.json in many ways and runs `unrollc eval`,
`unrollc export` and `unroll-run eval` on each damaged copy: every command
must exit with status 1 and an error message, within a time limit; never
crash, abort or hang.

usage: fuzz_plan.py UNROLLC UNROLL_RUN RUN_DIR WORK_DIR COUNT"""
import copy
import json
import os
import random
import shutil
import subprocess
import sys

unrollc, unroll_run, run_dir, work, count = sys.argv[1:6]
count = int(count)
good = json.load(open(os.path.join(run_dir, "plan.json")))
rng = random.Random(20261204)


def objects(j, path=""):
    """Every (object, path) inside j."""
    if isinstance(j, dict):
        yield j, path
        for k, v in j.items():
            yield from objects(v, path + "." + k)
    elif isinstance(j, list):
        for i, v in enumerate(j):
            yield from objects(v, "%s[%d]" % (path, i))


REQUIRED = {"format", "version", "algorithms", "name", "layer_count", "inputs",
            "params", "states", "targets", "layers", "prelude", "constraints",
            "noise", "op", "args", "id", "shape", "body", "ops", "yield",
            "init", "state", "results", "role", "binding", "fn", "kind",
            "value", "distribution", "kernel", "arg_shapes", "index", "eps",
            "form", "on", "mode", "solver"}


def damage(plan):
    """One structural damage to a copy of plan: (description, text)."""
    kind = rng.randrange(7)
    if kind == 0:
        return "not a plan", rng.choice(["{}", "[1, 2, 3]", "null", "7",
                                         '{"format": "unroll-plan"}'])
    p = copy.deepcopy(plan)
    objs = list(objects(p))
    if kind == 1:  # a required key removed
        candidates = [(o, at, k) for o, at in objs for k in o if k in REQUIRED
                      and not (k == "solver" and "body" in o.get(k, {}))]
        o, at, k = rng.choice(candidates)
        del o[k]
        return "no %s%s" % (at, "." + k), json.dumps(p)
    if kind == 2:  # a value of the wrong JSON type
        candidates = [(o, at, k) for o, at in objs for k in o if k in REQUIRED]
        o, at, k = rng.choice(candidates)
        v = o[k]
        o[k] = ("text" if not isinstance(v, str) else 5) if not isinstance(
            v, (list, dict)) else ({} if isinstance(v, list) else [])
        return "%s.%s retyped" % (at, k), json.dumps(p)
    ops = [(o, at) for o, at in objs if "op" in o]
    o, at = rng.choice(ops)
    if kind == 3:
        o["op"] = "frobnicate"
        return "unknown op at " + at, json.dumps(p)
    if kind == 4 and o["args"]:
        o["args"][0] = 10 ** 9
        return "undefined operand at " + at, json.dumps(p)
    if kind == 5:
        o["args"] = o["args"] + o["args"] + [0]
        return "operands added at " + at, json.dumps(p)
    text = json.dumps(p)
    return "truncated", text[:rng.randrange(1, len(text))]


failures = 0
for i in range(count):
    what, text = damage(good)
    d = os.path.join(work, "m%d" % i)
    shutil.rmtree(d, ignore_errors=True)
    shutil.copytree(run_dir, d)
    with open(os.path.join(d, "plan.json"), "w") as f:
        f.write(text)
    for cmd in ([unrollc, "eval", d], [unrollc, "export", d, "-o", d + "/x"],
                [unroll_run, "eval", d]):
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
            rc, err = r.returncode, r.stderr
        except subprocess.TimeoutExpired:
            rc, err = "timeout", ""
        if rc != 1 or "error:" not in err:
            failures += 1
            print("FAIL %s (%s): %s exited %s:\n%s" % (
                d, what, os.path.basename(cmd[0]) + " " + cmd[1], rc, err[-2000:]))
    shutil.rmtree(d, ignore_errors=True)
print("%d damaged plans: %s" % (count, "every command exited 1 with a message"
                                if failures == 0 else "%d failures" % failures))
