"""Writes the arrays of tests/lit/run/Inputs/npy_lista.unroll (p = 6,
d = 8) into a directory, in one of several forms.

usage: make_npy.py DIR MODE [N]
  good      x.npy (N, 6) float64 and D.npy (6, 8) float32
  target    the same plus ystar.npy (N, 8), all zeros
  layout    train/ valid/ test/ subdirectories of x.npy, D.npy at the top
  shape     x.npy of shape (N, 5)
  nan       x.npy with a NaN at (3, 2)
  fortran   x.npy flagged Fortran order
  short     x.npy cut short
  int       x.npy of dtype int64"""
import math
import os
import struct
import sys

from npy import write_npy

out, mode = sys.argv[1], sys.argv[2]
n = int(sys.argv[3]) if len(sys.argv) > 3 else 100
P, D = 6, 8
os.makedirs(out, exist_ok=True)
dic = [math.cos(0.37 * i * i + 0.1) for i in range(P * D)]
write_npy(os.path.join(out, "D.npy"), (P, D), dic)


def xs(count, offset=0):
    return [math.sin(0.13 * (i + offset) * (i % 7 + 1))
            for i in range(count * P)]


x = os.path.join(out, "x.npy")
if mode in ("good", "target", "nan", "short"):
    vals = xs(n)
    if mode == "nan":
        vals[3 * P + 2] = float("nan")
    write_npy(x, (n, P), vals, "<f8")
    if mode == "short":
        data = open(x, "rb").read()
        open(x, "wb").write(data[:-12])
if mode == "target":
    write_npy(os.path.join(out, "ystar.npy"), (n, D), [0.0] * (n * D))
if mode == "layout":
    for sub, count in (("train", 40), ("valid", 5), ("test", 7)):
        os.makedirs(os.path.join(out, sub), exist_ok=True)
        write_npy(os.path.join(out, sub, "x.npy"), (count, P), xs(count, count))
if mode == "shape":
    write_npy(x, (n, P - 1), xs(n)[:n * (P - 1)])
if mode in ("fortran", "int"):
    write_npy(x, (n, P), xs(n), "<f4" if mode == "fortran" else "<i8")
    data = bytearray(open(x, "rb").read())
    header = data[10:10 + struct.unpack("<H", data[8:10])[0]]
    if mode == "fortran":
        header = header.replace(b"False", b"True ")
    data[10:10 + len(header)] = header
    open(x, "wb").write(bytes(data))
