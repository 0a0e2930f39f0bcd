"""Runs a GLOW-Prox program made by `unrollc build` on .npy inputs: the
output and every layer's state have the image's shape and are finite, the
initial state is the observed image (init y = x), the last layer is the
output, and each layer changes the image. The layers' values are checked
against LibTorch in InferenceTest (the same lowering, JIT-compiled).

With REF_DIR (the WORK_DIR of another build of the same run), also
whether the output and the layers match that build's (to 1e-5).

usage: check_glow_build.py EXE WORK_DIR [REF_DIR]"""
import math
import os
import subprocess
import sys

from npy import read_npy, write_npy

exe, work = sys.argv[1:3]
ref = sys.argv[3] if len(sys.argv) > 3 else None
B, H, W = 2, 28, 28
x = [0.5 + 0.4 * math.sin(0.05 * i) for i in range(B * H * W)]
mask = [0.0 if 7 <= (i // W) < 21 and 7 <= (i % W) < 21 else 1.0
        for i in range(H * W)]
write_npy(os.path.join(work, "x.npy"), (B, 1, H, W), x)
write_npy(os.path.join(work, "M.npy"), (1, H, W), mask)
out_path = os.path.join(work, "out.npy")
layers_path = os.path.join(work, "layers.npy")
r = subprocess.run([exe, "-o", out_path, "--layers", layers_path,
                    "x=" + os.path.join(work, "x.npy"),
                    "M=" + os.path.join(work, "M.npy")],
                   capture_output=True, text=True)
print("run:", r.returncode, r.stdout.strip(), r.stderr.strip())
out_shape, out = read_npy(out_path)
layers_shape, layers = read_npy(layers_path)
print("output shape", out_shape, "layers shape", layers_shape)
print("finite:", all(math.isfinite(v) for v in out + layers))
n = B * H * W
L = layers_shape[1]
at = lambda b, l: layers[(b * L + l) * (n // B):(b * L + l + 1) * (n // B)]
print("initial state is x:",
      all(max(abs(u - v) for u, v in zip(at(b, 0), x[b * H * W:])) < 1e-6
          for b in range(B)))
print("last layer is the output:",
      all(at(b, L - 1) == out[b * H * W:(b + 1) * H * W] for b in range(B)))
print("every layer changes the image:",
      all(max(abs(u - v) for u, v in zip(at(b, l), at(b, l - 1))) > 1e-4
          for b in range(B) for l in range(1, L)))
if ref:
    _, ref_out = read_npy(os.path.join(ref, "out.npy"))
    _, ref_layers = read_npy(os.path.join(ref, "layers.npy"))
    print("same as the other build:",
          max(abs(u - v) for u, v in zip(out + layers, ref_out + ref_layers))
          < 1e-5)
