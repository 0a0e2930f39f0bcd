#!/usr/bin/env python3
"""Rewrites the CHECK lines of lit error tests from unrollc's current output.

    scripts/update_error_checks.py build/unrollc tests/lit/errors/foo.unroll ...

Each test keeps its RUN line and program; every '// CHECK' line is replaced
by the diagnostics unrollc prints now. Review the diff before committing:
this records what the compiler says, not what it should say.
"""
import os
import re
import subprocess
import sys

RUN = ("// RUN: not %unrollc check %s > %t 2>&1\n"
       "// RUN: FileCheck %s --match-full-lines --strict-whitespace "
       "--implicit-check-not=error: < %t\n")


def main():
    unrollc, files = sys.argv[1], sys.argv[2:]
    for path in files:
        path = os.path.abspath(path)
        with open(path) as f:
            lines = [l for l in f.read().splitlines(keepends=True)
                     if not l.startswith("// CHECK")]
        if not any(l.startswith("// RUN:") for l in lines):
            lines = RUN.splitlines(keepends=True) + lines
        run = next(l for l in lines if "%unrollc" in l)
        if "> %t 2>&1" not in run:
            print(f"skipped {path}: its RUN line is not the standard one")
            continue
        if lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
        with open(path, "w") as f:
            f.writelines(lines)
        # Run unrollc the way the RUN line does (%s: the test, %S: its folder).
        args = run.split("%unrollc", 1)[1].split(">")[0].split()
        args = [a.replace("%S", os.path.dirname(path) or ".")
                 .replace("%s", path) for a in args]
        out = subprocess.run([unrollc] + args, capture_output=True, text=True)
        if out.returncode != 1:
            sys.exit(f"{path}: unrollc exited {out.returncode}, expected 1")
        here = os.path.dirname(os.path.abspath(path)) + "/"
        checks = []
        for i, line in enumerate(out.stderr.splitlines()):
            line = line.replace(path, "{{.*}}" + os.path.basename(path))
            line = line.replace(here, "{{.*}}")
            line = re.sub(r"^/\S*/(stdlib/|Inputs/)", r"{{.*}}\1", line)
            if line == "":
                line = "{{^$}}"
            kind = "CHECK" if i == 0 else "CHECK-NEXT"
            checks.append(f"// {kind}:{line}\n")
        with open(path, "a") as f:
            f.writelines(checks)
        print(f"updated {path} ({len(checks)} lines)")


if __name__ == "__main__":
    main()
