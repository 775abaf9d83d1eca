"""`watch`: the service. Load the networks once (a `FixSession`), fix the backlog as `fix` would,
then fix every new or replaced image under the folders as soon as it is complete, until stopped.

A thin loop around three parts that each do one thing: a watcher (`io.watcher`: kernel events
through watchdog, or a walk every `poll` seconds) says which files appeared or changed; the
`Settler` (`io.settle`) says which of them are complete (renamed in or closed after writing and
whole, or unchanged for `settle` seconds and whole; polling, whole and unchanged over a second
look `LOOK_AGAIN` later); the session fixes those, through the same executor, per-file steps
and claims as `fix`, so a `fix` from cron beside a watch (or two watches sharing NFS) does each
file once, and the outputs are the same bytes.

Guarantees:
- Setup problems (bad options, missing or broken weights, a missing device, a folder that is not
  there) raise SetupError before the first wait; an output tree that cannot be written is
  `summary.fault` before any network loads.
- A file still being written is never fixed nor failed; a file that stays broken is reported
  once (`io.settle`); a file whose output exists is left alone (as `fix` does), unless this
  watch wrote that output less than REWRITE_WINDOW seconds ago and the input was written again
  since it was handed over (a tool adding its metadata after saving): then it is redone, once.
  With `--overwrite` the backlog is redone, and with kernel events each image written again; a
  walk (polling) hands out only images without an output, or it would redo every image at
  every walk.
- A fault that dooms every later file (disk full, GPU gone, a watched folder deleted or moved
  away) ends the watch: `summary.fault`.
  A signal (SIGTERM/SIGHUP as `errors.Interrupted`, Ctrl-C) ends it too: the file in hand is
  abandoned cleanly by the executor (claim released, temporary file removed) and
  `summary.signal` says which.
- Idle, it blocks in the watcher: no busy loop. Its memory does not grow with the files it
  fixes: the summary keeps counts, not results, and the settler only the files in flight."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from facefix_cli.errors import EXIT_ENVIRONMENT, EXIT_OK, EnvironmentFault, Interrupted, SetupError
from facefix_cli.io import claims
from facefix_cli.io.discover import Kind, found_alone, normalise_extensions
from facefix_cli.io.names import display_path
from facefix_cli.io.settle import DEFAULT_SETTLE, Settler
from facefix_cli.io.watcher import (
    KernelWatcher,
    PollWatcher,
    Watcher,
    WatchUnavailable,
    network_file_system,
)
from facefix_cli.pipeline.results import FileResult, FixEvents, RunStart, Status
from facefix_cli.pipeline.run import plan, remember_outcomes
from facefix_cli.pipeline.session import FixSession
from facefix_cli.pipeline.settings import RunSettings
from facefix_cli.recipe import Recipe
from facefix_cli.weights.registry import REGISTRY, Registry

# Seconds between walks when kernel watches cannot be had and no --poll was given: a walk over
# 20,000 done files costs ~0.3 s of CPU, so ~3 % of one core at this interval.
FALLBACK_POLL = 10.0
# Seconds between the two looks at a whole file that a walk found (polling), before taking it.
LOOK_AGAIN = 0.25
# Longest wait without looking at `should_stop` (library callers; a signal wakes it at once).
STOP_CHECK = 1.0
# Seconds after the watch wrote an output during which a rewrite of its input (the tool adding
# its metadata after saving: A1111's piexif.insert into JPEG and WebP) has it fixed again.
REWRITE_WINDOW = 60.0


class _Fixed(NamedTuple):
    """What the watch fixed lately: the input as handed over, the output as written, when."""

    source: tuple[int, int]  # (size, mtime_ns) when handed to the session
    output: tuple[int, int]  # (size, mtime_ns) as written
    at: float  # time.monotonic()


def _identity(path: Path | str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns)


class WatchEvents(FixEvents, Protocol):
    """What a front end hears while `watch` runs, beside `FixEvents`. A watch checks and loads
    its networks between `walk_started` and its backlog's walk, so a problem with them stops
    it before the first wait."""

    # How the folders are watched (`kernel events`, `polling every 10s`), once the backlog is
    # done: from here on, new files are fixed as they become complete.
    def watching(self, how: str) -> None: ...
    # Something the user must know once: kernel watches unavailable, events lost.
    def notice(self, text: str) -> None: ...
    # How many files the watch has seen so far (the backlog's skipped and failed ones, then
    # each file as it becomes complete), before the newest of them is reported: the log's
    # `[n/total]`. A watch's total grows; `run_started`'s `found` is the backlog's alone.
    def seen(self, total: int) -> None: ...


@dataclass
class WatchSummary:
    """What a watch did, as counts (a watch runs for months: no per-file list is kept)."""

    counts: Counter[Status] = field(default_factory=Counter)
    faces: int = 0
    seconds: float = 0.0
    fault: str | None = None
    signal: int | None = None  # the signal that ended the watch
    devices: str = ""
    how: str = ""  # kernel events, or polling every N s

    def add(self, result: FileResult) -> None:
        self.counts[result.status] += 1
        self.faces += result.faces

    @property
    def exit_code(self) -> int:
        """4 after an environment fault; 0 otherwise, a stop by signal included: stopping is a
        watch's normal end (files that failed were reported as they did)."""
        return EXIT_ENVIRONMENT if self.fault is not None else EXIT_OK

    @property
    def stop_text(self) -> str | None:
        if self.signal is None:
            return None
        return f"stopped by {signal.Signals(self.signal).name}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "processed": self.counts[Status.FIXED],
            "skipped": self.counts[Status.SKIPPED],
            "failed": self.counts[Status.FAILED],
            "crashed": self.counts[Status.CRASHED],
            "faces": self.faces,
            "seconds": round(self.seconds, 3),
            "stopped": self.stop_text,
            "fault": self.fault,
            "signal": self.signal,
            "devices": self.devices or None,
            "watching": self.how or None,
        }


