"""What facefix did to an image: the operations it ran, in the form every writer shares.

An `Operation` is written three ways: into facefix's own JSON record (`facefix_record`), as
InvokeAI post-processing entries and as A1111's extras text (both in `metadata`). This module
is the one definition of its fields, so those writers cannot drift apart.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from facefix import __version__

OperationType = Literal["esrgan", "gfpgan", "codeformer"]


@dataclass(frozen=True)
class Operation:
    """One step of a fix: an upscale (`esrgan`, whatever the upscaler) or a face restoration."""

    type: OperationType
    strength: float
    model: str | None = None  # weight file name
    sha256: str | None = None  # of the weight file
    scale: int | None = None  # upscales only
    version: str | None = None  # GFPGAN's version
    fidelity: float | None = None  # CodeFormer's w
    faces: int | None = None  # restorations only: faces restored

    def to_json(self) -> dict[str, Any]:
        """The JSON object of facefix's record: every field that is set."""
        return {key: value for key, value in asdict(self).items() if value is not None}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Operation:
        known = {key: data[key] for key in cls.__dataclass_fields__ if key in data}
        return cls(**known)


def facefix_record(
    operations: list[Operation], source_name: str, source_sha256: str
) -> dict[str, Any]:
    """The JSON facefix writes into every output: what it did, with which files, to what."""
    return {
        "facefix_version": __version__,
        "operations": [operation.to_json() for operation in operations],
        "source": {"file": source_name, "sha256": source_sha256},
    }
