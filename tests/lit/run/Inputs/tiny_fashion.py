"""Writes a Fashion-MNIST-shaped data directory (gzip IDX image files)
with few images.

usage: tiny_fashion.py DIR TRAIN_IMAGES TEST_IMAGES"""
import gzip
import os
import struct
import sys

out, n_train, n_test = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
os.makedirs(out, exist_ok=True)
for name, n in (("train", n_train), ("t10k", n_test)):
    pixels = bytes((i * 7) % 256 for i in range(n * 28 * 28))
    with gzip.open(os.path.join(out, name + "-images-idx3-ubyte.gz"), "wb") as f:
        f.write(struct.pack(">4B3I", 0, 0, 8, 3, n, 28, 28) + pixels)
