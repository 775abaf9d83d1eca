"""The one table of model facts: names, files, URLs, sizes, digests, licences, purpose.

Everything else (what `fix` needs, what `download` fetches, what `models` lists) is derived
from this table, so adding a model is adding a row. `Registry` wraps a table with its lookups;
`REGISTRY` is the released one, and functions that read the table take a `Registry` argument
defaulting to it, so tests pass their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Purpose = Literal["upscaler", "face_restorer", "face_detector", "face_parser"]


@dataclass(frozen=True)
class ModelInfo:
    name: str  # short name used on the command line (`facefix download NAME`)
    file: str  # file name inside the weights folder
    purpose: Purpose
    urls: tuple[str, ...]  # release URL first, then mirrors
    size: int  # exact bytes
    sha256: str
    licence: str
    description: str
    # Part of the set `facefix download` fetches with no names given.
    default: bool = True
    # Licence forbids commercial use: fetched only when asked for by name.
    non_commercial: bool = False
    # Scale for upscalers, so `--upscale N` can be mapped to a file without loading it.
    scale: int = 1


MODELS: tuple[ModelInfo, ...] = (
    ModelInfo(
        name="gfpgan-1.4",
        file="GFPGANv1.4.pth",
        purpose="face_restorer",
        urls=("https://github.com/TencentARC/GFPGAN/releases/download/v1.3.0/GFPGANv1.4.pth",),
        size=348632874,
        sha256="e2cd4703ab14f4d01fd1383a8a8b266f9a5833dacee8e6a79d3bf21a1b6be5ad",
        licence="Apache-2.0 (StyleGAN2 parts: NVIDIA terms)",
        description="GFPGAN v1.4 face restoration",
    ),
    ModelInfo(
        name="gfpgan-1.3",
        file="GFPGANv1.3.pth",
        purpose="face_restorer",
        urls=("https://github.com/TencentARC/GFPGAN/releases/download/v1.3.0/GFPGANv1.3.pth",),
        size=348632874,
        sha256="c953a88f2727c85c3d9ae72e2bd4846bbaf59fe6972ad94130e23e7017524a70",
        licence="Apache-2.0 (StyleGAN2 parts: NVIDIA terms)",
        description="GFPGAN v1.3 face restoration",
        default=False,
    ),
    ModelInfo(
        name="codeformer",
        file="codeformer.pth",
        purpose="face_restorer",
        urls=("https://github.com/sczhou/CodeFormer/releases/download/v0.1.0/codeformer.pth",),
        size=376637898,
        sha256="1009e537e0c2a07d4cabce6355f53cb66767cd4b4297ec7a4a64ca4b8a5684b7",
        licence="S-Lab License 1.0 (non-commercial use only)",
        description="CodeFormer face restoration",
        default=False,
        non_commercial=True,
    ),
    ModelInfo(
        name="realesrgan-x2plus",
        file="RealESRGAN_x2plus.pth",
        purpose="upscaler",
        urls=(
            "https://github.com/xinntao/Real-ESRGAN/releases/download/v0.2.1/RealESRGAN_x2plus.pth",
        ),
        size=67061725,
        sha256="49fafd45f8fd7aa8d31ab2a22d14d91b536c34494a5cfe31eb5d89c2fa266abb",
        licence="BSD-3-Clause",
        description="Real-ESRGAN 2x upscaler",
        scale=2,
    ),
    ModelInfo(
        name="realesrgan-x4plus",
        file="RealESRGAN_x4plus.pth",
        purpose="upscaler",
        urls=(
            "https://github.com/xinntao/Real-ESRGAN/releases/download/v0.1.0/RealESRGAN_x4plus.pth",
        ),
        size=67040989,
        sha256="4fa0d38905f75ac06eb49a7951b426670021be3018265fd191d2125df9d682f1",
        licence="BSD-3-Clause",
        description="Real-ESRGAN 4x upscaler",
        scale=4,
    ),
    ModelInfo(
        name="retinaface-resnet50",
        file="detection_Resnet50_Final.pth",
        purpose="face_detector",
        urls=(
            "https://github.com/xinntao/facexlib/releases/download/v0.1.0/detection_Resnet50_Final.pth",
        ),
        size=109497761,
        sha256="6d1de9c2944f2ccddca5f5e010ea5ae64a39845a86311af6fdf30841b0a5a16d",
        licence="MIT",
        description="RetinaFace ResNet-50 face detector (facexlib)",
    ),
    ModelInfo(
        name="retinaface-mobile0.25",
        file="detection_mobilenet0.25_Final.pth",
        purpose="face_detector",
        urls=(
            "https://github.com/xinntao/facexlib/releases/download/v0.1.0/detection_mobilenet0.25_Final.pth",
        ),
        size=1789735,
        sha256="2979b33ffafda5d74b6948cd7a5b9a7a62f62b949cef24e95fd15d2883a65220",
        licence="MIT",
        description="RetinaFace MobileNet-0.25 face detector (facexlib), small and fast",
        default=False,
    ),
    ModelInfo(
        name="parsenet",
        file="parsing_parsenet.pth",
        purpose="face_parser",
        urls=("https://github.com/xinntao/facexlib/releases/download/v0.2.2/parsing_parsenet.pth",),
        size=85331193,
        sha256="3d558d8d0e42c20224f13cf5a29c79eba2d59913419f945545d8cf7b72920de2",
        licence="MIT",
        description="ParseNet face parsing, for the paste-back mask (facexlib)",
    ),
)

# `--detector` values (facexlib's names) to registry names.
DETECTORS: dict[str, str] = {
    "retinaface_resnet50": "retinaface-resnet50",
    "retinaface_mobile0.25": "retinaface-mobile0.25",
}
GFPGAN_VERSIONS: dict[str, str] = {"1.4": "gfpgan-1.4", "1.3": "gfpgan-1.3"}


@dataclass(frozen=True)
class Registry:
    """A table of models and the lookups over it. Library functions and the CLI take one,
    defaulting to `REGISTRY` (the released files), so tests pass stand-ins instead of patching."""

    models: tuple[ModelInfo, ...]

    def get(self, name: str) -> ModelInfo:
        """The row called `name`; KeyError lists the known names."""
        for model in self.models:
            if model.name == name:
                return model
        known = ", ".join(m.name for m in self.models)
        raise KeyError(f"unknown model {name!r}; known models: {known}")

    def upscaler_for_scale(self, scale: int) -> ModelInfo:
        for model in self.models:
            if model.purpose == "upscaler" and model.scale == scale:
                return model
        raise KeyError(f"no upscaler in the registry for scale {scale}")

    def required(
        self,
        *,
        upscale: int,
        restorer: str | None,
        gfpgan_version: str = "1.4",
        detector: str = "retinaface_resnet50",
        custom_upscaler: bool = False,
        custom_restorer: bool = False,
    ) -> list[ModelInfo]:
        """The files a `fix` run with these options needs, in the order they are used (a
        custom upscaler's or restorer's own file is the user's, not the registry's)."""
        needed: list[ModelInfo] = []
        if upscale > 1 and not custom_upscaler:
            needed.append(self.upscaler_for_scale(upscale))
        if restorer is not None:
            if custom_restorer:
                pass
            elif restorer == "gfpgan":
                needed.append(self.get(GFPGAN_VERSIONS[gfpgan_version]))
            elif restorer == "codeformer":
                needed.append(self.get("codeformer"))
            else:
                raise ValueError(f"unknown face restorer {restorer!r}")
            needed.append(self.get(DETECTORS[detector]))
            needed.append(self.get("parsenet"))
        return needed


REGISTRY = Registry(MODELS)


def get_model(name: str) -> ModelInfo:
    """The released file called `name` (`REGISTRY.get`)."""
    return REGISTRY.get(name)


def upscaler_for_scale(scale: int) -> ModelInfo:
    """The released Real-ESRGAN for `scale` (`REGISTRY.upscaler_for_scale`)."""
    return REGISTRY.upscaler_for_scale(scale)
