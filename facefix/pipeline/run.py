"""`fix`: the batch job. Discover the inputs, plan what to do (skip finished outputs), make
sure the weights are there, then hand the work to an executor and collect its results."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import torch

from facefix.errors import SetupError
from facefix.io.discover import Job, discover
from facefix.networks.cache import Networks
from facefix.networks.device import make_deterministic, resolve_devices
from facefix.pipeline.options import FixOptions
from facefix.pipeline.pipelined import run_pipelined
from facefix.pipeline.results import FileResult, FixEvents, FixSummary, SilentEvents
from facefix.pipeline.sequential import run_sequential
from facefix.weights.download import DownloadProgress, ensure_weights


def fix(
    paths: Sequence[Path],
    options: FixOptions,
    *,
    events: FixEvents | None = None,
    networks: Networks | None = None,
    download_progress: DownloadProgress | None = None,
) -> FixSummary:
    """Fix every image under `paths`. Setup problems raise SetupError before any image is read;
    per-file problems are failed results and the batch goes on."""
    events = events or SilentEvents()
    started = time.perf_counter()
    options.validate()
    try:
        jobs, rejected = discover(
            paths,
            recursive=options.recursive,
            extensions=options.extensions,
            output_dir=options.output_dir,
        )
    except ValueError as exc:
        raise SetupError(str(exc)) from None
    summary = FixSummary()
    summary.results.extend(FileResult(r.path, None, "failed", r.reason) for r in rejected)
    todo: list[Job] = []
    for job in jobs:
        if job.output.exists() and not options.overwrite:
            summary.results.append(
                FileResult(job.source, job.output, "skipped", "output exists (use --overwrite)")
            )
        else:
            todo.append(job)
    events.started(len(summary.results) + len(todo))
    for result in summary.results:
        events.file_finished(result)
    if options.dry_run or not todo:
        for job in todo:
            result = FileResult(job.source, job.output, "planned")
            summary.results.append(result)
            events.file_finished(result)
        summary.seconds = time.perf_counter() - started
        return summary
    devices = resolve_devices(options.device)
    ensure_weights(
        options.required_weights(),
        options.weights_dir,
        offline=options.offline,
        mirrors=options.mirrors,
        progress=download_progress,
    )
    make_deterministic()
    networks = networks or Networks(options, devices[0])
    # closing: Ctrl-C in this loop stops the executor's threads at once, not at garbage
    # collection (the traceback keeps the generator alive).
    with contextlib.closing(execute(todo, options, networks, devices, events)) as results:
        for result in results:
            summary.results.append(result)
            events.file_finished(result)
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
) -> Iterator[FileResult]:
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
