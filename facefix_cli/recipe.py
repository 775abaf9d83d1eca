"""`Recipe`: what the pixels of an output depend on, and nothing else (like black's `Mode`).

Small, frozen and picklable, so the same recipe crosses into worker threads, Ray workers and
other machines unchanged. `Networks` loads what a recipe needs, `fix_images` follows it, and
every `Operation` an output records comes from it. Where files come from and go to, which
device runs them and how they are scheduled are the run's settings
(`pipeline.settings.RunSettings`), not the recipe's.

`rows()` is the one rendering of a recipe: the log's run-start line, the `--json` summary and
the HTML report all show these rows."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from facefix_cli.errors import SetupError
from facefix_cli.weights import registry

RestorerName = Literal["gfpgan", "codeformer"]
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

    @property
    def upscales(self) -> bool:
        return self.upscaler_path is not None or self.scale > 1

    def validate(self) -> None:
        """Raise SetupError for a recipe no run can follow, before any work starts."""
        if self.scale not in (1, 2, 4):
            raise SetupError(f"--upscale must be 1, 2 or 4, not {self.scale}")
        if not 0.0 <= self.upscale_strength <= 1.0:
            raise SetupError(f"--upscale-strength must be in [0, 1], not {self.upscale_strength}")
        if self.restore_with is not None and not 0.0 < self.restore_strength <= 1.0:
            raise SetupError(
                f"--{self.restore_with} strength must be in (0, 1], not {self.restore_strength}"
            )
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
        if not self.upscales and self.restore_with is None:
            raise SetupError(
                "nothing to do: give --upscale 2|4, --upscaler, --gfpgan or --codeformer"
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
        if self.restore_with is not None:
            rows.append((self.restore_with, f"{self.restore_strength:g}"))
            if self.restore_with == "codeformer":
                rows.append(("fidelity", f"{self.fidelity:g}"))
            else:
                rows.append(("GFPGAN version", self.gfpgan_version))
            rows.append(("detector", self.detector))
            if self.only_center_face:
                rows.append(("faces", "only the centre one"))
        rows.append(("tile", "auto" if self.tile is None else str(self.tile)))
        rows.append(("precision", self.precision))
        return rows

    def describe(self) -> str:
        """`rows()` in one line, for the log's run-start line."""
        return ", ".join(f"{label} {value}" for label, value in self.rows())

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
        )
