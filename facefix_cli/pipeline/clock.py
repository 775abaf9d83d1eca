"""`StageClock`: optional per-stage timing for executors, off by default.

Executors time their stages (decode, fix, encode, write; the model load) into the clock that
`current_clock()` returns, which is `NO_CLOCK`, a clock that records nothing, unless a
benchmark or profiler installs a real one with `record_stages()`. Stage seconds are summed over
every thread, so with several workers they add up to more than the wall time; `finished_at`
holds the `time.perf_counter()` of each finished file for steady-state rates."""

from __future__ import annotations

import os
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager


class StageClock:
    """Thread-safe sums of seconds and counts per stage name."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.seconds: dict[str, float] = defaultdict(float)
        self.counts: dict[str, int] = defaultdict(int)
        self.finished_at: list[float] = []

    def add(self, name: str, seconds: float, count: int = 1) -> None:
        with self._lock:
            self.seconds[name] += seconds
            self.counts[name] += count

    @contextmanager
    def stage(self, name: str, count: int = 1) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - start, count)

    def file_finished(self) -> None:
        with self._lock:
            self.finished_at.append(time.perf_counter())


class _NoClock(StageClock):
    """Records nothing: the default, so timing costs nothing unless asked for."""

    def add(self, name: str, seconds: float, count: int = 1) -> None:
        pass

    @contextmanager
    def stage(self, name: str, count: int = 1) -> Iterator[None]:
        yield

    def file_finished(self) -> None:
        pass


NO_CLOCK: StageClock = _NoClock()
_installed: StageClock = NO_CLOCK


def current_clock() -> StageClock:
    """The clock executors report into: `NO_CLOCK` unless `record_stages()` is active."""
    return _installed


@contextmanager
def record_stages() -> Iterator[StageClock]:
    """Install a fresh StageClock for the runs inside the `with` block, process-wide."""
    global _installed
    previous, _installed = _installed, StageClock()
    try:
        yield _installed
    finally:
        _installed = previous


def process_age() -> float:
    """Seconds since this process started (Linux: its start time in /proc/self/stat against the
    boot clock); 0.0 where the system does not say. What `--max-time` counts from: the imports
    before the run are part of the interval a cron run must fit in."""
    from facefix_cli.io.claims import process_start

    ticks = process_start(os.getpid())
    if ticks is None:
        return 0.0
    try:
        since_boot = time.clock_gettime(time.CLOCK_BOOTTIME)
        per_second = os.sysconf("SC_CLK_TCK")
    except (AttributeError, OSError, ValueError):
        return 0.0
    return max(0.0, since_boot - ticks / per_second)
