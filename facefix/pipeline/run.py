"""`fix`: the batch job. Discover the inputs, plan what to do (skip finished outputs), make
sure the weights are there, then hand the work to an executor and collect its results.

With `ray_address` the work goes to the Ray executor (pipeline/ray_executor.py); discovery,
planning, events and the summary stay here, so a Ray run reports exactly as a local one."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from facefix.errors import SetupError
from facefix.io.discover import Job, discover
from facefix.networks.cache import Networks
from facefix.networks.device import make_deterministic, resolve_device
from facefix.pipeline.options import FixOptions
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
    ray_address: str | None = None,
) -> FixSummary:
    """Fix every image under `paths`. Setup problems raise SetupError before any image is read;
    per-file problems are failed results and the batch goes on. `ray_address` (`local`, `auto`,
    `ray://host:port`) runs the files on Ray workers instead of in this process."""
    events = events or SilentEvents()
    started = time.perf_counter()
    options.validate()
    if ray_address is not None:
        from facefix.pipeline.ray_executor import require_ray  # imports Ray only when it runs

        require_ray()
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
    results: Iterator[FileResult]
    if ray_address is None:
        device = resolve_device(options.device)
        _ensure_weights(options, download_progress)
        make_deterministic()
        networks = networks or Networks(options, device)
        results = run_sequential(todo, options, networks, events)
    else:
        from facefix.pipeline.ray_executor import LOCAL, run_ray

        if ray_address == LOCAL:
            # This machine is the only node: fetch its weights as a local run does. On a
            # cluster each worker checks (or fetches from --mirror) the weights on its node.
            _ensure_weights(options, download_progress)
        results = run_ray(todo, options, None, events, address=ray_address)
    # closing(): on Ctrl-C the executor stops its workers before the interrupt goes on.
    with contextlib.closing(results):  # type: ignore[type-var]  # executors are generators
        for result in results:
            summary.results.append(result)
            events.file_finished(result)
    summary.seconds = time.perf_counter() - started
    return summary


def _ensure_weights(options: FixOptions, download_progress: DownloadProgress | None) -> None:
    ensure_weights(
        options.required_weights(),
        options.weights_dir,
        offline=options.offline,
        mirrors=options.mirrors,
        progress=download_progress,
    )
