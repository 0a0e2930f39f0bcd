"""Runs a two-state program made by `unrollc build` (states y and z of
build_states.unroll) on .npy inputs: each state's output and layers have
their shapes, the last layer is the output, the initial z is the z0
supplied and the initial y zero, z is y shrunk (|z| <= |y|, same sign);
a state not asked for is not written (no other file appears); bad -o arguments are errors.

usage: check_states_build.py EXE WORK_DIR"""
import math
import os
import subprocess
import sys

from npy import read_npy, write_npy

exe, work = sys.argv[1:3]
B, P, D, L = 3, 6, 10, 3
path = lambda name: os.path.join(work, name + ".npy")
write_npy(path("x"), (B, P), [math.sin(0.37 * i + 0.1) for i in range(B * P)])
z0 = [math.cos(0.21 * i) for i in range(B * D)]
write_npy(path("z0"), (B, D), z0)
inputs = ["x=" + path("x"), "z0=" + path("z0")]

r = subprocess.run([exe, "-o", "y=" + path("y"), "-o", "z=" + path("z"),
                    "--layers", "y=" + path("y_layers"),
                    "--layers", "z=" + path("z_layers")] + inputs,
                   capture_output=True, text=True)
print("run:", r.returncode, r.stderr.strip())
(ys, y), (yls, yl) = read_npy(path("y")), read_npy(path("y_layers"))
(zs, z), (zls, zl) = read_npy(path("z")), read_npy(path("z_layers"))
print("shapes", ys, yls, zs, zls)
per = (L + 1) * D
last = lambda layers, b: layers[b * per + L * D:(b + 1) * per]
first = lambda layers, b: layers[b * per:b * per + D]
print("last layers are the outputs:",
      all(last(yl, b) == y[b * D:(b + 1) * D] and
          last(zl, b) == z[b * D:(b + 1) * D] for b in range(B)))
print("initial z is z0, initial y is zero:",
      all(all(abs(u - v) < 1e-6 for u, v in zip(first(zl, b),
                                                z0[b * D:(b + 1) * D])) and
          all(v == 0 for v in first(yl, b)) for b in range(B)))
print("z shrinks y by t:",
      all(abs(zv) <= abs(yv) + 1e-6 and zv * yv >= 0 for zv, yv in zip(z, y)))

before = set(os.listdir(work))
r = subprocess.run([exe, "-o", "z=" + path("only_z")] + inputs,
                   capture_output=True, text=True)
only = read_npy(path("only_z"))[1]
print("only z:", r.returncode, r.stderr.strip().split(": ", 1)[1].split(
    "layers: ")[1], end="; ")
print("new files:", sorted(set(os.listdir(work)) - before), end="; ")
print("same z:", only == z)


def error(args):
    r = subprocess.run([exe] + args + inputs, capture_output=True, text=True)
    return str(r.returncode) + " " + r.stderr.strip().splitlines()[-1].split(
        ": ", 1)[1]


print("unknown state:", error(["-o", "w=" + path("w")]))
print("no state named:", error(["-o", path("plain")]))
print("no output:", error([]))