def watch(
    paths: Sequence[Path],
    recipe: Recipe,
    settings: RunSettings,
    events: WatchEvents,
    *,
    settle: float = DEFAULT_SETTLE,
    poll: float | None = None,
    should_stop: Callable[[], bool] | None = None,
    registry: Registry = REGISTRY,
    download_progress: Any = None,
) -> WatchSummary:
    """Fix the backlog under the folders `paths`, then every image that appears there, until
    `should_stop()` (asked at least every second) or a signal. `poll`: walk every so many
    seconds instead of kernel events."""
    started = time.monotonic()
    if settle < 0:
        raise SetupError(f"--settle must be 0 or more seconds, not {settle:g}")
    if poll is not None and poll <= 0:
        raise SetupError(f"--poll must be more than 0 seconds, not {poll:g}")
    if settings.dry_run or settings.time_limit is not None or settings.ray_address is not None:
        raise SetupError("watch has no --dry-run, --max-time or --ray: use fix for those")
    for path in paths:
        if not path.is_dir():
            raise SetupError(f"watch needs folders: {display_path(path)} is not one")
    try:
        normalise_extensions(settings.extensions)
    except ValueError as exc:
        raise SetupError(str(exc)) from None
    session = FixSession(
        recipe, settings, events=events, registry=registry, download_progress=download_progress
    )
    summary = WatchSummary()
    stop = should_stop or (lambda: False)
    description = ", ".join(f"{label} {value}" for label, value in recipe.rows() + settings.rows())
    events.walk_started(description)
    watcher: Watcher | None = None
    try:
        # 1. the machine, the weights, the devices and the networks: every setup error now
        # (the first folder's file system stands for the outputs' before any exists)
        summary.fault = session.prepare(paths[0] / "output", "loading the networks, once")
        if summary.fault is not None:
            return summary
        summary.devices = session.devices()
        session.load()
        for notice in session.notices:
            events.weights_notice(notice)
        # 2. watch first, then walk: nothing written during the backlog goes unseen
        watcher, summary.how = _start_watcher(paths, settings, poll, events)
        # Polling sees no renames or closes: a whole file unchanged over a short second look
        look_again = None if summary.how == "kernel events" else min(settle, LOOK_AGAIN)
        settler = Settler(settle, look_again=look_again)
        loop = _Loop(paths, session, summary, settler, events, stop)
        loop.backlog(description)
        events.watching(summary.how)
        # 3. the files as they become complete
        loop.run(watcher, STOP_CHECK if should_stop is not None else None)
    except EnvironmentFault as exc:
        summary.fault = str(exc)
    except KeyboardInterrupt as exc:
        summary.signal = exc.signum if isinstance(exc, Interrupted) else signal.SIGINT
    finally:
        if watcher is not None:
            watcher.close()
        session.close()
        summary.seconds = time.monotonic() - started
    return summary


