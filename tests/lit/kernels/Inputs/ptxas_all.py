"""Splits `unrollc --emit=ptx` output into its modules and assembles each
with ptxas for the architecture it targets; prints one line per module.

usage: ptxas_all.py PTXAS FILE WORK_DIR"""
import os
import re
import subprocess
import sys

ptxas, path, work = sys.argv[1:4]
modules, name = {}, None
for line in open(path):
    if line.startswith("// unroll kernel "):
        name = line.split()[-1]
        modules[name] = []
    elif name:
        modules[name].append(line)
failed = 0
for name, lines in modules.items():
    text = "".join(lines)
    arch = re.search(r"^\.target (sm_\d+)", text, re.M).group(1)
    src = os.path.join(work, name + ".ptx")
    open(src, "w").write(text)
    r = subprocess.run([ptxas, "-arch=" + arch, src, "-o",
                        os.path.join(work, name + ".cubin")],
                       capture_output=True, text=True)
    print("%s: ptxas %s %s" % (name, arch, "ok" if r.returncode == 0 else
                                "FAILED\n" + r.stderr))
    failed |= r.returncode != 0
sys.exit(1 if failed else 0)
