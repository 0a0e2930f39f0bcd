"""Finds the PTX that a `--target host-cuda` export embeds in its static
library; with a ptxas path, assembles each module for its target.

usage: library_ptx.py LIBRARY.a [PTXAS WORK_DIR]"""
import os
import re
import subprocess
import sys

data = open(sys.argv[1], "rb").read()
modules = []
at = data.find(b".version")
while at != -1:
    end = data.find(b"\0", at)
    modules.append(data[at:end].decode())
    at = data.find(b".version", end)
targets = sorted({re.search(r"^\.target (sm_\d+)", m, re.M).group(1)
                  for m in modules})
kernels = sum(len(re.findall(r"^\.visible \.entry", m, re.M)) for m in modules)
print("PTX modules: %d, targets %s, %d kernels" % (len(modules),
                                                  ",".join(targets), kernels))
if len(sys.argv) > 2:
    ptxas, work = sys.argv[2:4]
    for i, m in enumerate(modules):
        src = os.path.join(work, "module%d.ptx" % i)
        open(src, "w").write(m)
        arch = re.search(r"^\.target (sm_\d+)", m, re.M).group(1)
        r = subprocess.run([ptxas, "-arch=" + arch, src, "-o", src + ".cubin"],
                           capture_output=True, text=True)
        print("module %d: ptxas %s %s" % (i, arch, "ok" if r.returncode == 0
                                           else "FAILED\n" + r.stderr))
