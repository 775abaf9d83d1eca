"""`facefix fix` progress and summary: a rich bar on a terminal, one plain line per file
otherwise (cron, pipes), and the closing summary."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, TextIO

from facefix.report.console import printable

if TYPE_CHECKING:
    from facefix.io.discover import Job
    from facefix.pipeline import FileResult, FixSummary


def describe(result: FileResult) -> str:
    """One log line for a finished file: path, outcome, faces, tool and seed when known."""
    parts = [f"{result.status}: {result.source}"]
    if result.status == "fixed":
        plural = "s" if result.faces != 1 else ""
        parts.append(f"-> {result.output} ({result.faces} face{plural}, {result.seconds:.1f}s)")
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
        print(printable(text), file=self.stream, flush=True)

    def started(self, total: int) -> None:
        self.total = total

    def file_started(self, job: Job) -> None:
        if self.verbose:
            self._line(f"start: {job.source}")

    def file_finished(self, result: FileResult) -> None:
        self.done += 1
        if not self.quiet or result.status == "failed":
            self._line(f"[{self.done}/{self.total}] {describe(result)}")


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
        self.task = self.progress.add_task("fix", total=None, faces=0, current="")

    def __enter__(self) -> RichFixEvents:
        self.progress.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.progress.stop()

    def started(self, total: int) -> None:
        self.progress.update(self.task, total=total)

    def file_started(self, job: Job) -> None:
        self.progress.update(self.task, current=job.source.name)

    def file_finished(self, result: FileResult) -> None:
        self.faces += result.faces
        self.progress.update(self.task, advance=1, faces=self.faces, current="")
        if (
            result.status == "failed"
            or self.verbose
            or (not self.quiet and result.status == "fixed")
        ):
            style = {"failed": "red", "fixed": "green"}.get(result.status, "yellow")
            self.progress.console.print(describe(result), style=style, markup=False)


def summary_line(summary: FixSummary) -> str:
    return (
        f"processed {summary.count('fixed')}, skipped {summary.count('skipped')}, "
        f"failed {summary.count('failed')}, faces restored {summary.faces}, "
        f"{summary.seconds:.1f}s, {summary.images_per_second:.2f} images/s"
    )


def print_summary_table(summary: FixSummary) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="facefix fix")
    for column in ("processed", "skipped", "failed", "faces restored", "seconds", "images/s"):
        table.add_column(column, justify="right")
    table.add_row(
        str(summary.count("fixed")),
        str(summary.count("skipped")),
        str(summary.count("failed")),
        str(summary.faces),
        f"{summary.seconds:.1f}",
        f"{summary.images_per_second:.2f}",
    )
    Console(stderr=True).print(table)
