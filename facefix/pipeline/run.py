"""`fix`: the batch job. Discover the inputs, plan what to do (skip finished outputs), make
sure the weights are there, then hand the work to an executor and collect its results."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from facefix.errors import SetupError
from facefix.io.discover import Job, Rejected, discover
from facefix.networks.cache import Networks
from facefix.networks.device import make_deterministic, resolve_device
from facefix.pipeline.options import FixOptions
from facefix.pipeline.results import FileResult, FixEvents, FixSummary, SilentEvents
from facefix.pipeline.sequential import run_sequential
from facefix.weights.download import DownloadProgress, ensure_weights
from facefix.weights.registry import REGISTRY, Registry


def fix(
    paths: Sequence[Path],
    options: FixOptions,
    *,
    events: FixEvents | None = None,
    networks: Networks | None = None,
    download_progress: DownloadProgress | None = None,
    registry: Registry = REGISTRY,
) -> FixSummary:
    """Fix every image under `paths`. Setup problems raise SetupError before any image is read;
    per-file problems are failed results and the batch goes on. Missing weights are fetched
    as `registry` pins them (tests pass stand-ins)."""
    events = events or SilentEvents()
    started = time.perf_counter()
    options.validate()
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
    summary = FixSummary()
    summary.results.extend(FileResult(r.path, None, "failed", r.reason) for r in rejected)
    summary.results.extend(FileResult(r.path, None, "skipped", r.reason) for r in other_types)
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
    device = resolve_device(options.device)
    ensure_weights(
        options.required_weights(registry),
        options.weights_dir,
        offline=options.offline,
        mirrors=options.mirrors,
        progress=download_progress,
    )
    make_deterministic()
    networks = networks or Networks(options, device)
    for result in run_sequential(todo, options, networks, events):
        summary.results.append(result)
        events.file_finished(result)
    summary.seconds = time.perf_counter() - started
    return summary
