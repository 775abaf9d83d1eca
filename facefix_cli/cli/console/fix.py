"""`facefix fix` progress and summary: a rich bar on a terminal, one plain line per file
otherwise (cron, pipes), and the closing summary."""

from __future__ import annotations

import sys
from datetime import datetime
from typing import TYPE_CHECKING, TextIO, assert_never

from facefix_cli import __version__
from facefix_cli.cli.console.base import printable
from facefix_cli.io.names import display_path
from facefix_cli.pipeline.results import FileResult, FixSummary, RunStart, Status

if TYPE_CHECKING:
    from facefix_cli.io.discover import Job
    from facefix_cli.weights.digests import WeightsNotice

STYLES = {
    Status.FIXED: "green",
    Status.FAILED: "red",
    Status.CRASHED: "red",
    Status.SKIPPED: "yellow",
    Status.PLANNED: "yellow",
}


def timestamp() -> str:
    """Local time in ISO 8601 with its offset, to the second: sortable and unambiguous."""
    return datetime.now().astimezone().isoformat(timespec="seconds")


def begun_line(recipe: str) -> str:
    """The log's first line, as the run begins (the walk of a big tree can take a while)."""
    return f"facefix {__version__} fix: {recipe}; finding images"


def run_start_line(info: RunStart) -> str:
    return (
        f"found {info.found}, to do {info.todo}, skipped {info.skipped}, "
        f"failed {info.failed}; device {info.device}"
    )


def wants_line(result: FileResult, verbose: bool, quiet: bool) -> bool:
    """Logs show work done and failures; skips only with -v (they are counted in the summary)."""
    match result.status:
        case Status.FAILED | Status.CRASHED:
            return True
        case Status.SKIPPED:
            return verbose
        case Status.FIXED | Status.PLANNED:
            return not quiet
        case _:
            assert_never(result.status)


def describe(result: FileResult) -> str:
    """One log line for a finished file: path, outcome, faces, tool and seed when known."""
    parts = [f"{result.status}: {display_path(result.source)}"]
    if result.status is Status.FIXED:
        plural = "s" if result.faces != 1 else ""
        skipped = f", {result.faces_skipped} skipped" if result.faces_skipped else ""
        parts.append(
            f"-> {display_path(result.output or '')} "
            f"({result.faces} face{plural}{skipped}, {result.seconds:.1f}s)"
        )
    elif result.status is Status.PLANNED and result.output is not None:
        parts.append(f"-> {display_path(result.output)}")
    if result.tool:
        seed = f" seed {result.seed}" if result.seed is not None else ""
        parts.append(f"[{result.tool}{seed}]")
    if result.reason:
        parts.append(f"- {result.reason}")
    return printable(" ".join(parts))


class PlainFixEvents:
    """For cron and pipes: one line per file on stderr, no control characters."""

    def __init__(
        self, verbose: bool = False, quiet: bool = False, stream: TextIO | None = None
    ) -> None:
        self.verbose, self.quiet = verbose, quiet
        self.stream = stream or sys.stderr
        self.total = self.done = 0

    def _line(self, text: str) -> None:
        print(f"{timestamp()} {printable(text)}", file=self.stream, flush=True)

    def begun(self, recipe: str) -> None:
        if not self.quiet:
            self._line(begun_line(recipe))

    def run_started(self, info: RunStart) -> None:
        if not self.quiet:
            self._line(run_start_line(info))

    def started(self, total: int) -> None:
        self.total = total

    def waiting(self, what: str | None) -> None:
        if what is not None and not self.quiet:
            self._line(what)

    def file_started(self, job: Job) -> None:
        if self.verbose:
            self._line(f"start: {display_path(job.source)}")

    def file_finished(self, result: FileResult) -> None:
        self.done += 1
        if wants_line(result, self.verbose, self.quiet):
            self._line(f"[{self.done}/{self.total}] {describe(result)}")
        if self.verbose and result.traceback:
            print(result.traceback.rstrip(), file=self.stream, flush=True)

    def weights_notice(self, notice: WeightsNotice) -> None:
        self._line(f"warning: {notice.text}")  # even with --quiet: the outputs depend on it


class RichFixEvents:
    """A progress bar: files done/total, faces so far, ETA and the current file."""

    def __init__(self, verbose: bool = False, quiet: bool = False) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self.verbose, self.quiet = verbose, quiet
        self.faces = 0
        self.before_work = 0  # results the walk decided, still to be reported
        self.waiting_for: str | None = None
        self.progress = Progress(
            TextColumn("[bold]fix"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("faces {task.fields[faces]}"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[current]}"),
            console=Console(stderr=True, highlight=False),
            transient=True,
        )
        # Until `started`, the run is walking the paths given (a big tree takes a while).
        self.task = self.progress.add_task("fix", total=None, faces=0, current="finding images")

    def __enter__(self) -> RichFixEvents:
        self.progress.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.progress.stop()

    def begun(self, recipe: str) -> None:
        if self.verbose:
            self.progress.console.print(begun_line(recipe), markup=False)

    def run_started(self, info: RunStart) -> None:
        # The bar counts the files to do: the walk's skips and failures (reported next, all at
        # once) would make the ETA of 5 new files among 50,000 done ones read "0:00:01".
        self.before_work = info.found - info.todo
        if self.verbose:
            self.progress.console.print(run_start_line(info), markup=False)

    def started(self, total: int) -> None:
        self.progress.update(self.task, total=total - self.before_work, current="")

    def waiting(self, what: str | None) -> None:
        self.waiting_for = what
        self.progress.update(self.task, current=what or "")

    def file_started(self, job: Job) -> None:
        if self.waiting_for is None:  # files decode ahead while networks load: say the load
            self.progress.update(self.task, current=display_path(job.source.name))

    def file_finished(self, result: FileResult) -> None:
        self.faces += result.faces
        if self.before_work > 0:  # decided by the walk: counted in the summary, not the bar
            self.before_work -= 1
        else:
            self.progress.update(self.task, advance=1, faces=self.faces, current="")
        if wants_line(result, self.verbose, self.quiet):
            style = STYLES[result.status]
            self.progress.console.print(describe(result), style=style, markup=False)
        if self.verbose and result.traceback:
            self.progress.console.print(result.traceback.rstrip(), markup=False)

    def weights_notice(self, notice: WeightsNotice) -> None:
        self.progress.console.print(
            f"warning: {printable(notice.text)}", style="yellow", markup=False
        )


def summary_line(summary: FixSummary) -> str:
    crashes = summary.count(Status.CRASHED)
    crashed = f"crashed {crashes}, " if crashes else ""
    left = f", not started {summary.not_started}" if summary.not_started else ""
    planned = summary.count(Status.PLANNED)
    would = f"would do {planned}, " if planned else ""  # --dry-run
    return (
        f"{would}processed {summary.count(Status.FIXED)}, skipped {summary.count(Status.SKIPPED)}, "
        f"failed {summary.count(Status.FAILED)}, {crashed}faces restored {summary.faces}, "
        f"{summary.seconds:.1f}s, {summary.images_per_second:.2f} images/s{left}"
    )


def print_summary_table(summary: FixSummary) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="facefix fix")
    for column in ("processed", "skipped", "failed", "faces restored", "seconds", "images/s"):
        table.add_column(column, justify="right")
    table.add_row(
        str(summary.count(Status.FIXED)),
        str(summary.count(Status.SKIPPED)),
        str(summary.count(Status.FAILED)),
        str(summary.faces),
        f"{summary.seconds:.1f}",
        f"{summary.images_per_second:.2f}",
    )
    Console(stderr=True).print(table)
