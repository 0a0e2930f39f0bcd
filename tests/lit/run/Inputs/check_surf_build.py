"""Runs a SURF program made by `unrollc build` on .npy inputs: the output
and every layer's state have the classifiers' shape and are finite, the
initial state is the w0 supplied, the last layer is the output, the same
draws give the same output and other minibatch draws another. The layers'
values are checked against LibTorch in InferenceTest (the same lowering,
JIT-compiled).

usage: check_surf_build.py EXE WORK_DIR AGENTS SAMPLES FEATURES CLASSES
       LAYERS MINIBATCH"""
import math
import os
import subprocess
import sys

from npy import read_npy, write_npy

exe, work = sys.argv[1:3]
N, M, F, C, L, K = (int(v) for v in sys.argv[3:9])
B = 2


def wave(n, a, b):
    return [math.sin(a * i + b) for i in range(n)]


path = lambda name: os.path.join(work, name + ".npy")
write_npy(path("X"), (B, N, M, F), wave(B * N * M * F, 0.37, 0.1))
write_npy(path("Y"), (B, N, M, C),
          [1.0 if i % C == (i // C) % C else 0.0 for i in range(B * N * M * C)])
write_npy(path("S"), (N, N),
          [0.5 if abs(i // N - i % N) == 1 else 0.0 for i in range(N * N)])
write_npy(path("w0"), (B, N, C, F + 1), wave(B * N * C * (F + 1), 0.11, 0.3))
draws = [0.5 + 0.5 * v for v in wave(B * L * N * K, 0.73, 0.2)]
draws[0] = 0.999999  # the last sample, not one past it
write_npy(path("samples"), (B, L, N, K), draws)
write_npy(path("other"), (B, L, N, K), [1 - u for u in draws])


def run(samples, out):
    r = subprocess.run([exe, "-o", path(out), "--layers", path(out + "_layers"),
                        "X=" + path("X"), "Y=" + path("Y"), "S=" + path("S"),
                        "w0=" + path("w0"), "samples=" + path(samples)],
                       capture_output=True, text=True)
    print("run:", r.returncode, r.stdout.strip(), r.stderr.strip())
    return read_npy(path(out)), read_npy(path(out + "_layers"))


(out_shape, out), (layers_shape, layers) = run("samples", "out")
print("output shape", out_shape, "layers shape", layers_shape)
print("finite:", all(math.isfinite(v) for v in out + layers))
n = N * C * (F + 1)
at = lambda b, l: layers[(b * (L + 1) + l) * n:(b * (L + 1) + l + 1) * n]
w0 = read_npy(path("w0"))[1]
print("initial state is w0:",
      all(at(b, 0) == w0[b * n:(b + 1) * n] for b in range(B)))
print("last layer is the output:",
      all(at(b, L) == out[b * n:(b + 1) * n] for b in range(B)))
(_, again), _ = run("samples", "again")
print("same draws, same output:", again == out)
(_, other), _ = run("other", "other")
print("other draws, other output:",
      max(abs(u - v) for u, v in zip(other, out)) > 1e-4)
