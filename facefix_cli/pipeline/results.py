"""What a run tells its caller: one `FileResult` per file, the `FixSummary` (the run's tally,
which owns the run's exit code, as black's `Report` does), and the `FixEvents` protocol a front
end implements to hear about progress (the library itself never prints)."""

from __future__ import annotations

import signal as signals
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, assert_never

from facefix_cli.errors import (
    EXIT_CRASHED,
    EXIT_ENVIRONMENT,
    EXIT_FAILED,
    EXIT_OK,
    Interrupted,
)
from facefix_cli.io.discover import Job
from facefix_cli.io.names import display_path

if TYPE_CHECKING:
    from facefix_cli.weights.digests import WeightsNotice


class Status(StrEnum):
    FIXED = "fixed"
    SKIPPED = "skipped"  # nothing to do: output there, another run has it, not our kind of file
    FAILED = "failed"  # a problem with the file: one line says which
    CRASHED = "crashed"  # an unexpected exception (a bug in facefix); the batch went on
    PLANNED = "planned"  # --dry-run: would be fixed


class StopReason(StrEnum):
    """Why a run ended before starting every file (an environment fault is `FixSummary.fault`)."""

    TIME_LIMIT = "time limit"  # RunSettings.time_limit passed (--max-time)
    REQUESTED = "stop requested"  # the caller's should_stop() said so
    SIGNAL = "signal"  # Ctrl-C, SIGTERM, SIGHUP: `FixSummary.signal` says which


@dataclass(slots=True)
class FileResult:
    source: Path
    output: Path | None
    status: Status
    reason: str = ""
    faces: int = 0  # restored
    faces_skipped: int = 0  # found but not restored (the recipe's face choices)
    seconds: float = 0.0
    tool: str | None = None
    seed: int | str | None = None
    traceback: str | None = None  # for crashed files: shown with -v, to paste into a report


@dataclass
class FixSummary:
    """What a run did. A run stopped early says why in `stopped` (and `signal`), or in `fault`
    (an environment fault's one line), and how many jobs it never started."""

    results: list[FileResult] = field(default_factory=list)
    seconds: float = 0.0
    stopped: StopReason | None = None
    fault: str | None = None
    not_started: int = 0
    signal: int | None = None  # the signal that interrupted the run (SIGINT for Ctrl-C)
    devices: str = ""  # what ran the networks: "cuda:0 (NVIDIA H100 80GB HBM3)", "cpu"; "" = none
    recipe: tuple[tuple[str, str], ...] = ()  # Recipe.rows() of the run
    # (file, its own sha256) of the weights the run used, as hashed (weights.digests); empty
    # when the files were not looked at here (a dry run, Ray nodes with their own folders).
    models: tuple[tuple[str, str], ...] = ()
    time_limit: str | None = None  # the limit's name when one was set (`--max-time 15m`)

    def count(self, status: Status) -> int:
        return sum(1 for r in self.results if r.status is status)

    def interrupted(self, signum: int) -> None:
        self.stopped, self.signal = StopReason.SIGNAL, signum

    @property
    def stop_text(self) -> str | None:
        """Why the run stopped early, in words (`--max-time 15m reached`), or None."""
        match self.stopped:
            case None:
                return None
            case StopReason.TIME_LIMIT:
                return f"{self.time_limit or 'time limit'} reached"
            case StopReason.REQUESTED:
                return "stop requested"
            case StopReason.SIGNAL:
                name = signals.Signals(self.signal or signals.SIGINT).name
                return f"interrupted by {name}"
            case _:
                assert_never(self.stopped)

    @property
    def exit_code(self) -> int:
        """The exit status this run reports (see facefix_cli.errors): a signal first, then an
        environment fault, then crashed files, then failed ones."""
        if self.signal is not None:
            return Interrupted(self.signal).exit_code
        if self.fault is not None:
            return EXIT_ENVIRONMENT
        if self.count(Status.CRASHED):
            return EXIT_CRASHED
        if self.count(Status.FAILED):
            return EXIT_FAILED
        return EXIT_OK

    @property
    def idle(self) -> bool:
        """Nothing was done, planned or failed, and nothing stopped the run: every file was
        skipped (or there were none). What a quiet cron run prints nothing for."""
        if self.stopped is not None or self.fault is not None or self.not_started:
            return False
        return all(r.status is Status.SKIPPED for r in self.results)

    @property
    def faces(self) -> int:
        return sum(r.faces for r in self.results)

    @property
    def images_per_second(self) -> float:
        fixed = self.count(Status.FIXED)
        return fixed / self.seconds if self.seconds > 0 else 0.0

    def skipped_reasons(self) -> dict[str, int]:
        """How many files were skipped for each reason, most common first."""
        counts: dict[str, int] = {}
        for result in self.results:
            if result.status is Status.SKIPPED:
                counts[result.reason] = counts.get(result.reason, 0) + 1
        return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))

    def to_dict(self, list_skipped: bool = True) -> dict[str, Any]:
        """The summary as JSON-ready data. `skipped_reasons` counts the skipped files by reason;
        `files` lists every file, or, without `list_skipped`, every file but the skipped ones
        (a cron run over a big tree of done files stays small)."""
        return {
            "processed": self.count(Status.FIXED),
            "skipped": self.count(Status.SKIPPED),
            "failed": self.count(Status.FAILED),
            "crashed": self.count(Status.CRASHED),
            "planned": self.count(Status.PLANNED),
            "not_started": self.not_started,
            "stopped": self.stop_text,
            "fault": self.fault,
            "signal": self.signal,
            "devices": self.devices or None,
            "recipe": dict(self.recipe),
            "faces": self.faces,
            "seconds": round(self.seconds, 3),
            "images_per_second": round(self.images_per_second, 3),
            "skipped_reasons": self.skipped_reasons(),
            "files": [
                {
                    "source": display_path(r.source),
                    "output": display_path(r.output) if r.output else None,
                    "status": str(r.status),
                    "reason": display_path(r.reason),
                    "faces": r.faces,
                    "faces_skipped": r.faces_skipped,
                    "seconds": round(r.seconds, 3),
                    "tool": r.tool,
                    "seed": r.seed,
                }
                for r in self.results
                if list_skipped or r.status is not Status.SKIPPED
            ],
        }


@dataclass(frozen=True)
class RunStart:
    """The run-start line of a log: what was found and what this run will do."""

    device: str  # "cuda:0", "cpu"; "none" for a dry run
    recipe: str  # Recipe.rows() and the settings' rows, in one line
    found: int  # input files found (and named paths rejected)
    todo: int
    skipped: int  # outputs already there
    failed: int  # rejected before any work (not an image, unreadable, output name taken)


class FixEvents(Protocol):
    """What a front end hears while `fix` runs; every method is optional to act on."""

    # The first event, before the walk for images (`recipe`: Recipe.rows() and the settings'
    # rows, in one line): the log's first line, as a big tree can take a while to walk.
    def walk_started(self, recipe: str) -> None: ...
    # The walk has counted the files (`info.found` of them): what the run will do, before any
    # file is reported.
    def run_started(self, info: RunStart) -> None: ...
    # What the run waits on before files can finish (`loading 4 networks on cuda:0`, starting
    # Ray workers); None once files flow. Called in the caller's thread.
    def waiting(self, what: str | None) -> None: ...
    def file_started(self, job: Job) -> None: ...
    def file_finished(self, result: FileResult) -> None: ...
    # A weight file that is not the released one (or has no registry entry) is used: once per
    # file per run, before any file finishes; `notice.text` is the line to show.
    def weights_notice(self, notice: WeightsNotice) -> None: ...
