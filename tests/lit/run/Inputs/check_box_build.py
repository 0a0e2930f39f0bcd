"""Runs a program built from examples/box_ls.unroll (p = 12, d = 8) on
inputs that push the unconstrained estimate far outside the box, and checks
that every output entry lies in [0, 1].

usage: check_box_build.py EXE WORK_DIR"""
import math
import os
import subprocess
import sys

from npy import read_npy, write_npy

exe, work = sys.argv[1:3]
B, P, D = 4, 12, 8
write_npy(os.path.join(work, "x.npy"), (B, P),
          [5 * math.sin(0.7 * i + 0.3) for i in range(B * P)])
write_npy(os.path.join(work, "A.npy"), (P, D),
          [math.cos(0.13 * i * i + 0.5) / 2 for i in range(P * D)])
out = os.path.join(work, "y.npy")
r = subprocess.run([exe, "-o", out, "x=" + os.path.join(work, "x.npy"),
                    "A=" + os.path.join(work, "A.npy")],
                   capture_output=True, text=True)
print("run:", r.returncode, r.stderr.strip())
shape, y = read_npy(out)
print("every output in [0, 1]:",
      shape == (B, D) and all(0 <= v <= 1 for v in y))
