"""What a run reports: one `FileResult` per file, the `FixSummary`, and the `FixEvents`
protocol a front end implements to hear about progress (the library itself never prints)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from facefix.io.discover import Job

Status = Literal["fixed", "skipped", "failed", "planned"]


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


@dataclass
class FixSummary:
    results: list[FileResult] = field(default_factory=list)
    seconds: float = 0.0

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
            "planned": self.count("planned"),
            "faces": self.faces,
            "seconds": round(self.seconds, 3),
            "images_per_second": round(self.images_per_second, 3),
            "files": [
                {
                    "source": str(r.source),
                    "output": str(r.output) if r.output else None,
                    "status": r.status,
                    "reason": r.reason,
                    "faces": r.faces,
                    "seconds": round(r.seconds, 3),
                    "tool": r.tool,
                    "seed": r.seed,
                }
                for r in self.results
            ],
        }


class FixEvents(Protocol):
    """What a front end hears while `fix` runs; every method is optional to act on."""

    def started(self, total: int) -> None: ...
    def file_started(self, job: Job) -> None: ...
    def file_finished(self, result: FileResult) -> None: ...


class SilentEvents:
    def started(self, total: int) -> None:
        pass

    def file_started(self, job: Job) -> None:
        pass

    def file_finished(self, result: FileResult) -> None:
        pass
