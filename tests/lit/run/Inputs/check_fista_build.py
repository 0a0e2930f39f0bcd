"""Runs a program made by `unrollc build` from a trained unrolled FISTA
(examples/fista.unroll) and checks both of its states, the problem's y and
the algorithm's v, at every layer against FISTA's layers computed here in
float64 from the run's checkpoint: y_l = soft(v - eta_l D'(D v - x),
theta_l), v_l = y_l + mom_l (y_l - y_{l-1}), from y_0 = v_0 = 0.

usage: check_fista_build.py RUN_DIR EXE WORK_DIR"""
import math
import os
import struct
import subprocess
import sys

from npy import read_npy, read_params, write_npy

run_dir, exe, work = sys.argv[1:4]

params = read_params(os.path.join(run_dir, "best.safetensors"))
layers = sorted(int(k.split(".")[2]) for k in params if k.startswith("param.eta."))
L = len(layers)
B, P, D = 3, 8, 12
x = [math.sin(0.3 * i) for i in range(B * P)]
dic = [math.cos(0.11 * i * i + 0.2) / 3 for i in range(P * D)]
write_npy(os.path.join(work, "x.npy"), (B, P), x)
write_npy(os.path.join(work, "D.npy"), (P, D), dic)
out = {s: os.path.join(work, s + ".npy") for s in ("y", "v", "yl", "vl")}
r = subprocess.run([exe, "-o", "y=" + out["y"], "-o", "v=" + out["v"],
                    "--layers", "y=" + out["yl"], "--layers", "v=" + out["vl"],
                    "x=" + os.path.join(work, "x.npy"),
                    "D=" + os.path.join(work, "D.npy")],
                   capture_output=True, text=True)
print("run:", r.returncode, r.stderr.strip().split(": ", 1)[-1])
got = {s: read_npy(f) for s, f in out.items()}
print("shapes", *(got[s][0] for s in ("y", "v", "yl", "vl")))

f32 = lambda v: struct.unpack("<f", struct.pack("<f", v))[0]
dic = [f32(v) for v in dic]
worst = 0.0
for b in range(B):
    xb = [f32(v) for v in x[b * P:(b + 1) * P]]
    y, v = [0.0] * D, [0.0] * D
    for l in layers:
        (_, (eta,)), (_, (theta,)), (_, (mom,)) = (
            params["param.%s.%d" % (name, l)] for name in ("eta", "theta", "mom"))
        r_ = [sum(dic[i * D + j] * v[j] for j in range(D)) - xb[i]
              for i in range(P)]
        z = [v[j] - eta * sum(dic[i * D + j] * r_[i] for i in range(P))
             for j in range(D)]
        yn = [math.copysign(max(abs(u) - theta, 0.0), u) for u in z]
        v = [a + mom * (a - c) for a, c in zip(yn, y)]
        y = yn
        for name, want in (("yl", y), ("vl", v)):
            row = got[name][1][(b * (L + 1) + l) * D:(b * (L + 1) + l + 1) * D]
            worst = max(worst, max(abs(g - w) for g, w in zip(row, want)))
    for name, want in (("y", y), ("v", v)):
        row = got[name][1][b * D:(b + 1) * D]
        worst = max(worst, max(abs(g - w) for g, w in zip(row, want)))
print("largest difference from float64 FISTA: %s" %
      ("below 1e-4" if worst < 1e-4 else "%g" % worst))
