"""The thread budget of a run (`--threads N`): the network stage's torch threads and the
decode+encode workers together never use more than N threads, N being by default the cores
this process may run on. Torch-free, so the executor can be chosen before torch is imported.

Why: OpenMP threads that outnumber the cores, or spin while their stage waits, cost CPU time
instead of saving wall time (on a shared 2-core machine, ~2x the CPU seconds per image beside
other jobs, `benchmarks/RESULTS.md`). The CLI also sets `OMP_WAIT_POLICY=PASSIVE` before torch
loads, so idle OpenMP threads sleep instead of spinning."""

from __future__ import annotations

import os
from dataclasses import dataclass

MAX_AUTO_WORKERS = 8  # beyond that one GPU is the bottleneck


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity, which `taskset` and cgroup cpusets
    narrow), else the machine's."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def default_threads() -> int:
    """--threads when not given: OMP_NUM_THREADS where the user set a positive number (the
    budget torch would otherwise take), else every available core."""
    try:
        value = int(os.environ.get("OMP_NUM_THREADS", ""))
    except ValueError:
        value = 0
    return value if value > 0 else available_cores()


def default_workers(threads: int | None = None) -> int:
    """Decode+encode threads when --workers is not given: one thread of the budget is left to
    the network stage's host work, at most MAX_AUTO_WORKERS."""
    budget = default_threads() if threads is None else threads
    return max(1, min(MAX_AUTO_WORKERS, budget - 1))


@dataclass(frozen=True)
class ThreadPlan:
    """How a local run spends its thread budget."""

    sequential: bool  # one file after another in the caller's thread (no workers)
    torch_threads: int  # intra-op threads of the network stage(s)
    workers: int  # decode+encode threads beside them (0 when sequential)


def plan_threads(threads: int | None, workers: int | None, *, cpu_only: bool) -> ThreadPlan:
    """The executor shape and thread counts for a budget of `threads` (None: the default).

    - `workers == 0`: sequential, every thread to torch.
    - CPU-only networks and no --workers: sequential too. The networks are the CPU's work, and
      decoding ahead in worker threads measured no faster than one file at a time while its
      threads competed with torch's.
    - Otherwise pipelined: the workers asked for (default: budget - 1), at most budget - 1,
      and torch gets what is left, at least one thread. A budget of 1 cannot hold a worker
      beside a network stage, so it runs sequentially.
    Several network stages (one per GPU) share the one process-wide torch setting."""
    budget = max(1, default_threads() if threads is None else threads)
    if workers == 0 or (cpu_only and workers is None) or budget < 2:
        return ThreadPlan(sequential=True, torch_threads=budget, workers=0)
    chosen = default_workers(budget) if workers is None else workers
    chosen = max(1, min(chosen, budget - 1))
    return ThreadPlan(sequential=False, torch_threads=max(1, budget - chosen), workers=chosen)
