"""Reads and writes float .npy files, and reads the float32 parameters of
a safetensors checkpoint, by hand (the tests use no numpy)."""
import json
import math
import struct


def write_npy(path, shape, values, dtype="<f4"):
    header = "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }" % (
        dtype, "".join("%d, " % s for s in shape).rstrip(" ") if len(shape) > 1
        else "%d," % shape[0])
    pad = (64 - (10 + len(header) + 1) % 64) % 64
    header += " " * pad + "\n"
    # Other dtypes ('<i8', '<f2') get float64 bytes: enough for a reader
    # that must refuse them.
    fmt = "<%d%s" % (len(values), "f" if dtype == "<f4" else "d")
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)))
        f.write(header.encode())
        f.write(struct.pack(fmt, *values))


def read_npy(path):
    data = open(path, "rb").read()
    assert data[:6] == b"\x93NUMPY", path
    n = struct.unpack("<H", data[8:10])[0]
    header = data[10:10 + n].decode()
    assert "'descr': '<f4'" in header, header
    shape = tuple(int(s) for s in header.split("(")[1].split(")")[0].split(",")
                  if s.strip())
    count = math.prod(shape)
    return shape, struct.unpack("<%df" % count, data[10 + n:10 + n + 4 * count])


def read_params(path, prefix="param."):
    """The float32 tensors of a safetensors file whose names start with
    `prefix`, as {name: (shape, values)}."""
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    out = {}
    for k, v in header.items():
        if k.startswith(prefix) and k != "__metadata__" and v["dtype"] == "F32":
            a, b = v["data_offsets"]
            out[k] = (v["shape"], struct.unpack(
                "<%df" % ((b - a) // 4), data[8 + n + a:8 + n + b]))
    return out
