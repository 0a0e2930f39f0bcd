"""Interrupts `unrollc train` with SIGKILL and with SIGINT in the middle of
a run, resumes it, and checks that the result is bit for bit the one of an
uninterrupted run (checkpoint file and per-epoch metrics).

usage: kill_resume.py UNROLLC SPEC WORKDIR [--set k=v ...]"""
import json
import os
import signal
import subprocess
import sys
import time

unrollc, spec, work = sys.argv[1:4]
settings = sys.argv[4:]


def train(out, *extra, wait=True):
    cmd = [unrollc, "train", spec, "--out", out, *settings, *extra]
    p = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    if wait:
        _, err = p.communicate()
        if p.returncode != 0:
            sys.exit("%s failed (%d):\n%s" % (cmd, p.returncode, err))
    return p


def epochs_done(out):
    try:
        with open(os.path.join(out, "metrics.jsonl")) as f:
            return sum(1 for _ in f)
    except FileNotFoundError:
        return 0


def interrupt(out, sig):
    p = train(out, wait=False)
    deadline = time.time() + 120
    while epochs_done(out) < 2:
        if p.poll() is not None or time.time() > deadline:
            sys.exit("the run ended before it could be interrupted; make "
                     "its epochs longer")
        time.sleep(0.02)
    p.send_signal(sig)
    _, err = p.communicate()
    return p.returncode, err


def metrics(out):
    with open(os.path.join(out, "metrics.jsonl")) as f:
        lines = [json.loads(l) for l in f]
    for m in lines:
        del m["seconds"]
    return lines


def same(a, b, what):
    with open(os.path.join(a, "checkpoint.safetensors"), "rb") as f:
        ca = f.read()
    with open(os.path.join(b, "checkpoint.safetensors"), "rb") as f:
        cb = f.read()
    if ca != cb:
        sys.exit(what + ": the resumed checkpoint differs")
    if metrics(a) != metrics(b):
        sys.exit(what + ": the resumed metrics differ")
    print(what + ": resumed run identical to the uninterrupted one")


ref = os.path.join(work, "ref")
train(ref)
n = epochs_done(ref)

killed = os.path.join(work, "killed")
rc, _ = interrupt(killed, signal.SIGKILL)
print("SIGKILL: exit", rc, "after", epochs_done(killed), "of", n, "epochs")
train(killed, "--resume")
same(ref, killed, "SIGKILL")

stopped = os.path.join(work, "stopped")
rc, err = interrupt(stopped, signal.SIGINT)
print("SIGINT: exit", rc)
print([l for l in err.splitlines() if l.startswith("interrupted")][0])
train(stopped, "--resume")
same(ref, stopped, "SIGINT")
