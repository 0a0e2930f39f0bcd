# lit configuration for Unroll's golden tests (one folder per stage).
import os
import lit.formats

# The build's settings (paths) come from the generated site config, passed
# as --param unroll_site_config=build/tests/lit/lit.site.cfg.py.
site = lit_config.params.get("unroll_site_config")
if not site or not os.path.exists(site):
    lit_config.fatal("run through ctest, or pass --param unroll_site_config=")
exec(open(site).read())

config.name = "unroll"
config.test_format = lit.formats.ShTest(execute_external=False)
config.suffixes = [".unroll", ".mlir"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.unroll_build_dir, "tests", "lit")
# Inputs/ folders hold files that tests import; they are not tests.
config.excludes = ["Inputs"]

llvm_bin = config.llvm_tools_dir
config.environment["PATH"] = os.pathsep.join(
    [llvm_bin, config.environment.get("PATH", "")])
import sys
config.substitutions.append(("%python", sys.executable))
config.substitutions.append(("%unrollc", os.path.join(config.unroll_build_dir, "unrollc")))
config.substitutions.append(("%unroll-opt", os.path.join(config.unroll_build_dir, "unroll-opt")))
config.substitutions.append(("%unroll-run", os.path.join(config.unroll_build_dir, "unroll-run")))
config.substitutions.append(("%stdlib", config.unroll_stdlib_dir))
config.substitutions.append(("%examples", config.unroll_examples_dir))
config.substitutions.append(("%srcroot", config.unroll_source_dir))
config.substitutions.append(("%builddir", config.unroll_build_dir))
# Solved targets are cached per build, never in the user's ~/.cache.
config.environment["UNROLL_CACHE_DIR"] = os.path.join(
    config.unroll_build_dir, "tests", "lit", "target-cache")
# GPU tests (REQUIRES: cuda) run only where the runtime's LibTorch sees a GPU;
# elsewhere lit reports them as UNSUPPORTED.
import subprocess
try:
    version = subprocess.run(
        [os.path.join(config.unroll_build_dir, "unrollc"), "--version"],
        capture_output=True, text=True, timeout=120).stdout
except (OSError, subprocess.SubprocessError):
    version = ""
if "CUDA available" in version:
    config.available_features.add("cuda")

# ptxas assembles the generated PTX where the CUDA toolkit is installed
# (tests/lit/kernels/ptxas.unroll); elsewhere that test is UNSUPPORTED.
import shutil
ptxas = shutil.which("ptxas") or (
    "/usr/local/cuda/bin/ptxas"
    if os.path.exists("/usr/local/cuda/bin/ptxas") else None)
if ptxas:
    config.available_features.add("ptxas")
    config.substitutions.append(("%ptxas", ptxas))
