"""`fix`: the batch job. Discover the inputs, plan what to do (skip finished outputs), make
sure the weights are there, then hand the work to an executor and collect its results.

Guarantees: setup problems raise SetupError before any image is read and before any file is
reported; every per-file problem is a failed (or crashed) result and the batch goes on; an
environment fault, a stop request (`should_stop`, checked before each file) or an interrupt
(Ctrl-C, SIGTERM/SIGHUP as `errors.Interrupted`) ends the run early with the summary of what was
done: `summary.fault`, `summary.stopped` and `summary.signal` say which.

With `ray_address` the work goes to the Ray executor (pipeline/ray_executor.py); discovery,
planning, events and the summary stay here, so a Ray run reports exactly as a local one."""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Callable, Generator, Sequence
from pathlib import Path

import torch

from facefix_cli.errors import EnvironmentFault, Interrupted, SetupError
from facefix_cli.io import claims
from facefix_cli.io.discover import Job, Rejected, discover
from facefix_cli.networks.cache import Networks
from facefix_cli.networks.device import make_deterministic, resolve_devices
from facefix_cli.pipeline.options import FixOptions
from facefix_cli.pipeline.pipelined import run_pipelined
from facefix_cli.pipeline.results import FileResult, FixEvents, FixSummary, RunInfo, SilentEvents
from facefix_cli.pipeline.sequential import run_sequential
from facefix_cli.weights.download import DownloadProgress, ensure_weights
from facefix_cli.weights.registry import REGISTRY, Registry


def plan(
    paths: Sequence[Path], options: FixOptions
) -> tuple[list[Job], list[FileResult], list[FileResult]]:
    """(jobs to do, skipped results, failed results) for `paths`, touching nothing."""
    other_types: list[Rejected] = []  # images of a type --ext did not ask for
    try:
        jobs, rejected = discover(
            paths,
            recursive=options.recursive,
            extensions=options.extensions,
            output_dir=options.output_dir,
            skipped=other_types,
        )
    except ValueError as exc:
        raise SetupError(str(exc)) from None
    failed = [FileResult(r.path, None, "failed", r.reason) for r in rejected]
    skipped = [FileResult(r.path, None, "skipped", r.reason) for r in other_types]
    todo: list[Job] = []
    for job in jobs:
        try:
            exists = job.output.exists()
        except OSError as exc:  # a name too long for the file system, a loop in the path
            failed.append(
                FileResult(job.source, job.output, "failed", f"cannot use output: {exc.strerror}")
            )
            continue
        if exists and not options.overwrite:
            skipped.append(
                FileResult(job.source, job.output, "skipped", "output exists (use --overwrite)")
            )
        else:
            todo.append(job)
    return todo, skipped, failed


def fix(
    paths: Sequence[Path],
    options: FixOptions,
    *,
    events: FixEvents | None = None,
    networks: Networks | None = None,
    download_progress: DownloadProgress | None = None,
    should_stop: Callable[[], bool] | None = None,
    registry: Registry = REGISTRY,
    ray_address: str | None = None,
) -> FixSummary:
    """Fix every image under `paths` and return what was done. Missing weights are fetched as
    `registry` pins them (tests pass stand-ins). `ray_address` (`local`, `auto`,
    `ray://host:port`) runs the files on Ray workers instead of in this process."""
    events = events or SilentEvents()
    should_stop = should_stop or (lambda: False)
    started = time.perf_counter()
    options.validate()
    if ray_address is not None:
        from facefix_cli.pipeline.ray_executor import require_ray  # imports Ray only when it runs

        require_ray()
    todo, skipped, failed = plan(paths, options)
    summary = FixSummary()
    summary.results.extend(failed + skipped)
    found = len(todo) + len(skipped) + len(failed)

    def announce(device: str) -> None:
        events.run_started(
            RunInfo(device, options.describe(), found, len(todo), len(skipped), len(failed))
        )
        events.started(found)
        for result in summary.results:
            events.file_finished(result)

    if not options.dry_run:  # temporary files and claims that killed runs left behind
        folders = {j.output.parent for j in todo}
        folders |= {r.output.parent for r in skipped if r.output is not None}
        for folder in sorted(folders):
            claims.sweep_folder(folder)
    if options.dry_run or not todo:
        announce("none")
        for job in todo:
            result = FileResult(job.source, job.output, "planned")
            summary.results.append(result)
            events.file_finished(result)
        summary.seconds = time.perf_counter() - started
        return summary
    devices = resolve_devices(options.device) if ray_address is None else []
    if ray_address is None or ray_address == "local":
        # This machine is the only node: fetch its weights here. On a cluster each Ray worker
        # checks (or fetches from --mirror) the weights on its own node.
        ensure_weights(
            options.required_weights(registry),
            options.weights_dir,
            offline=options.offline,
            mirrors=options.mirrors,
            progress=download_progress,
        )
    if ray_address is None:
        announce(", ".join(str(device) for device in devices))
    else:
        announce(f"Ray {ray_address}, {options.device}")
    done = 0
    try:
        # closing: Ctrl-C in this loop stops the executor's threads or workers at once, not at
        # garbage collection (the traceback keeps the generator alive).
        if ray_address is None:
            make_deterministic()
            networks = networks or Networks(options, devices[0])
            executor = execute(todo, options, networks, devices, events, should_stop=should_stop)
        else:
            from facefix_cli.pipeline.ray_executor import run_ray

            executor = run_ray(
                todo, options, None, events, should_stop=should_stop, address=ray_address
            )
        with contextlib.closing(executor) as results:
            for result in results:
                done += 1
                summary.results.append(result)
                events.file_finished(result)
        if done < len(todo):
            summary.stopped = "stop requested"
    except EnvironmentFault as exc:
        summary.fault = str(exc)
    except KeyboardInterrupt as exc:
        summary.signal = exc.signum if isinstance(exc, Interrupted) else signal.SIGINT
        summary.stopped = f"interrupted by {signal.Signals(summary.signal).name}"
    summary.not_started = len(todo) - done
    summary.seconds = time.perf_counter() - started
    return summary


def execute(
    jobs: Sequence[Job],
    options: FixOptions,
    networks: Networks,
    devices: Sequence[torch.device],
    events: FixEvents,
    *,
    should_stop: Callable[[], bool] = lambda: False,
) -> Generator[FileResult, None, None]:
    """The executor `options.workers` asks for: 0 = sequential on the first device; otherwise
    pipelined, with one GPU stage per device (`networks` serves the first)."""
    if options.workers == 0:
        executor = run_sequential(jobs, options, networks, events, should_stop=should_stop)
    else:
        extra = [Networks(options, device) for device in devices[1:]]
        executor = run_pipelined(
            jobs, options, networks, events, should_stop=should_stop, extra_networks=extra
        )
    with contextlib.closing(executor) as results:
        yield from results
