"""What facefix did to an image: the operations it ran, in the form every writer shares.

An `Operation` is written three ways: into facefix's own JSON record (`facefix_record`), as
InvokeAI post-processing entries and as A1111's extras text (both in `metadata`). This module
is the one definition of its fields, so those writers cannot drift apart.

A restoration also records each restored face (`RecordedFace`: an `ops.detect.Face` as the
record keeps it, under the JSON key `detections`: box, score, landmarks, in the output's
pixels, rounded to 0.01 px), so a report can crop the same face before and after from
the output and its original alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from facefix_cli import __version__

# A --restorer file records as "gfpgan" or "codeformer" when it is one of those (by its
# architecture, or an ONNX file's fidelity input for CodeFormer), else as "restorer".
OperationType = Literal["esrgan", "gfpgan", "codeformer", "restorer"]
RESTORATIONS: tuple[OperationType, ...] = ("gfpgan", "codeformer", "restorer")

_PIXEL_DECIMALS = 2  # 0.01 px: finer than any crop needs, and keeps the record short
_SCORE_DECIMALS = 4


@dataclass(frozen=True)
class RecordedFace:
    """One restored face (an `ops.detect.Face`, rounded for the record), in the output image's
    pixels."""

    box: tuple[float, float, float, float]  # x0, y0, x1, y1
    score: float
    landmarks: tuple[tuple[float, float], ...] = ()  # eyes, nose, mouth corners

    @classmethod
    def rounded(
        cls,
        box: Sequence[float],
        score: float,
        landmarks: Iterable[Sequence[float]] = (),
    ) -> RecordedFace:
        """A detection with plain, rounded floats (detectors hand out numpy values)."""
        return cls(
            box=tuple(round(float(v), _PIXEL_DECIMALS) for v in box),  # type: ignore[arg-type]
            score=round(float(score), _SCORE_DECIMALS),
            landmarks=tuple(
                (round(float(x), _PIXEL_DECIMALS), round(float(y), _PIXEL_DECIMALS))
                for x, y in landmarks
            ),
        )

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"box": list(self.box), "score": self.score}
        if self.landmarks:
            data["landmarks"] = [list(point) for point in self.landmarks]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RecordedFace:
        """Raises ValueError (or TypeError, KeyError) on a malformed entry."""
        box = tuple(float(v) for v in data["box"])
        if len(box) != 4:
            raise ValueError(f"a face box has 4 numbers, not {len(box)}")
        return cls.rounded(box, float(data["score"]), data.get("landmarks") or ())


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
    architecture: str | None = None  # --restorer only: spandrel's architecture id, or "ONNX"
    size: int | None = None  # --restorer only: the side of the aligned face crops
    faces: int | None = None  # restorations only: faces restored
    # Restorations only, each recorded only when it is not the default (so outputs of runs
    # without these choices stay as they were): faces found when some were skipped, and the
    # face choices (recipe.Recipe's fields of the same names).
    found: int | None = None
    face_threshold: float | None = None
    min_face: float | None = None
    min_face_share: float | None = None
    max_faces: int | None = None
    detect_size: int | None = None
    detections: tuple[RecordedFace, ...] | None = None  # restorations only: each restored face
    precision: str | None = None  # upscales only: the network's dtype when not fp32 (bf16)

    @property
    def skipped(self) -> int:
        """Faces found but not restored (too small, past --max-faces, not the centre one)."""
        return self.found - (self.faces or 0) if self.found is not None else 0

    def face_choices(self) -> list[str]:
        """The recorded face choices in words, e.g. `min face 64 px`, `max faces 2`."""
        words = []
        if self.face_threshold is not None:
            words.append(f"face threshold {self.face_threshold:g}")
        if self.min_face is not None:
            words.append(f"min face {self.min_face:g} px")
        if self.min_face_share is not None:
            words.append(f"min face {self.min_face_share:g}x the largest")
        if self.max_faces is not None:
            words.append(f"max faces {self.max_faces}")
        if self.detect_size is not None:
            words.append(f"detect size {self.detect_size or 'full'}")
        return words

    def face_counts(self) -> list[str]:
        """A restoration's faces in words: `2 faces restored`, `1 face restored, 2 skipped of 3
        found`, `no face found`; nothing for an upscale."""
        if self.type not in RESTORATIONS or self.faces is None:
            return []
        if self.faces == 0 and not self.found:
            return ["no face found"]
        words = [f"{self.faces} face{'s' if self.faces != 1 else ''} restored"]
        if self.found is not None:
            words.append(f"{self.skipped} skipped of {self.found} found")
        return words

    def describe(self, counts: bool = True) -> str:
        """The one rendering of an operation, for `facefix info` and the report:
        `upscale x2: strength 0.75 (RealESRGAN_x2plus.pth)`, `gfpgan 1.4: strength 0.8,
        2 faces restored (GFPGANv1.4.pth)`. Without `counts`, what the operation was asked to
        do and nothing of what it found: the same for every image of one run's recipe."""
        name: str = self.type
        if self.type == "esrgan" and self.scale:
            name = f"upscale x{self.scale}"
        elif self.version:
            name += f" {self.version}"
        settings = [f"strength {self.strength:g}"]
        if self.fidelity is not None:
            settings.append(f"fidelity {self.fidelity:g}")
        if self.architecture is not None:  # a --restorer model
            settings.append(f"{self.architecture} {self.size} px")
        if self.precision is not None:
            settings.append(self.precision)
        settings.extend(self.face_choices())
        if counts:
            settings.extend(self.face_counts())
        model = f" ({self.model})" if self.model else ""
        return f"{name}: {', '.join(settings)}{model}"

    def to_json(self) -> dict[str, Any]:
        """The JSON object of facefix's record: every field that is set."""
        data = {
            key: value
            for key, value in asdict(self).items()
            if value is not None and key != "detections"
        }
        if self.detections is not None:
            data["detections"] = [detection.to_json() for detection in self.detections]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Operation:
        """Raises ValueError (or TypeError, KeyError) on a malformed record."""
        known = {key: data[key] for key in cls.__dataclass_fields__ if key in data}
        if known.get("detections") is not None:
            known["detections"] = tuple(RecordedFace.from_json(d) for d in known["detections"])
        return cls(**known)


def facefix_record(
    operations: list[Operation],
    source_name: str,
    source_sha256: str,
    source_path: str | None = None,
) -> dict[str, Any]:
    """The JSON facefix writes into every output: what it did, with which files, to what.
    `source_path`: where the original was, relative to the output's folder, for an output
    not written beside it (`--output-dir`), so a report finds it later; left out otherwise."""
    source = {"file": source_name, "sha256": source_sha256}
    if source_path is not None:
        source["path"] = source_path
    return {
        "facefix_version": __version__,
        "operations": [operation.to_json() for operation in operations],
        "source": source,
    }
