"""`fix`: the batch job. Check the recipe and settings, discover the inputs, plan what to do
(skip finished outputs), make sure the weights are there, then hand the work to the executor
the settings choose (`pipeline.executors`) and collect its results.

Guarantees: setup problems raise SetupError before any image is read and before any file is
reported; every per-file problem is a failed (or crashed) result and the batch goes on; an
environment fault, a stop (the time limit or `should_stop`, checked before each file) or an
interrupt (Ctrl-C, SIGTERM/SIGHUP as `errors.Interrupted`) ends the run early with the summary
of what was done: `summary.fault`, `summary.stopped` and `summary.signal` say which. Discovery,
planning, events and the summary are the same whichever executor runs the files."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import assert_never

from facefix_cli.errors import EnvironmentFault, Interrupted, SetupError
from facefix_cli.io import claims
from facefix_cli.io.discover import Job, Kind, normalise_extensions, scan
from facefix_cli.pipeline.executors import Work, choose_executor
from facefix_cli.pipeline.results import (
    FileResult,
    FixEvents,
    FixSummary,
    RunStart,
    Status,
    StopReason,
)
from facefix_cli.pipeline.settings import RunSettings
from facefix_cli.recipe import Recipe
from facefix_cli.silent import Silent
from facefix_cli.weights import digests
from facefix_cli.weights.download import ensure_weights
from facefix_cli.weights.progress import DownloadProgress
from facefix_cli.weights.registry import REGISTRY, Registry


def plan(
    paths: Sequence[Path],
    settings: RunSettings,
    found_work: Callable[[Job], None] | None = None,
) -> tuple[list[Job], list[FileResult], list[FileResult]]:
    """(jobs to do, skipped results, failed results) for `paths`, touching nothing. Files whose
    output exists are skipped from the folder listings, unopened; `found_work` is called with
    the first job to do as soon as the walk finds it (the run starts loading networks then)."""
    try:
        extensions = normalise_extensions(settings.extensions)
    except ValueError as exc:
        raise SetupError(str(exc)) from None
    failed: list[FileResult] = []
    unusable: list[FileResult] = []  # outputs that cannot be made: after the walk's rejections
    other_types: list[FileResult] = []  # images of a type --ext did not ask for
    done: list[FileResult] = []
    todo: list[Job] = []
    for found in scan(
        paths,
        recursive=settings.recursive,
        extensions=extensions,
        output_dir=settings.output_dir,
        overwrite=settings.overwrite,
    ):
        match found.kind:
            case Kind.TODO:
                todo.append(found.job)
                if found_work is not None and len(todo) == 1:
                    found_work(todo[0])
            case Kind.DONE:
                done.append(FileResult(found.source, found.output, Status.SKIPPED, found.reason))
            case Kind.OTHER_TYPE:
                other_types.append(FileResult(found.source, None, Status.SKIPPED, found.reason))
            case Kind.REJECTED:
                result = FileResult(found.source, found.output, Status.FAILED, found.reason)
                (failed if found.output is None else unusable).append(result)
            case _:
                assert_never(found.kind)
    return todo, other_types + done, failed + unusable


def fix(
    paths: Sequence[Path],
    recipe: Recipe,
    settings: RunSettings,
    *,
    events: FixEvents | None = None,
    download_progress: DownloadProgress | None = None,
    should_stop: Callable[[], bool] | None = None,
    registry: Registry = REGISTRY,
) -> FixSummary:
    """Fix every image under `paths` by `recipe` and return what was done. Missing weights are
    fetched as `registry` pins them (tests pass stand-ins). `should_stop` is asked before each
    new file, beside `settings.time_limit`."""
    # 1. check the inputs: nothing is touched before the recipe and settings are sound
    started = time.perf_counter()
    recipe.validate()
    settings.validate()
    executor = choose_executor(settings)
    executor.check()
    events = events or Silent()
    summary = FixSummary(
        recipe=tuple(recipe.rows()),
        time_limit=settings.time_limit.text if settings.time_limit is not None else None,
    )
    stop_requested = should_stop or (lambda: False)
    time_limit = settings.time_limit

    def stop_now() -> bool:
        if time_limit is not None and time_limit.passed():
            summary.stopped = StopReason.TIME_LIMIT
        elif stop_requested():
            summary.stopped = StopReason.REQUESTED
        return summary.stopped is not None

    # 2. plan: what is there, what is done already
    todo, skipped, failed = plan(paths, settings)
    summary.results.extend(failed + skipped)
    found = len(todo) + len(skipped) + len(failed)
    description = ", ".join(f"{label} {value}" for label, value in recipe.rows() + settings.rows())

    def announce(devices: str) -> None:
        events.run_started(
            RunStart(devices, description, found, len(todo), len(skipped), len(failed))
        )
        events.started(found)
        for result in summary.results:
            events.file_finished(result)

    # 3. clean up after killed runs: their temporary files and claims
    if not settings.dry_run:
        # by name: hashing 20,000 Paths would cost more than the whole walk
        folders = {os.path.dirname(j.output) for j in todo}
        folders |= {os.path.dirname(r.output) for r in skipped if r.output is not None}
        for folder in sorted(folders):
            claims.sweep_folder(Path(folder))
    if settings.dry_run or not todo:
        announce("none")
        for job in todo:
            result = FileResult(job.source, job.output, Status.PLANNED)
            summary.results.append(result)
            events.file_finished(result)
        summary.seconds = time.perf_counter() - started
        return summary

    # 4. the devices and the weights
    summary.devices = executor.devices(settings)
    if executor.fetches_weights_here(settings):
        ensure_weights(
            recipe.required_weights(registry),
            settings.weights_dir,
            offline=settings.offline,
            mirrors=settings.mirrors,
            progress=download_progress,
        )
        # What the outputs will record: each file's own digest (cached beside it), and one
        # warning per file that is not the released one.
        models, notices = digests.compare(
            recipe.required_weights(registry),
            settings.weights_dir,
            [path for path in (recipe.upscaler_path, recipe.restorer_path) if path is not None],
        )
        summary.models = tuple(models)
    else:
        notices = []
    announce(summary.devices)
    for notice in notices:
        events.weights_notice(notice)

    # 5. the files, through the executor
    work = Work(todo, recipe, settings, events, stop_now, registry)
    done = 0
    try:
        # closing: Ctrl-C in this loop stops the executor's threads or workers at once, not at
        # garbage collection (the traceback keeps the generator alive).
        with contextlib.closing(executor.run(work)) as results:
            for result in results:
                done += 1
                summary.results.append(result)
                events.file_finished(result)
        if done == len(todo):
            summary.stopped = None  # the limit passed as the last file finished: nothing left
        elif summary.stopped is None:
            summary.stopped = StopReason.REQUESTED
    except EnvironmentFault as exc:
        summary.fault = str(exc)
    except KeyboardInterrupt as exc:
        summary.interrupted(exc.signum if isinstance(exc, Interrupted) else signal.SIGINT)
    summary.not_started = len(todo) - done
    summary.seconds = time.perf_counter() - started
    return summary
