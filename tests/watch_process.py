"""A real `facefix watch --json` process for the tests and benchmarks/bench_watch.py: started as
the `facefix` script runs, its JSON events read by a thread as they come, waited for by what
they say, stopped by a signal. Its stdout must be JSON lines only: any other line is kept in
`unparsed` for the caller to check."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
EVENT_TIMEOUT = 60.0

Event = dict[str, Any]
Match = Callable[[Event], bool]


def facefix_env(threads: int = 1) -> dict[str, str]:
    """The environment of a facefix process here: this checkout, offline, `threads` OpenMP
    threads."""
    return {
        **os.environ,
        "OMP_NUM_THREADS": str(threads),
        "PYTHONPATH": str(REPO),
        "FACEFIX_OFFLINE": "1",
    }


def facefix_argv(command: str, upscaler: Path, *args: str) -> list[str]:
    """`facefix COMMAND` with the upscaler `upscaler` (its folder as --weights-dir), no worker
    threads, then `args`."""
    return [
        sys.executable,
        "-c",
        "from facefix_cli.cli import main; main()",
        command,
        "--upscaler",
        str(upscaler),
        "--weights-dir",
        str(upscaler.parent),
        "--workers",
        "0",
        *args,
    ]


def named(name: str) -> Match:
    return lambda event: event["event"] == name


class WatchProcess:
    """The process started from `argv` (a `watch --json` command line). `events` holds every
    event read so far, in order."""

    def __init__(
        self,
        argv: Sequence[str],
        env: dict[str, str] | None = None,
        stderr: int = subprocess.PIPE,
    ) -> None:
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            list(argv),
            env=env or facefix_env(),
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        self.events: list[Event] = []
        self.unparsed: list[str] = []  # stdout lines that were not JSON: there must be none
        self._new: queue.SimpleQueue[Event] = queue.SimpleQueue()
        self._cursor = 0  # where `next` looks from: past the event it returned last
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            try:
                self._new.put(json.loads(line))
            except json.JSONDecodeError:
                self.unparsed.append(line)

    def _find(self, match: Match, start: int, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        looked = start  # events before this one do not match
        while True:
            for index in range(looked, len(self.events)):
                if match(self.events[index]):
                    return index
            looked = len(self.events)
            try:
                self.events.append(self._new.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                self.process.kill()
                raise AssertionError(
                    f"no such event in {timeout:g}s; got {self.events}, not JSON {self.unparsed}"
                ) from None

    def wait_for(self, match: Match, timeout: float = EVENT_TIMEOUT) -> Event:
        """The first event `match` accepts: one seen already, or the first to come."""
        return self.events[self._find(match, 0, timeout)]

    def next(self, match: Match, timeout: float = EVENT_TIMEOUT) -> Event:
        """The first event `match` accepts after the one `next` returned last (a benchmark's
        `file` events, one per file it drops in)."""
        index = self._find(match, self._cursor, timeout)
        self._cursor = index + 1
        return self.events[index]

    def file_events(self, name: str) -> list[Event]:
        return [e for e in self.events if e["event"] == "file" and e["source"].endswith(name)]

    def stop(self, signum: int = signal.SIGTERM) -> tuple[int, Event, float]:
        """Signal the watch; its exit code, its summary, and the seconds the summary took."""
        self.process.send_signal(signum)
        sent = time.monotonic()
        summary = self.wait_for(named("summary"), timeout=EVENT_TIMEOUT)
        answered = time.monotonic() - sent
        return self.process.wait(timeout=EVENT_TIMEOUT), summary, answered
