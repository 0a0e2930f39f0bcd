"""Prints a run's primal optimizer and learning rate per epoch (config.json
and metrics.jsonl) and the optimizer state its checkpoint holds for the
first layer's parameters (no numpy: the safetensors header is read by hand).

usage: checkpoint_keys.py RUN_DIR"""
import json
import os
import struct
import sys

run = sys.argv[1]
config = json.load(open(os.path.join(run, "config.json")))
rates = [json.loads(l)["lr"] for l in open(os.path.join(run, "metrics.jsonl"))]
print("optimizer %s, lr per epoch [%s]" % (
    config["options"]["primal"], ", ".join("%g" % r for r in rates)))
data = open(os.path.join(run, "checkpoint.safetensors"), "rb").read()
n = struct.unpack("<Q", data[:8])[0]
keys = [k for k in json.loads(data[8:8 + n]) if k != "__metadata__"]
state = sorted((k for k in keys if not k.startswith(("param.", "dual.", "crc32."))
                and ".1." in k), key=lambda k: (k.split(".")[2] != "Wu", k))
print("state:", " ".join(state))
