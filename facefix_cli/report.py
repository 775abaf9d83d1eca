"""How the CLI talks to people: one-line errors on stderr, download progress (a rich bar per
file on a terminal, plain log lines otherwise, e.g. under cron), and the model table."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, TextIO

import typer

from .errors import FacefixError

if TYPE_CHECKING:
    from .download import DownloadProgress, ModelState
    from .registry import ModelInfo


def print_error(message: str) -> None:
    typer.echo(f"error: {message}", err=True)


def exit_with_error(exc: FacefixError) -> NoReturn:
    """Report `exc` as one `error: ...` line and exit with its code."""
    print_error(str(exc))
    raise typer.Exit(exc.exit_code)


def human_size(nbytes: int) -> str:
    """Decimal units, as download tools and rich's columns show them."""
    size = float(nbytes)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


def _printable(text: str) -> str:
    """No control characters in log lines (server-provided reasons can hold anything)."""
    return "".join(ch if ch.isprintable() else "?" for ch in text)


class PlainDownloadProgress:
    """Log lines for a non-terminal: start, each quarter, done with the rate."""

    MILESTONES = (25, 50, 75)

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self._model: ModelInfo | None = None
        self._total = 0
        self._completed = 0
        self._first_completed = 0
        self._started = 0.0
        self._next_milestone = 0

    def _line(self, text: str) -> None:
        print(_printable(text), file=self.stream, flush=True)

    def start(self, model: ModelInfo, total: int, completed: int, source: str) -> None:
        self._model, self._total, self._completed = model, total, completed
        self._first_completed = completed
        self._started = time.monotonic()
        percent = 100 * completed // total if total else 0
        self._next_milestone = next((m for m in self.MILESTONES if m > percent), 101)
        resume = f", resuming at {human_size(completed)}" if completed else ""
        self._line(f"downloading {model.file} ({human_size(total)}) from {source}{resume}")

    def advance(self, nbytes: int) -> None:
        self._completed += nbytes
        if self._model is None or not self._total:
            return
        percent = 100 * self._completed // self._total
        if percent >= self._next_milestone and self._completed < self._total:
            self._line(
                f"{self._model.file}: {percent}% "
                f"({human_size(self._completed)} of {human_size(self._total)})"
            )
            self._next_milestone = next((m for m in self.MILESTONES if m > percent), 101)

    def done(self, model: ModelInfo, path: Path) -> None:
        elapsed = max(time.monotonic() - self._started, 1e-6)
        fetched = self._completed - self._first_completed if self._model == model else 0
        rate = f" at {human_size(int(fetched / elapsed))}/s" if fetched else ""
        self._line(f"{model.file}: verified, saved to {path} ({elapsed:.1f}s{rate})")
        self._model = None

    def message(self, text: str) -> None:
        self._line(text)


class RichDownloadProgress:
    """A rich progress bar per file: bytes, speed, ETA. Use as a context manager."""

    def __init__(self, stream: TextIO | None = None) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        console = Console(file=stream or sys.stderr)
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console,
        )
        self._tasks: dict[str, object] = {}
        self._current: object | None = None

    def __enter__(self) -> RichDownloadProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._progress.stop()

    def start(self, model: ModelInfo, total: int, completed: int, source: str) -> None:
        task = self._tasks.get(model.name)
        if task is None:
            task = self._progress.add_task(model.file, total=total, completed=completed)
            self._tasks[model.name] = task
        else:  # a retry or the next source: start the bar (and its speed samples) over
            self._progress.reset(task, total=total, completed=completed)
        self._current = task

    def advance(self, nbytes: int) -> None:
        if self._current is not None:
            self._progress.advance(self._current, nbytes)

    def done(self, model: ModelInfo, path: Path) -> None:
        task = self._tasks.get(model.name)
        if task is not None:
            self._progress.update(task, completed=model.size)

    def message(self, text: str) -> None:
        self._progress.console.print(text, markup=False, highlight=False)


@contextmanager
def download_progress(stream: TextIO | None = None) -> Iterator[DownloadProgress]:
    """Bars when `stream` (default stderr) is a terminal, log lines otherwise."""
    stream = stream or sys.stderr
    isatty = getattr(stream, "isatty", None)
    if isatty is not None and isatty():
        with RichDownloadProgress(stream) as progress:
            yield progress
    else:
        yield PlainDownloadProgress(stream)


def print_model_table(states: Sequence[ModelState], weights_dir: Path) -> None:
    """`facefix models`: a rich table on a terminal, aligned plain columns otherwise."""
    header = ("NAME", "FILE", "SIZE", "LICENCE", "STATE")
    rows = []
    for st in states:
        note = " (by name only)" if st.model.non_commercial else ""
        state = st.state + (f": {st.detail}" if st.detail else "")
        size = human_size(st.model.size)
        rows.append((st.model.name, st.model.file, size, st.model.licence + note, state))
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"models in {weights_dir}")
        for title in header:
            table.add_column(title, justify="right" if title == "SIZE" else "left")
        for row in rows:
            table.add_row(*row)
        Console().print(table)
        return
    typer.echo(f"weights folder: {weights_dir}")
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header) - 1)]
    for row in (header, *rows):
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        typer.echo("  ".join([*cells, row[-1]]))


# --- fix: progress and summary ---------------------------------------------------------

if TYPE_CHECKING:
    from .discover import Job
    from .pipeline import FileResult, FixSummary


def is_terminal() -> bool:
    return sys.stderr.isatty()


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
    return _printable(" ".join(parts))


class PlainFixEvents:
    """For cron and pipes: one line per file on stderr, no control characters."""

    def __init__(
        self, verbose: bool = False, quiet: bool = False, stream: TextIO | None = None
    ) -> None:
        self.verbose, self.quiet = verbose, quiet
        self.stream = stream or sys.stderr
        self.total = self.done = 0

    def _line(self, text: str) -> None:
        print(_printable(text), file=self.stream, flush=True)

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
