"""Download progress: a rich bar per file on a terminal, plain log lines otherwise (cron)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from facefix_cli.cli.console.base import human_size, printable

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID

    from facefix_cli.weights.download import DownloadProgress
    from facefix_cli.weights.registry import ModelInfo


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
        print(printable(text), file=self.stream, flush=True)

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
    """A rich progress bar per file: bytes, speed, ETA. Use as a context manager, which shows
    the bars, or hand `progress` to a display that shows it with others (`fix`'s bar): one live
    display per terminal, since two would erase each other's lines."""

    def __init__(self, stream: TextIO | None = None, console: Console | None = None) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        console = console or Console(file=stream or sys.stderr)
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console,
        )
        self._tasks: dict[str, TaskID] = {}
        self._current: TaskID | None = None

    @property
    def progress(self) -> Progress:
        return self._progress

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
