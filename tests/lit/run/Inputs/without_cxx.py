"""Runs a command where `c++` fails (a stand-in first on the PATH), as on a
machine without a C++ compiler."""
import os
import stat
import subprocess
import sys
import tempfile

with tempfile.TemporaryDirectory() as d:
    cxx = os.path.join(d, "c++")
    with open(cxx, "w") as f:
        f.write("#!/bin/sh\necho 'c++: not installed' >&2\nexit 127\n")
    os.chmod(cxx, stat.S_IRWXU)
    env = dict(os.environ, PATH=d + os.pathsep + os.environ.get("PATH", ""))
    sys.exit(subprocess.run(sys.argv[1:], env=env).returncode)
