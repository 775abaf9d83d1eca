"""`Recipe`: what the pixels of an output depend on, and nothing else (like black's `Mode`).

Small, frozen and picklable, so the same recipe crosses into worker threads, Ray workers and
other machines unchanged. `Networks` loads what a recipe needs, `fix_images` follows it, and
every `Operation` an output records comes from it. Where files come from and go to, which
device runs them and how they are scheduled are the run's settings
(`pipeline.settings.RunSettings`), not the recipe's.

`rows()` is the one rendering of a recipe: the log's run-start line, the `--json` summary and
the HTML report all show these rows."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from facefix_cli.errors import SetupError
from facefix_cli.weights import registry

Order = Literal["upscale-first", "restore-first"]
ORDERS: tuple[Order, ...] = ("upscale-first", "restore-first")
# GFPGAN's reference keeps RetinaFace's detections above 0.97 (ops.detect's default too).
DEFAULT_FACE_THRESHOLD = 0.97
# Images up to this long side are searched for faces at full size, as GFPGAN's pipeline does.
DEFAULT_DETECT_SIZE = 2048
MIN_DETECT_SIZE = 64
# "restorer": --restorer's own file (spandrel or ONNX), see networks.restorers.
RestorerName = Literal["gfpgan", "codeformer", "restorer"]
Precision = Literal["auto", "fp32", "fp16", "bf16"]
PRECISIONS: tuple[Precision, ...] = ("auto", "fp32", "fp16", "bf16")


@dataclass(frozen=True)
class Recipe:
    scale: int = 1  # 1 = no upscale; 2 or 4 = the registry's Real-ESRGAN of that scale
    upscale_strength: float = 0.75
    restore_with: RestorerName | None = None
    restore_strength: float = 0.0
    fidelity: float = 0.5  # CodeFormer's w: 0 = most restoration, 1 = most faithful
    gfpgan_version: str = "1.4"
    upscaler_path: Path | None = None  # any spandrel super-resolution checkpoint
    tile: int | None = None  # None = chosen from the device; 0 = whole image
    precision: Precision = "auto"  # auto: fp16 upscaler on CUDA, bf16 on bf16 CPUs; device.py
    only_center_face: bool = False
    detector: str = "retinaface_resnet50"
    # Which faces are restored (ops.detect.select_faces); the defaults are today's behaviour.
    face_threshold: float = DEFAULT_FACE_THRESHOLD  # the detector's confidence
    min_face: float = 0.0  # a face's box (longer side) in output pixels; 0 = any size
    min_face_share: float = 0.0  # ... or as a share of the image's largest face; 0 = any
    max_faces: int | None = None  # the largest N; None = all
    detect_size: int = DEFAULT_DETECT_SIZE  # detect on a copy of at most this long side; 0 = never
    order: Order = "upscale-first"  # restore-first: restore the original, then upscale it
    restorer_path: Path | None = None  # with restore_with="restorer": any face model file

    @property
    def upscales(self) -> bool:
        return self.upscaler_path is not None or self.scale > 1

    @property
    def restores_only(self) -> bool:
        """Faces restored, no upscale: an image without a face to restore gets no output."""
        return not self.upscales and self.restore_with is not None

    def validate(self) -> None:
        """Raise SetupError for a recipe no run can follow, before any work starts."""
        if self.scale not in (1, 2, 4):
            raise SetupError(f"--upscale must be 1, 2 or 4, not {self.scale}")
        if not 0.0 <= self.upscale_strength <= 1.0:
            raise SetupError(f"--upscale-strength must be in [0, 1], not {self.upscale_strength}")
        if self.restore_with is not None and not 0.0 < self.restore_strength <= 1.0:
            option = "restore-strength" if self.restore_with == "restorer" else self.restore_with
            raise SetupError(f"--{option} must be in (0, 1], not {self.restore_strength}")
        if (self.restore_with == "restorer") != (self.restorer_path is not None):
            raise SetupError("a --restorer file and restore_with='restorer' go together")
        if self.restorer_path is not None and not self.restorer_path.is_file():
            raise SetupError(f"--restorer: no such model file: {self.restorer_path}")
        if not 0.0 <= self.fidelity <= 1.0:
            raise SetupError(f"--fidelity must be in [0, 1], not {self.fidelity}")
        if self.gfpgan_version not in registry.GFPGAN_VERSIONS:
            raise SetupError(f"--gfpgan-model must be one of {', '.join(registry.GFPGAN_VERSIONS)}")
        if self.detector not in registry.DETECTORS:
            raise SetupError(f"--detector must be one of {', '.join(registry.DETECTORS)}")
        if self.precision not in PRECISIONS:
            raise SetupError(f"--precision must be one of {', '.join(PRECISIONS)}")
        if self.tile is not None and self.tile < 0:
            raise SetupError("--tile must be 0 (whole image) or a positive number of pixels")
        if self.tile and self.tile < 32:
            raise SetupError("--tile below 32 pixels is too small to upscale well")
        if self.upscaler_path is not None and not self.upscaler_path.is_file():
            raise SetupError(f"--upscaler: no such model file: {self.upscaler_path}")
        if not 0.0 <= self.face_threshold < 1.0:
            raise SetupError(f"--face-threshold must be in [0, 1), not {self.face_threshold:g}")
        if self.min_face < 0 or not 0.0 <= self.min_face_share <= 1.0:
            raise SetupError(
                "--min-face must be pixels (e.g. 64) or a share of the largest face (e.g. 0.3x)"
            )
        if self.min_face and self.min_face_share:
            raise SetupError("--min-face is either pixels or a share of the largest face")
        if self.max_faces is not None and self.max_faces < 1:
            raise SetupError(f"--max-faces must be at least 1, not {self.max_faces}")
        if self.detect_size < 0 or 0 < self.detect_size < MIN_DETECT_SIZE:
            raise SetupError(
                f"--detect-size must be 0 (full resolution) or at least {MIN_DETECT_SIZE} pixels"
            )
        if self.order not in ORDERS:
            raise SetupError(f"--order must be one of {', '.join(ORDERS)}")
        if not self.upscales and self.restore_with is None:
            raise SetupError(
                "nothing to do: give --upscale 2|4, --upscaler, --gfpgan, --codeformer or --restorer"
            )

    def rows(self) -> list[tuple[str, str]]:
        """The recipe as (label, value) rows, in the order the steps run."""
        rows: list[tuple[str, str]] = []
        if self.upscaler_path is not None:
            rows.append(("upscaler", self.upscaler_path.name))
        elif self.scale > 1:
            rows.append(("upscale", f"x{self.scale}"))
        if self.upscales:
            rows.append(("upscale strength", f"{self.upscale_strength:g}"))
        if self.restorer_path is not None:
            rows.append(("restorer", self.restorer_path.name))
            rows.append(("restore strength", f"{self.restore_strength:g}"))
            rows.append(("fidelity", f"{self.fidelity:g}"))  # used if the model takes one
            rows.append(("detector", self.detector))
            if self.only_center_face:
                rows.append(("faces", "only the centre one"))
        elif self.restore_with is not None:
            rows.append((self.restore_with, f"{self.restore_strength:g}"))
            if self.restore_with == "codeformer":
                rows.append(("fidelity", f"{self.fidelity:g}"))
            else:
                rows.append(("GFPGAN version", self.gfpgan_version))
            rows.append(("detector", self.detector))
            if self.only_center_face:
                rows.append(("faces", "only the centre one"))
            rows.extend(self.face_rows())
        rows.append(("tile", "auto" if self.tile is None else str(self.tile)))
        rows.append(("precision", self.precision))
        return rows

    def face_rows(self) -> list[tuple[str, str]]:
        """The face choices that differ from the defaults, as (label, value) rows."""
        rows: list[tuple[str, str]] = []
        if self.face_threshold != DEFAULT_FACE_THRESHOLD:
            rows.append(("face threshold", f"{self.face_threshold:g}"))
        if self.min_face:
            rows.append(("min face", f"{self.min_face:g} px"))
        if self.min_face_share:
            rows.append(("min face", f"{self.min_face_share:g}x the largest"))
        if self.max_faces is not None:
            rows.append(("max faces", str(self.max_faces)))
        if self.detect_size != DEFAULT_DETECT_SIZE:
            rows.append(("detect size", str(self.detect_size) if self.detect_size else "full"))
        if self.upscales and self.order != "upscale-first":
            rows.append(("order", self.order))
        return rows

    def required_weights(
        self, table: registry.Registry = registry.REGISTRY
    ) -> list[registry.ModelInfo]:
        """The files of `table` this recipe needs, in the order they are used."""
        return table.required(
            upscale=self.scale,
            restorer=self.restore_with,
            gfpgan_version=self.gfpgan_version,
            detector=self.detector,
            custom_upscaler=self.upscaler_path is not None,
            custom_restorer=self.restorer_path is not None,
        )


def parse_min_face(text: str) -> tuple[float, float]:
    """--min-face's (pixels, share of the largest face) from `64` or `0.3x`; SetupError
    otherwise."""
    value = text.strip().lower()
    share = value.endswith("x")
    try:
        number = float(value.removesuffix("x"))
    except ValueError:
        number = -1.0
    if not (math.isfinite(number) and number >= 0) or (share and number > 1):
        raise SetupError(
            f"--min-face {text!r}: expected pixels of the output (64) or a share of the "
            "largest face (0.3x)"
        )
    return (0.0, number) if share else (number, 0.0)
