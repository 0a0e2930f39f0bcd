"""Kernel-cache pruning. `setup DIR`: the one library in DIR becomes one an
earlier unrollc build made (same program and target, another build id),
beside a dead compile's scratch folder and temporary file and another
program's library. `check DIR`: after a rebuild, only the new library and
the other program's are left."""
import glob
import os
import sys

mode, d = sys.argv[1], sys.argv[2]
if mode == "setup":
    (lib,) = glob.glob(os.path.join(d, "*-host-*.so"))
    plan = os.path.basename(lib).split("-")[0]
    os.rename(lib, os.path.join(d, plan + "-host-0000000000000000.so"))
    os.mkdir(os.path.join(d, ".unroll-kernels-999999999"))
    open(os.path.join(d, plan + "-host-1.so.tmp999999999"), "w").close()
    open(os.path.join(d, "ffffffffffffffff-host-1.so"), "w").close()
else:
    for f in sorted(os.listdir(d)):
        print("left:", f)
