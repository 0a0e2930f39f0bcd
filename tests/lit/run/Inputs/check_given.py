"""Checks that a run trained on npy data recorded the given values it
trained with (given.safetensors, equal to the D.npy it read), and that
they and the checkpoint reproduce the model, and the program uses them
where D is not given: the learned ISTA's layers
y = soft(y - eta D'(D y - x), beta), computed here in float64 from them,
match the program `unrollc build` made.

usage: check_given.py RUN_DIR DATA_DIR EXE WORK_DIR"""
import math
import os
import subprocess
import sys

from npy import read_npy, read_params, write_npy

run_dir, data_dir, exe, work = sys.argv[1:5]
given = read_params(os.path.join(run_dir, "given.safetensors"), "")
print("given:", sorted(given))
(shape, dic) = given["D"]
want_shape, want = read_npy(os.path.join(data_dir, "D.npy"))
print("D as read:", tuple(shape) == want_shape and list(dic) == list(want))

params = read_params(os.path.join(run_dir, "best.safetensors"))
L = max(int(k.split(".")[2]) for k in params if k.startswith("param.eta."))
p, d = shape
B = 2
x = [math.cos(0.5 * i) for i in range(B * p)]
write_npy(os.path.join(work, "x.npy"), (B, p), x)
write_npy(os.path.join(work, "D.npy"), tuple(shape), dic)
r = subprocess.run([exe, "-o", os.path.join(work, "y.npy"),
                    "x=" + os.path.join(work, "x.npy"),
                    "D=" + os.path.join(work, "D.npy")],
                   capture_output=True, text=True)
print("run:", r.returncode, r.stderr.strip().split(": ", 1)[-1])
_, got = read_npy(os.path.join(work, "y.npy"))
worst = 0.0
for b in range(B):
    xb = x[b * p:(b + 1) * p]
    y = [0.0] * d
    for l in range(1, L + 1):
        _, (eta,) = params["param.eta.%d" % l]
        _, beta = params["param.beta.%d" % l]
        res = [sum(dic[i * d + j] * y[j] for j in range(d)) - xb[i]
               for i in range(p)]
        z = [y[j] - eta * sum(dic[i * d + j] * res[i] for i in range(p))
             for j in range(d)]
        y = [math.copysign(max(abs(v) - t, 0.0), v) for v, t in zip(z, beta)]
    worst = max(worst, max(abs(g - w) for g, w in zip(got[b * d:(b + 1) * d], y)))
print("largest difference from the checkpoint's ISTA: %s" %
      ("below 1e-4" if worst < 1e-4 else "%g" % worst))
# Without D=, the program runs with the values the run trained with.
r = subprocess.run([exe, "-o", os.path.join(work, "y2.npy"),
                    "x=" + os.path.join(work, "x.npy")],
                   capture_output=True, text=True)
print("without D:", r.returncode,
      read_npy(os.path.join(work, "y2.npy"))[1] == tuple(got))
