"""Runs a command and succeeds only if it exits with the given status."""
import subprocess
import sys

want = int(sys.argv[1])
got = subprocess.run(sys.argv[2:], stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL).returncode
if got != want:
    sys.exit(f"expected exit status {want}, got {got}")
