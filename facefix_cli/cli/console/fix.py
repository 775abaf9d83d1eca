"""`facefix fix` progress and summary: a live display on a terminal, one plain line per file
otherwise (cron, pipes), and the closing summary.

The terminal display is one rich `Live` (the fix bar and any download bars in one group, on
one console: two live displays would erase each other's lines): a spinner, files done of those
to do, faces, the elapsed time and the estimate, and the current stage (finding images, which
networks load, which file); log lines are printed above it through its console. The summary
names why files were skipped, with counts; with `--quiet` a run that did nothing prints
nothing (cron mails only what matters)."""

from __future__ import annotations

import re
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, TextIO, assert_never

from facefix_cli import __version__
from facefix_cli.cli.console.base import printable
from facefix_cli.io.names import display_path
from facefix_cli.pipeline.results import FileResult, FixSummary, RunStart, Status

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.progress import ProgressColumn, Task
    from rich.table import Column

    from facefix_cli.cli.console.download import RichDownloadProgress
    from facefix_cli.io.discover import Job
    from facefix_cli.pipeline.results import FixEvents
    from facefix_cli.weights.digests import WeightsNotice
    from facefix_cli.weights.progress import DownloadProgress

STYLES = {
    Status.FIXED: "green",
    Status.FAILED: "red",
    Status.CRASHED: "red",
    Status.SKIPPED: "yellow",
    Status.PLANNED: "yellow",
}


NOTICE_EVERY = 24 * 3600  # seconds: a log repeats a weight file's notice once a day at most


def timestamp() -> str:
    """Local time in ISO 8601 with its offset, to the second: sortable and unambiguous."""
    return datetime.now().astimezone().isoformat(timespec="seconds")


def walk_started_line(recipe: str) -> str:
    """The log's first line, as the run begins (the walk of a big tree can take a while)."""
    return f"facefix {__version__} fix: {recipe}; finding images"


def weights_line(notices: list[WeightsNotice]) -> str:
    """One line for every weight file that is not the released one (`facefix models` lists
    them in full)."""
    names = ", ".join(n.path.name for n in notices)
    if len(notices) == 1:
        model = notices[0].model
        what = f"is not the released {model.name}" if model is not None else "is not a release"
        return f"{names} {what}; outputs record its own SHA-256 (facefix models --verify)"
    return (
        f"{len(notices)} weight files are not the released ones ({names}); outputs record "
        "their own SHA-256 (facefix models --verify)"
    )


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
        self.notices: list[WeightsNotice] = []

    def _line(self, text: str) -> None:
        print(f"{timestamp()} {printable(text)}", file=self.stream, flush=True)

    def walk_started(self, recipe: str) -> None:
        if not self.quiet:
            self._line(walk_started_line(recipe))

    def run_started(self, info: RunStart) -> None:
        # A run with nothing to do says so in its summary line: one line fewer in the log.
        if not self.quiet and (info.todo or info.failed):
            self._line(run_start_line(info))
        self.total = info.found  # the log's [n/total]

    def waiting(self, what: str | None) -> None:
        if what is not None and not self.quiet:
            self._line(what)

    def file_started(self, job: Job) -> None:
        if self.verbose:
            self._line(f"start: {display_path(job.source)}")

    def file_finished(self, result: FileResult) -> None:
        self.done += 1
        if self.notices:
            self._flush_notices()
        if result.status is Status.SKIPPED and not self.verbose:
            return  # as wants_line decides, cheaply: a no-op run reports every done file here
        if wants_line(result, self.verbose, self.quiet):
            self._line(f"[{self.done}/{self.total}] {describe(result)}")
        if self.verbose and result.traceback:
            print(result.traceback.rstrip(), file=self.stream, flush=True)

    def weights_notice(self, notice: WeightsNotice) -> None:
        # One line for all of them, as the first file finishes; none with --quiet, and in a
        # log at most once a day per file (cron runs every few minutes): `facefix models
        # --verify` says it whenever asked, and a terminal run says it every time.
        if not notice.said_within(NOTICE_EVERY):
            self.notices.append(notice)

    def _flush_notices(self) -> None:
        if self.notices and not self.quiet:
            from facefix_cli.weights.digests import remember_warned

            self._line(f"warning: {weights_line(self.notices)}")
            for notice in self.notices:
                remember_warned(notice.path)
        self.notices = []


def _stage_column(column: Column) -> ProgressColumn:
    """The current stage, and while the run waits (networks loading), for how long so far."""
    from rich.progress import ProgressColumn
    from rich.text import Text

    class StageColumn(ProgressColumn):
        max_refresh = 0.5

        def render(self, task: Task) -> Text:
            stage, since = task.fields.get("stage", ""), task.fields.get("since")
            if since is not None and stage:
                stage = f"{stage} ({time.monotonic() - since:.0f}s)"
            return Text(stage)

    return StageColumn(table_column=column)


# A load's waiting text says how long it had run when it was made; the display counts itself.
_STARTED_AGO = re.compile(r" \(started (\d+(?:\.\d+)?)s ago\)$")