def _start_watcher(
    paths: Sequence[Path], settings: RunSettings, poll: float | None, events: WatchEvents
) -> tuple[Watcher, str]:
    def poller(interval: float) -> PollWatcher:
        return PollWatcher(
            paths,
            interval,
            extensions=settings.extensions,
            output_dir=settings.output_dir,
            # Not --overwrite: every walk would hand out every image again. A walk sees the
            # images without an output; --overwrite redoes the backlog, and with kernel events
            # each image written again.
            overwrite=False,
            recursive=settings.recursive,
            output_format=settings.output_format,
        )

    if poll is not None:
        return poller(poll), f"polling every {poll:g}s"
    for path in paths:
        kind = network_file_system(path)
        if kind is not None:
            events.notice(
                f"{display_path(path)} is on {kind}: files other machines write there raise no "
                "event here; add --poll SECONDS to see them"
            )
    try:
        return KernelWatcher(paths, settings.extensions, settings.recursive), "kernel events"
    except WatchUnavailable as exc:
        events.notice(
            f"kernel file events unavailable ({exc}): polling every {FALLBACK_POLL:g}s instead "
            "(--poll SECONDS to choose)"
        )
        return poller(FALLBACK_POLL), f"polling every {FALLBACK_POLL:g}s"


class _Loop:
    def __init__(
        self,
        paths: Sequence[Path],
        session: FixSession,
        summary: WatchSummary,
        settler: Settler,
        events: WatchEvents,
        should_stop: Callable[[], bool],
    ) -> None:
        self.paths, self.session, self.summary = paths, session, summary
        self.settler, self.events, self.should_stop = settler, events, should_stop
        self.seen = 0  # files reported so far: the log's [n/total]
        self.handed: dict[str, tuple[int, int]] = {}  # inputs in the session's hands, as handed
        self.recent: dict[str, _Fixed] = {}  # inputs fixed in the last REWRITE_WINDOW seconds

    def report(self, result: FileResult) -> None:
        self.summary.add(result)
        self.events.file_finished(result)

    def backlog(self, description: str) -> None:
        """The walk `fix` makes: finished outputs skipped, stale claims swept; the files to do
        go through the settler, so one still being written is waited for."""
        settings = self.session.settings
        folders: dict[str, frozenset[str] | None] = {}
        faceless = self.session.recipe.restores_only  # remembered (io.marks): not redone
        todo, skipped, failed = plan(
            self.paths,
            settings,
            None,
            folders,
            skip_faceless=faceless,
            recipe=self.session.recipe_tag,
        )
        for folder, hidden in sorted(folders.items()):
            claims.sweep_folder(Path(folder), hidden=hidden)
        found = len(todo) + len(skipped) + len(failed)
        self.events.run_started(
            RunStart(self.summary.devices, description, found, len(todo), len(skipped), len(failed))
        )
        self.seen = len(skipped) + len(failed)
        self.events.seen(self.seen)
        for result in failed + skipped:
            self.report(result)
        for job in todo:
            self.settler.saw(str(job.source))
        self.fix_due()

    def walk_again(self) -> None:
        settings = self.session.settings
        todo, _, _ = plan(self.paths, settings, skip_faceless=self.session.recipe.restores_only)
        for job in todo:
            self.settler.saw(str(job.source))

    def fix_due(self) -> None:
        ready, broken = self.settler.due()
        if not ready and not broken:
            return
        settings = self.session.settings
        jobs = []
        for path in sorted(ready + broken):
            found = found_alone(
                Path(path),
                self.paths,
                extensions=settings.extensions,
                output_dir=settings.output_dir,
                overwrite=settings.overwrite,
                recursive=settings.recursive,
                output_format=settings.output_format,
            )
            redo = (
                found is not None
                and found.kind is Kind.DONE
                and found.output is not None
                and self.rewritten(str(found.source), found.output)
            )
            if found is not None and redo:
                found = found._replace(kind=Kind.TODO)  # its tool rewrote it: redo our output
            if found is None or found.kind is Kind.DONE:
                continue  # fixed already (by this watch or another run), or not ours
            self.seen += 1
            self.events.seen(self.seen)
            if found.kind is Kind.TODO:
                jobs.append(replace(found.job, replace=True) if redo else found.job)
            elif found.kind is Kind.NOT_FOLLOWED:  # another user's link: skipped, said once
                self.report(FileResult(found.source, None, Status.SKIPPED, found.reason))
            else:  # the walk's own rejection, once
                self.report(FileResult(found.source, found.output, Status.FAILED, found.reason))
        if jobs:
            results: list[FileResult] = []
            for job in jobs:
                identity = _identity(job.source)
                if identity is not None:
                    self.handed[str(job.source)] = identity
            try:
                for result in self.session.fix(jobs, self.should_stop):
                    results.append(result)
                    self.report(result)
                    self.remember(result)
            finally:  # marks forgotten and the ledger kept as `fix` does (pipeline.run)
                remember_outcomes(results, {}, settings.output_dir, self.session.recipe_tag)
                self.handed.clear()

    def remember(self, result: FileResult) -> None:
        """Keep what a fixed input and its output were, for `rewritten` (a minute at most)."""
        now = time.monotonic()
        for source in [s for s, fixed in self.recent.items() if now - fixed.at > REWRITE_WINDOW]:
            del self.recent[source]
        handed = self.handed.get(str(result.source))
        written = _identity(result.output) if result.output is not None else None
        if result.status is Status.FIXED and handed is not None and written is not None:
            self.recent[str(result.source)] = _Fixed(handed, written, now)

    def rewritten(self, source: str, output: Path) -> bool:
        """The input `source`, fixed by this watch less than REWRITE_WINDOW seconds ago, was
        written again since it was handed over, and the output is still the one this watch
        wrote: its tool saved it and then rewrote it to add metadata (A1111 does so for JPEG
        and WebP), and the output was made from the first save."""
        fixed = self.recent.get(source)
        if fixed is None or time.monotonic() - fixed.at > REWRITE_WINDOW:
            return False
        now = _identity(source)
        if now is None or now == fixed.source:
            return False
        if _identity(output) != fixed.output:
            return False  # not ours any more (replaced by hand or by another run): left alone
        del self.recent[source]  # once: a second rewrite is the user's, not the tool's
        return True

    def run(self, watcher: Watcher, longest_wait: float | None) -> None:
        while not self.should_stop():
            wait = self.settler.wait_time()
            if longest_wait is not None:
                wait = longest_wait if wait is None else min(wait, longest_wait)
            signs = watcher.wait(wait)
            if signs.gone:  # nothing more will come: a service manager should hear of it
                names = ", ".join(display_path(folder) for folder in signs.gone)
                raise EnvironmentFault(f"the watched folder {names} was deleted or moved away")
            if signs.lost:
                self.events.notice("file events were lost (too many at once): walking again")
                self.walk_again()
            for sign in signs.files:
                self.settler.saw(sign.path, finished=sign.finished)
            self.fix_due()
