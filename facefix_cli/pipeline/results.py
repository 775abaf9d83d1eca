"""What a run reports: one `FileResult` per file, the `FixSummary`, and the `FixEvents`
protocol a front end implements to hear about progress (the library itself never prints)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from facefix_cli.io.discover import Job
from facefix_cli.io.names import display_path

# crashed: an unexpected exception (a bug in facefix) on that file; the batch went on.
Status = Literal["fixed", "skipped", "failed", "crashed", "planned"]


@dataclass
class FileResult:
    source: Path
    output: Path | None
    status: Status
    reason: str = ""
    faces: int = 0
    seconds: float = 0.0
    tool: str | None = None
    seed: int | str | None = None
    traceback: str | None = None  # for crashed files: shown with -v, to paste into a report


@dataclass
class FixSummary:
    """What a run did. A run stopped early says why in `stopped` (`time limit`, `SIGTERM`...)
    or `fault` (an environment fault's one line), and how many jobs it never started."""

    results: list[FileResult] = field(default_factory=list)
    seconds: float = 0.0
    stopped: str | None = None
    fault: str | None = None
    not_started: int = 0
    signal: int | None = None  # the signal that interrupted the run (SIGINT for Ctrl-C)

    def count(self, status: Status) -> int:
        return sum(1 for r in self.results if r.status == status)

    @property
    def faces(self) -> int:
        return sum(r.faces for r in self.results)

    @property
    def images_per_second(self) -> float:
        fixed = self.count("fixed")
        return fixed / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "processed": self.count("fixed"),
            "skipped": self.count("skipped"),
            "failed": self.count("failed"),
            "crashed": self.count("crashed"),
            "planned": self.count("planned"),
            "not_started": self.not_started,
            "stopped": self.stopped,
            "fault": self.fault,
            "signal": self.signal,
            "faces": self.faces,
            "seconds": round(self.seconds, 3),
            "images_per_second": round(self.images_per_second, 3),
            "files": [
                {
                    "source": display_path(r.source),
                    "output": display_path(r.output) if r.output else None,
                    "status": r.status,
                    "reason": display_path(r.reason),
                    "faces": r.faces,
                    "seconds": round(r.seconds, 3),
                    "tool": r.tool,
                    "seed": r.seed,
                }
                for r in self.results
            ],
        }


@dataclass(frozen=True)
class RunInfo:
    """The run-start line of a log: what was found and what this run will do."""

    device: str  # "cuda:0", "cpu"; "none" for a dry run
    recipe: str  # FixOptions.describe()
    found: int  # input files found (and named paths rejected)
    todo: int
    skipped: int  # outputs already there
    failed: int  # rejected before any work (not an image, unreadable, output name taken)


class FixEvents(Protocol):
    """What a front end hears while `fix` runs; every method is optional to act on."""

    def started(self, total: int) -> None: ...
    def run_started(self, info: RunInfo) -> None: ...
    # What the run waits on before files can finish (`loading 4 networks on cuda:0`, starting
    # Ray workers); None once files flow. Called in the caller's thread.
    def waiting(self, what: str | None) -> None: ...
    def file_started(self, job: Job) -> None: ...
    def file_finished(self, result: FileResult) -> None: ...


class SilentEvents:
    def started(self, total: int) -> None:
        pass

    def run_started(self, info: RunInfo) -> None:
        pass

    def waiting(self, what: str | None) -> None:
        pass

    def file_started(self, job: Job) -> None:
        pass

    def file_finished(self, result: FileResult) -> None:
        pass
