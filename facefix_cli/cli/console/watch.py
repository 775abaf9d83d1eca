"""`facefix watch` output: the same timestamped lines as `fix` on stderr (a service's journal),
or with --json one JSON object per line per event on stdout (for log shippers), each with its
`event` name and `time`."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any, TextIO

from facefix_cli import __version__
from facefix_cli.cli.console.fix import PlainFixEvents, timestamp
from facefix_cli.io.names import display_path
from facefix_cli.pipeline.results import FileResult, RunStart, Status

if TYPE_CHECKING:
    from facefix_cli.io.discover import Job
    from facefix_cli.pipeline.watch import WatchSummary
    from facefix_cli.weights.digests import WeightsNotice


class PlainWatchEvents(PlainFixEvents):
    """`fix`'s lines; `[n/total]` counts the files seen since the watch started."""

    def walk_started(self, recipe: str) -> None:
        if not self.quiet:
            # the watch loads its networks before its first walk (pipeline.watch)
            self._line(
                f"facefix {__version__} watch: {recipe}; loading the networks, then the backlog"
            )

    def seen(self, total: int) -> None:
        self.total = total

    def watching(self, how: str) -> None:
        if not self.quiet:
            self._line(f"watching ({how}): each new image is fixed once it is complete")

    def notice(self, text: str) -> None:
        self._line(f"warning: {text}")  # even with --quiet: it changes how the watch works


def summary_line(summary: WatchSummary) -> str:
    counts = summary.counts
    crashed = f"crashed {counts[Status.CRASHED]}, " if counts[Status.CRASHED] else ""
    return (
        f"processed {counts[Status.FIXED]}, skipped {counts[Status.SKIPPED]}, "
        f"failed {counts[Status.FAILED]}, {crashed}faces restored {summary.faces}, "
        f"watched {summary.seconds:.1f}s"
    )


def file_record(result: FileResult) -> dict[str, Any]:
    return {
        "source": display_path(result.source),
        "output": display_path(result.output) if result.output else None,
        "status": str(result.status),
        "reason": display_path(result.reason),
        "faces": result.faces,
        "faces_skipped": result.faces_skipped,
        "seconds": round(result.seconds, 3),
        "tool": result.tool,
        "seed": result.seed,
    }


class JsonWatchEvents:
    """One JSON object per line on stdout for every event; skipped files and file starts only
    with -v (as `fix --json` lists skipped files only with -v)."""

    def __init__(self, verbose: bool = False, stream: TextIO | None = None) -> None:
        self.verbose = verbose
        self.stream = stream or sys.stdout

    def emit(self, event: str, **fields: Any) -> None:
        record = {"event": event, "time": timestamp(), **fields}
        print(json.dumps(record), file=self.stream, flush=True)

    def walk_started(self, recipe: str) -> None:
        self.emit("begun", version=__version__, recipe=recipe)

    def run_started(self, info: RunStart) -> None:
        self.emit(
            "backlog",
            found=info.found,
            todo=info.todo,
            skipped=info.skipped,
            failed=info.failed,
            device=info.device,
        )

    def seen(self, total: int) -> None:
        pass  # each `file` record stands alone: no running count

    def waiting(self, what: str | None) -> None:
        if what is not None:
            self.emit("waiting", what=what)

    def watching(self, how: str) -> None:
        self.emit("watching", how=how)

    def notice(self, text: str) -> None:
        self.emit("warning", text=text)

    def weights_notice(self, notice: WeightsNotice) -> None:
        self.emit("warning", text=notice.text)

    def file_started(self, job: Job) -> None:
        if self.verbose:
            self.emit("start", source=display_path(job.source))

    def file_finished(self, result: FileResult) -> None:
        if result.status is Status.SKIPPED and not self.verbose:
            return
        self.emit("file", **file_record(result))
        if self.verbose and result.traceback:
            self.emit("traceback", source=display_path(result.source), text=result.traceback)
