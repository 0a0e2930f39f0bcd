"""Runs a program made by `unrollc build` on .npy inputs and checks its
outputs against LISTA's layers computed here, in float64, from the run's
checkpoint (no numpy: .npy and safetensors are read by hand).

usage: check_build.py RUN_DIR EXE WORK_DIR"""
import math
import os
import struct
import subprocess
import sys

from npy import read_npy, read_params, write_npy

run_dir, exe, work = sys.argv[1:4]

params = read_params(os.path.join(run_dir, "best.safetensors"))
L = 1 + max(int(k.split(".")[2]) for k in params if k.startswith("param.Wu."))
(d, p), _ = params["param.Wu.1"]
B = 3
x = [math.sin(0.3 * i) for i in range(B * p)]
y0 = [0.1 * math.cos(0.7 * i) for i in range(B * d)]
write_npy(os.path.join(work, "x.npy"), (B, p), x, "<f8")  # float64 on purpose
write_npy(os.path.join(work, "y0.npy"), (B, d), y0)


def run(*args):
    r = subprocess.run([exe, *args], capture_output=True, text=True)
    return r.returncode, r.stdout + r.stderr


rc, text = run("-o", os.path.join(work, "out.npy"), "--layers",
               os.path.join(work, "layers.npy"),
               "x=" + os.path.join(work, "x.npy"),
               "y0=" + os.path.join(work, "y0.npy"))
print("run:", rc, text.strip().split(": ", 1)[1])
out_shape, out = read_npy(os.path.join(work, "out.npy"))
layers_shape, layers = read_npy(os.path.join(work, "layers.npy"))
print("output shape", out_shape, "layers shape", layers_shape)

# LISTA in float64: y <- soft_threshold(Wu x + We y, beta), per layer.
worst = 0.0
for b in range(B):
    y = [float(v) for v in struct.unpack("<%df" % d, struct.pack(
        "<%df" % d, *y0[b * d:(b + 1) * d]))]
    xb = x[b * p:(b + 1) * p]
    for l in range(1, L):
        _, Wu = params["param.Wu.%d" % l]
        _, We = params["param.We.%d" % l]
        _, beta = params["param.beta.%d" % l]
        z = [sum(Wu[i * p + j] * xb[j] for j in range(p)) +
             sum(We[i * d + j] * y[j] for j in range(d)) for i in range(d)]
        y = [math.copysign(max(abs(v) - beta[i], 0.0), v) for i, v in enumerate(z)]
        got = layers[(b * L + l) * d:(b * L + l + 1) * d]
        worst = max(worst, max(abs(g - w) for g, w in zip(got, y)))
    worst = max(worst, max(abs(g - w) for g, w in zip(out[b * d:(b + 1) * d], y)))
print("largest difference from float64 LISTA: %s" %
      ("below 1e-4" if worst < 1e-4 else "%g" % worst))

# Bad input: a clear message and exit status 1, never a crash.
write_npy(os.path.join(work, "short.npy"), (B, p - 1), [0.0] * (B * (p - 1)))
write_npy(os.path.join(work, "two.npy"), (2, d), [0.0] * (2 * d))
open(os.path.join(work, "junk.npy"), "w").write("not an array")
write_npy(os.path.join(work, "i64.npy"), (B, p), [0.0] * (B * p), "<i8")
write_npy(os.path.join(work, "f16.npy"), (B, p), [0.0] * (B * p), "<f2")
write_npy(os.path.join(work, "huge.npy"), (2**58, p), [0.0] * p)
write_npy(os.path.join(work, "big.npy"), (2**40, p), [0.0] * p)
bad = list(x)
bad[1 * p + 3] = float("nan")
write_npy(os.path.join(work, "nan.npy"), (B, p), bad)
bad[1 * p + 3] = 1e300  # finite in float64, Inf in float32
write_npy(os.path.join(work, "inf.npy"), (B, p), bad, "<f8")
xy = ("x=" + os.path.join(work, "x.npy"), "y0=" + os.path.join(work, "y0.npy"))
cases = {
    "int64": ("-o", os.path.join(work, "o.npy"),
              "x=" + os.path.join(work, "i64.npy"), xy[1]),
    "float16": ("-o", os.path.join(work, "o.npy"),
                "x=" + os.path.join(work, "f16.npy"), xy[1]),
    "huge shape": ("-o", os.path.join(work, "o.npy"),
                   "x=" + os.path.join(work, "huge.npy"), xy[1]),
    "big shape": ("-o", os.path.join(work, "o.npy"),
                  "x=" + os.path.join(work, "big.npy"), xy[1]),
    "nan": ("-o", os.path.join(work, "o.npy"),
            "x=" + os.path.join(work, "nan.npy"), xy[1]),
    "inf": ("-o", os.path.join(work, "o.npy"),
            "x=" + os.path.join(work, "inf.npy"), xy[1]),
    "layers unwritable": ("-o", os.path.join(work, "o.npy"), "--layers",
                          os.path.join(work, "nowhere", "l.npy"), *xy),
    "missing input": ("-o", os.path.join(work, "o.npy"),
                      "x=" + os.path.join(work, "x.npy")),
    "wrong shape": ("-o", os.path.join(work, "o.npy"),
                    "x=" + os.path.join(work, "short.npy"),
                    "y0=" + os.path.join(work, "y0.npy")),
    "batch mismatch": ("-o", os.path.join(work, "o.npy"),
                       "x=" + os.path.join(work, "x.npy"),
                       "y0=" + os.path.join(work, "two.npy")),
    "not npy": ("-o", os.path.join(work, "o.npy"),
                "x=" + os.path.join(work, "junk.npy"),
                "y0=" + os.path.join(work, "y0.npy")),
    "unknown input": ("-o", os.path.join(work, "o.npy"), "z=1"),
}
for name, args in cases.items():
    rc, text = run(*args)
    last = [l for l in text.splitlines() if "error:" in l][-1]
    print("%s: exit %d: %s" % (name, rc, last.split("error: ", 1)[1]
                               .replace(work + "/", "")))
print("no output written on error:",
      not any(f.startswith("o.npy") for f in os.listdir(work)))
