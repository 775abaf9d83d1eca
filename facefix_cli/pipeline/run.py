"""`fix`: the batch job. Check the recipe and settings, walk the inputs and plan what to do
(finished outputs are skipped from the folder listings, unopened), then hand the work to a
`FixSession` (`pipeline.session`: the executor the settings choose, the networks loaded once)
and collect its results.

Walk first, pay later: torch is imported and networks loaded only once the walk finds a file to
do; at that moment the machine is checked (`io.environment`: an --output-dir that cannot be
written, a full disk: exit 4 before any load), the weights are made sure of, and the networks
start loading in the background (`pipeline.preload`) while the walk goes on; the executor's
network stage waits for that load. A run with nothing to do never imports torch.

Guarantees: setup problems raise SetupError before any image is read and before any file is
reported; every per-file problem is a failed (or crashed) result and the batch goes on; an
environment fault, a stop (the time limit or `should_stop`, checked before each file) or an
interrupt (Ctrl-C, SIGTERM/SIGHUP as `errors.Interrupted`) ends the run early with the summary
of what was done: `summary.fault`, `summary.stopped` and `summary.signal` say which. Discovery,
planning, events and the summary are the same whichever executor runs the files."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, assert_never

from facefix_cli.errors import EnvironmentFault, Interrupted, SetupError
from facefix_cli.io import claims, ledger, marks
from facefix_cli.io.discover import Job, Kind, normalise_extensions, scan
from facefix_cli.io.names import display_path
from facefix_cli.pipeline.results import (
    FileResult,
    FixEvents,
    FixSummary,
    RunStart,
    Status,
    StopReason,
)
from facefix_cli.pipeline.session import FixSession
from facefix_cli.pipeline.settings import RunSettings
from facefix_cli.recipe import Recipe
from facefix_cli.silent import Silent
from facefix_cli.weights.registry import REGISTRY, Registry

if TYPE_CHECKING:
    from facefix_cli.weights.progress import DownloadProgress


def plan(
    paths: Sequence[Path],
    settings: RunSettings,
    found_work: Callable[[Job], None] | None = None,
    output_folders: dict[str, frozenset[str] | None] | None = None,
    *,
    skip_faceless: bool = False,
    failures: dict[Path, tuple[Path, int]] | None = None,
    recipe: ledger.RecipeTag | None = None,
) -> tuple[list[Job], list[FileResult], list[FileResult]]:
    """(jobs to do, skipped results, failed results) for `paths`, touching nothing. Files whose
    output exists are skipped from the folder listings, unopened; `found_work` is called with
    the first job to do as soon as the walk finds it (the run starts loading networks then).
    `output_folders`, when given, receives the output folder of every job and done file (the
    folders the claim sweep looks at), as the walk knows them: no per-file path work; each with
    its hidden names where the walk listed it (None where it did not). `failures`, when given,
    receives (output, runs failed so far) of every input to do or rejected by its signature,
    keyed by source, for `io.marks`; `skip_faceless` (restoration alone) skips the inputs an
    earlier run found no face in; `recipe`, the run's, lets a done file's reason say which
    other recipe made its output (`io.ledger`)."""
    failed_before = failures if failures is not None else {}
    folders = output_folders if output_folders is not None else {}
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
        skip_faceless=skip_faceless,
        retry_failed=settings.retry_failed,
        output_format=settings.output_format,
        recipe=recipe,
    ):
        match found.kind:
            case Kind.TODO:
                todo.append(found.job)
                failed_before[found.source] = (found.job.output, found.failures)
                if found.folder not in folders:
                    folders[found.folder] = found.hidden
                if found_work is not None and len(todo) == 1:
                    found_work(todo[0])
            case Kind.DONE | Kind.REMEMBERED:
                done.append(FileResult(found.source, found.output, Status.SKIPPED, found.reason))
                if found.folder not in folders:
                    folders[found.folder] = found.hidden
            case Kind.OTHER_TYPE | Kind.NOT_FOLLOWED:
                other_types.append(FileResult(found.source, None, Status.SKIPPED, found.reason))
            case Kind.REJECTED if found.folder and found.output is not None:
                # an input found that is not an image: counted towards setting it aside
                failed_before[found.source] = (found.output, found.failures)
                failed.append(FileResult(found.source, None, Status.FAILED, found.reason))
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
    events = events or Silent()
    session = FixSession(
        recipe, settings, events=events, registry=registry, download_progress=download_progress
    )
    check_paths(paths)
    summary = FixSummary(
        recipe=tuple(recipe.rows()),
        models=tuple((m.file, m.sha256) for m in recipe.required_weights(registry)),
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

    description = ", ".join(f"{label} {value}" for label, value in recipe.rows() + settings.rows())
    events.walk_started(description)  # the log's first line, before the walk

    # 2.-5. the walk, the checks and the load as work is found, then the files
    run = _Run(paths, session, summary)
    try:
        return run.execute(stop_now, description, started)
    finally:
        session.close()


def check_paths(paths: Sequence[Path]) -> None:
    """SetupError (exit 2) for a path given that does not exist: a typo in a cron line is a
    usage error, not a failed image."""
    for path in paths:
        try:
            os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            raise SetupError(f"no such file or folder: {display_path(path)}") from None
        except OSError:
            continue  # unreadable: the walk reports it as that input's failure


class _Run:
    """One run's walk around its session: the session is prepared (machine checked, weights,
    background load) as the walk finds the first file to do, or the environment fault that
    prevents it is kept."""

    def __init__(self, paths: Sequence[Path], session: FixSession, summary: FixSummary) -> None:
        self.paths, self.session, self.summary = paths, session, summary
        self.fault: str | None = None

    def found_work(self, job: Job) -> None:
        """The walk found the first file to do: check the machine and the weights, then start
        loading the networks while the walk goes on."""
        if self.session.settings.dry_run:  # the same checks, touching nothing
            self.fault = self.session.check(job.output)
            return
        self.fault = self.session.prepare(job.output)
        if self.fault is None and self.session.executor.fetches_weights_here(self.session.settings):
            self.summary.models = self.session.models

    def execute(self, stop_now: Callable[[], bool], description: str, started: float) -> FixSummary:
        session, summary = self.session, self.summary
        settings, events = session.settings, session.events
        # 2. plan: what is there, what is done already (the first file to do: `found_work`)
        folders: dict[str, frozenset[str] | None] = {}  # where outputs go: the sweep's folders
        failures: dict[Path, tuple[Path, int]] = {}  # for io.marks
        todo, skipped, failed = plan(
            self.paths,
            settings,
            self.found_work,
            folders,
            skip_faceless=session.recipe.restores_only,
            failures=failures,
            recipe=session.recipe_tag,
        )
        summary.results.extend(failed + skipped)
        found = len(todo) + len(skipped) + len(failed)

        def announce(devices: str) -> None:
            events.run_started(
                RunStart(devices, description, found, len(todo), len(skipped), len(failed))
            )
            for result in summary.results:
                events.file_finished(result)

        # 3. clean up after killed runs: their temporary files and claims
        if not settings.dry_run:
            for folder, hidden in sorted(folders.items()):
                claims.sweep_folder(Path(folder), hidden=hidden)
        if settings.dry_run or not todo or self.fault is not None:
            announce("none")
            if self.fault is not None:  # the machine cannot take a single output: nothing loaded
                summary.fault = self.fault
                summary.not_started = len(todo)
            else:
                for job in todo:
                    result = FileResult(job.source, job.output, Status.PLANNED)
                    summary.results.append(result)
                    events.file_finished(result)
            if not settings.dry_run:
                remember_outcomes(
                    summary.results, failures, settings.output_dir, session.recipe_tag
                )
            summary.seconds = time.perf_counter() - started
            return summary

        # 4. the devices (the weights were checked as the walk found the first file)
        summary.devices = session.devices()
        announce(summary.devices)
        for notice in session.notices:
            events.weights_notice(notice)

        # 5. the files, through the session's executor
        done = 0
        attempted = 0  # the file whose fault stopped the run: neither done nor "not started"
        try:
            for result in session.fix(todo, stop_now):
                done += 1
                summary.results.append(result)
                events.file_finished(result)
            if done == len(todo):
                summary.stopped = None  # the limit passed as the last file finished: nothing left
            elif summary.stopped is None:
                summary.stopped = StopReason.REQUESTED
        except EnvironmentFault as exc:
            summary.fault = str(exc)
            attempted = 1
        except KeyboardInterrupt as exc:
            summary.interrupted(exc.signum if isinstance(exc, Interrupted) else signal.SIGINT)
        finally:
            remember_outcomes(summary.results, failures, settings.output_dir, session.recipe_tag)
        summary.not_started = max(0, len(todo) - done - attempted)
        summary.seconds = time.perf_counter() - started
        return summary


def remember_outcomes(
    results: Sequence[FileResult],
    failures: dict[Path, tuple[Path, int]],
    output_dir: Path | None = None,
    recipe: ledger.RecipeTag | None = None,
) -> None:
    """What the next run should know, beside the outputs. Each failed input's failed runs in a
    row are counted in marks (`io.marks`): an input that fails `FAIL_LIMIT` runs is set aside.
    An output written removes every mark of its input (a failure count, an earlier run's "no
    face": with an upscale, or with --overwrite, it was fixed after all), whether or not the
    walk saw one (a few unlinks per output written), and is entered in its folder's ledger
    under `recipe` (`io.ledger`). A crash is not counted: it is a bug in facefix, not the
    input's fault, and must keep showing (exit 3) on every run until fixed rather than be set
    aside into a silent skip."""
    written: list[Path] = []
    for result in results:
        if result.status is Status.FIXED and result.output is not None:
            marks.forget(result.output)
            written.append(result.output)
            continue
        known = failures.get(result.source)
        if known is not None and result.status is Status.FAILED:
            output, before = known
            marks.record_failure(
                output, result.source, before, result.reason, output_dir=output_dir
            )
    if recipe is not None and written:
        ledger.record_written(written, recipe)
