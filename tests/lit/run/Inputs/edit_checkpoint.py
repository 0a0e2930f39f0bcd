"""Damages a safetensors checkpoint on purpose: sets metadata entries
(KEY=VALUE) or flips one bit of the tensor data (--flip).

usage: edit_checkpoint.py FILE [KEY=VALUE ...] [--flip]"""
import json
import struct
import sys

path, edits = sys.argv[1], sys.argv[2:]
data = open(path, "rb").read()
n = struct.unpack("<Q", data[:8])[0]
header = json.loads(data[8:8 + n])
body = bytearray(data[8 + n:])
for e in edits:
    if e == "--flip":
        body[len(body) // 2] ^= 0x10
    else:
        k, v = e.split("=", 1)
        header["__metadata__"][k] = v
h = json.dumps(header).encode()
h += b" " * ((8 - len(h) % 8) % 8)
open(path, "wb").write(struct.pack("<Q", len(h)) + h + bytes(body))