class RichFixEvents:
    """The terminal's live display: a spinner, files done of those to do, faces so far,
    elapsed time and estimate, and the current stage; any download bars above it (one `Live`
    for both); log lines printed above through its console."""

    def __init__(
        self,
        verbose: bool = False,
        quiet: bool = False,
        downloads: RichDownloadProgress | None = None,
    ) -> None:
        from rich.console import Console, Group
        from rich.live import Live
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.table import Column

        self.verbose, self.quiet = verbose, quiet
        self.faces = 0
        self.before_work = 0  # results the walk decided, still to be reported
        self.waiting_for: str | None = None
        self.current = ""  # the file started last
        self.notices: list[WeightsNotice] = []
        console = downloads.progress.console if downloads else Console(stderr=True)
        self.progress = Progress(
            SpinnerColumn(finished_text=" "),
            TextColumn("[bold]fix"),
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            TextColumn("faces {task.fields[faces]}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            _stage_column(Column(no_wrap=True, overflow="ellipsis")),
            console=console,
            expand=False,
        )
        # Until `run_started`, the run is walking the paths given (a big tree takes a while).
        self.task = self.progress.add_task(
            "fix", total=None, faces=0, stage="finding images", since=None
        )
        parts: list[RenderableType] = [self.progress]
        if downloads is not None:
            parts.insert(0, downloads.progress)
        self.group = Group(*parts)
        self.live = Live(self.group, console=console, transient=True, refresh_per_second=8)

    def __enter__(self) -> RichFixEvents:
        self.live.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._flush_notices()
        self.live.stop()

    def _print(self, text: str, style: str | None = None) -> None:
        self.progress.console.print(text, style=style, markup=False, highlight=False)

    def _stage(self, text: str, since: float | None = None) -> None:
        self.progress.update(self.task, stage=printable(text), since=since)

    def walk_started(self, recipe: str) -> None:
        if self.verbose:
            self._print(walk_started_line(recipe))

    def run_started(self, info: RunStart) -> None:
        # The bar counts the files to do: the walk's skips and failures (reported next, all at
        # once) would make the ETA of 5 new files among 50,000 done ones read "0:00:01".
        self.before_work = info.found - info.todo
        stage = self.waiting_for or ("starting" if info.todo else "")
        self.progress.update(self.task, total=info.todo, stage=stage)
        if self.verbose:
            self._print(run_start_line(info))

    def waiting(self, what: str | None) -> None:
        if what is not None:
            # "loading ... (started 1.4s ago)": the load's own age, shown live instead
            match = _STARTED_AGO.search(what)
            if match:
                since = time.monotonic() - float(match.group(1))
                what = what[: match.start()]
            else:
                since = time.monotonic()
            self._stage(what, since)
        else:
            self._stage(f"fixing {self.current}" if self.current else "")
        self.waiting_for = what

    def file_started(self, job: Job) -> None:
        self.current = display_path(job.source.name)
        if self.waiting_for is None:  # files decode ahead while networks load: say the load
            self._stage(f"fixing {self.current}")

    def file_finished(self, result: FileResult) -> None:
        self._flush_notices()
        self.faces += result.faces
        if self.before_work > 0:  # decided by the walk: counted in the summary, not the bar
            self.before_work -= 1
        else:
            self.progress.update(self.task, advance=1, faces=self.faces)
        if wants_line(result, self.verbose, self.quiet):
            self._print(describe(result), STYLES[result.status])
        if self.verbose and result.traceback:
            self._print(result.traceback.rstrip())

    def weights_notice(self, notice: WeightsNotice) -> None:
        self.notices.append(notice)  # one line for all, as the first file finishes

    def _flush_notices(self) -> None:
        if self.notices and not self.quiet:
            self._print(f"warning: {printable(weights_line(self.notices))}", "yellow")
        self.notices = []


@contextmanager
def fix_display(
    bar: bool, *, verbose: bool = False, quiet: bool = False
) -> Iterator[tuple[FixEvents, DownloadProgress]]:
    """The run's events and download progress: on a terminal (`bar`) one live display for
    both; else plain log lines (downloads still get bars on a terminal under --json)."""
    if bar:
        from facefix_cli.cli.console.download import RichDownloadProgress

        downloads = RichDownloadProgress()
        with RichFixEvents(verbose=verbose, quiet=quiet, downloads=downloads) as events:
            yield events, downloads
        return
    from facefix_cli.cli.console.download import download_progress

    with download_progress() as progress:
        yield PlainFixEvents(verbose=verbose, quiet=quiet), progress


def summary_line(summary: FixSummary) -> str:
    # One pass over the results (as many as the tree has files), not one per count.
    counts = Counter(r.status for r in summary.results)
    crashes = counts[Status.CRASHED]
    crashed = f"crashed {crashes}, " if crashes else ""
    left = f", not started {summary.not_started}" if summary.not_started else ""
    planned = counts[Status.PLANNED]
    would = f"would do {planned}, " if planned else ""  # --dry-run
    why = skipped_text(summary)
    return (
        f"{would}processed {counts[Status.FIXED]}, skipped {counts[Status.SKIPPED]}, "
        f"failed {counts[Status.FAILED]}, {crashed}faces restored {summary.faces}, "
        f"{summary.seconds:.1f}s, {summary.images_per_second:.2f} images/s{left}"
        + (f"; skipped {why}" if why else "")
    )


def skipped_text(summary: FixSummary, most: int = 4) -> str:
    """Why files were skipped, with counts, most common first: `3: output exists (use
    --overwrite)`, or `5: 3 output exists (use --overwrite), 2 .jpg is not in --ext`."""
    reasons = summary.skipped_reasons()
    if not reasons:
        return ""
    total = sum(reasons.values())
    if len(reasons) == 1:
        return f"{total}: {display_path(next(iter(reasons)) or 'no reason given')}"
    shown = [f"{n} {display_path(reason or 'no reason given')}" for reason, n in reasons.items()]
    if len(shown) > most:
        others = sum(list(reasons.values())[most:])
        shown = [*shown[:most], f"{others} for other reasons (-v lists them)"]
    return f"{total}: {', '.join(shown)}"


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
    console = Console(stderr=True)
    console.print(table)
    why = skipped_text(summary)
    if why:
        console.print(f"skipped {why}", markup=False, highlight=False)
