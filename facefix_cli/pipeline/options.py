"""`FixOptions`: the recipe of a `fix` run. Small, frozen and picklable, so the same recipe
crosses into worker processes and other machines unchanged (like black's `Mode`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from facefix_cli.errors import SetupError
from facefix_cli.io.defaults import DEFAULT_PNG_LEVEL
from facefix_cli.io.header import DEFAULT_MAX_PIXELS
from facefix_cli.networks.device import parse_devices
from facefix_cli.weights import registry

RestorerName = Literal["gfpgan", "codeformer"]
Precision = Literal["auto", "fp32", "fp16", "bf16"]
PRECISIONS: tuple[Precision, ...] = ("auto", "fp32", "fp16", "bf16")


@dataclass(frozen=True)
class FixOptions:
    weights_dir: Path
    scale: int = 1  # 1 = no upscale; 2 or 4 = the registry's Real-ESRGAN of that scale
    upscale_strength: float = 0.75
    restore_with: RestorerName | None = None
    restore_strength: float = 0.0
    fidelity: float = 0.5  # CodeFormer's w: 0 = most restoration, 1 = most faithful
    gfpgan_version: str = "1.4"
    upscaler_path: Path | None = None  # any spandrel super-resolution checkpoint
    device: str = "auto"  # one device, or several comma-separated (one GPU stage each)
    tile: int | None = None  # None = chosen from the device; 0 = whole image
    precision: Precision = "auto"  # auto: fp16 upscaler on CUDA, fp32 elsewhere; see device.py
    only_center_face: bool = False
    detector: str = "retinaface_resnet50"
    output_dir: Path | None = None
    overwrite: bool = False
    dry_run: bool = False
    recursive: bool = True
    extensions: tuple[str, ...] = ("png",)
    offline: bool = False
    mirrors: tuple[str, ...] = ()
    max_pixels: int = DEFAULT_MAX_PIXELS  # refuse larger images from the header; 0 = no limit
    workers: int | None = None  # decode+encode threads; 0 = sequential; None = from the cores
    batch_size: int | None = None  # images per GPU pass; None = from the device and image size
    png_level: int = DEFAULT_PNG_LEVEL  # zlib level of the outputs, 0-9; all lossless

    @property
    def upscales(self) -> bool:
        return self.upscaler_path is not None or self.scale > 1

    def validate(self) -> None:
        """Raise SetupError for options no run can satisfy, before any work starts."""
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
        if self.max_pixels < 0:
            raise SetupError("--max-pixels must be 0 (no limit) or a positive number")
        if self.workers is not None and self.workers < 0:
            raise SetupError("--workers must be 0 (sequential) or a positive number of threads")
        if self.batch_size is not None and self.batch_size < 1:
            raise SetupError("--batch-size must be at least 1")
        if not 0 <= self.png_level <= 9:
            raise SetupError(f"--png-level must be 0 to 9, not {self.png_level}")
        parse_devices(self.device)  # the syntax; whether the devices exist is checked at the run
        if self.upscaler_path is not None and not self.upscaler_path.is_file():
            raise SetupError(f"--upscaler: no such model file: {self.upscaler_path}")
        if not self.upscales and self.restore_with is None:
            raise SetupError(
                "nothing to do: give --upscale 2|4, --upscaler, --gfpgan or --codeformer"
            )

    def describe(self) -> str:
        """The recipe in one line, for the run-start line of a log."""
        parts = []
        if self.upscaler_path is not None:
            parts.append(f"upscaler {self.upscaler_path.name} strength {self.upscale_strength}")
        elif self.scale > 1:
            parts.append(f"upscale {self.scale} strength {self.upscale_strength}")
        if self.restore_with == "gfpgan":
            parts.append(f"gfpgan {self.gfpgan_version} strength {self.restore_strength}")
        elif self.restore_with == "codeformer":
            parts.append(f"codeformer strength {self.restore_strength} fidelity {self.fidelity}")
        parts.append(f"tile {'auto' if self.tile is None else self.tile}")
        parts.append(f"max-pixels {self.max_pixels}")
        if self.output_dir is not None:
            parts.append(f"output-dir {self.output_dir}")
        if self.overwrite:
            parts.append("overwrite")
        return ", ".join(parts)

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
