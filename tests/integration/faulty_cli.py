"""`python faulty_cli.py fix ...`: the facefix CLI with one fault injected, for tests that need a
real process (SIGKILL, SIGTERM from outside, two runs at once). FACEFIX_FAULT picks it:

- `kill-write:N`: SIGKILL itself once the N-th temporary file is written, before the rename;
- `kill-release:N`: SIGKILL itself after the N-th output is in place, before its claim is released;
- `hang:N:DIR`: at the N-th image, create DIR/ready and sleep (for a signal from outside);
- `wait:DIR`: at each image (each batch, in the pipelined executor), create DIR/ready.PID and
  wait for DIR/go, then sleep 0.1 s (so that two runs overlap, or a signal arrives mid-run).

`kill-write`, `kill-release` and `wait` hook both executors; `hang` the sequential one only (a
GPU stage is waited for at exit, so a hang there would hold the process).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import facefix_cli.io.claims as claims
import facefix_cli.pipeline.executors.pipelined as pipelined
import facefix_cli.pipeline.file as file_module
from facefix_cli.cli import app

kind, _, argument = os.environ.get("FACEFIX_FAULT", "").partition(":")
calls = {"n": 0}


def nth() -> bool:
    calls["n"] += 1
    return calls["n"] == int(argument)


def die() -> None:
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


if kind == "kill-write":
    real_fsync = os.fsync

    def fsync(fd):
        real_fsync(fd)
        if nth():
            die()

    os.fsync = fsync
elif kind == "kill-release":
    real_release = claims.Claim.release

    def release(self):
        if nth():
            die()
        real_release(self)

    claims.Claim.release = release
elif kind == "hang":
    real_fix = file_module.fix_image
    argument, _, ready = argument.partition(":")

    def fix_image(source, options, networks):
        if nth():
            Path(ready, "ready").touch()
            time.sleep(300)
        return real_fix(source, options, networks)

    file_module.fix_image = fix_image
elif kind == "wait":
    real_fix = file_module.fix_image
    real_fix_batch = pipelined.fix_images
    sync = Path(argument)

    def wait_for_go() -> None:
        (sync / f"ready.{os.getpid()}").touch()
        deadline = time.monotonic() + 300
        while not (sync / "go").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.1)

    def fix_image(source, options, networks):
        wait_for_go()
        return real_fix(source, options, networks)

    def fix_images(sources, options, networks):  # the pipelined executor's GPU stage
        wait_for_go()
        return real_fix_batch(sources, options, networks)

    file_module.fix_image = fix_image
    pipelined.fix_images = fix_images

app(prog_name="facefix")
