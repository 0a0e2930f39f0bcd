"""Runs a program made by `unrollc build` from a trained unrolled ADMM for
TV denoising (examples/admm_tv.unroll) and checks its three states, the
problem's y and the algorithm's z and u, at every layer against ADMM's
layers computed here in float64 from the run's checkpoint:
y_l = (I + rho G'G)^-1 (x + rho G'(z - u)), z_l = soft(G y_l + u, lam / rho),
u_l = u + G y_l - z_l, rho = exp(s_l), from y_0 = z_0 = u_0 = 0.

usage: check_admm_build.py RUN_DIR EXE WORK_DIR D LAM"""
import math
import os
import subprocess
import sys

from npy import read_npy, read_params, write_npy

run_dir, exe, work = sys.argv[1:4]
D, lam = int(sys.argv[4]), float(sys.argv[5])

params = read_params(os.path.join(run_dir, "best.safetensors"))
layers = sorted(int(k.split(".")[2]) for k in params if k.startswith("param.s."))
L = len(layers)
B = 3
x = [math.sin(0.7 * i) + (0.5 if (i % D) > D // 2 else -0.5)
     for i in range(B * D)]
write_npy(os.path.join(work, "x.npy"), (B, D), x)
names = ("y", "z", "u")
out = {s: os.path.join(work, s + ".npy") for s in names}
out.update({s + "l": os.path.join(work, s + "l.npy") for s in names})
cmd = [exe]
for s in names:
    cmd += ["-o", "%s=%s" % (s, out[s]), "--layers", "%s=%s" % (s, out[s + "l"])]
r = subprocess.run(cmd + ["x=" + os.path.join(work, "x.npy")],
                   capture_output=True, text=True)
print("run:", r.returncode, r.stderr.strip().split(": ", 1)[-1])
got = {s: read_npy(f) for s, f in out.items()}
print("shapes", *(got[s][0] for s in ("y", "z", "u", "yl", "zl", "ul")))


def solve(a, b):
    """a x = b by Gaussian elimination with partial pivoting."""
    n = len(b)
    m = [row[:] + [b[i]] for i, row in enumerate(a)]
    for c in range(n):
        p = max(range(c, n), key=lambda i: abs(m[i][c]))
        m[c], m[p] = m[p], m[c]
        for i in range(c + 1, n):
            f = m[i][c] / m[c][c]
            for j in range(c, n + 1):
                m[i][j] -= f * m[c][j]
    out = [0.0] * n
    for i in reversed(range(n)):
        out[i] = (m[i][n] - sum(m[i][j] * out[j] for j in range(i + 1, n))) / m[i][i]
    return out


G = lambda v: [v[i + 1] - v[i] for i in range(len(v) - 1)]
Gt = lambda w: [(w[i - 1] if i > 0 else 0.0) - (w[i] if i < len(w) else 0.0)
                for i in range(len(w) + 1)]
worst = 0.0
for b in range(B):
    xb = x[b * D:(b + 1) * D]
    y, z, u = [0.0] * D, [0.0] * (D - 1), [0.0] * (D - 1)
    for l in layers:
        rho = math.exp(params["param.s.%d" % l][1][0])
        # I + rho G'G: tridiagonal, built column by column.
        a = [[0.0] * D for _ in range(D)]
        for j in range(D):
            e = [1.0 if i == j else 0.0 for i in range(D)]
            col = Gt(G(e))
            for i in range(D):
                a[i][j] = e[i] + rho * col[i]
        rhs = [xi + rho * g for xi, g in zip(xb, Gt([zi - ui for zi, ui in zip(z, u)]))]
        y = solve(a, rhs)
        gy = G(y)
        z = [math.copysign(max(abs(v + w) - lam / rho, 0.0), v + w)
             for v, w in zip(gy, u)]
        u = [w + v - zz for w, v, zz in zip(u, gy, z)]
        for name, want in (("yl", y), ("zl", z), ("ul", u)):
            n = len(want)
            row = got[name][1][(b * (L + 1) + l) * n:(b * (L + 1) + l + 1) * n]
            worst = max(worst, max(abs(g - w) for g, w in zip(row, want)))
    for name, want in (("y", y), ("z", z), ("u", u)):
        n = len(want)
        row = got[name][1][b * n:(b + 1) * n]
        worst = max(worst, max(abs(g - w) for g, w in zip(row, want)))
print("largest difference from float64 ADMM: %s" %
      ("below 1e-4" if worst < 1e-4 else "%g" % worst))
