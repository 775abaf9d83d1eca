"""`fix`: the batch job. Discover inputs, then for each: read, upscale, detect, align, restore,
paste, write. Each stage is a plain function in its own module; this file only wires them."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
import torch

from . import __version__, registry
from .align import alignment_matrix, warp_face
from .detect import FaceDetector, retinaface_detector, select_faces
from .device import default_tile, make_deterministic, resolve_device
from .discover import Job, discover
from .download import DownloadProgress, ensure_weights
from .errors import FacefixError, ImageError, SetupError
from .metadata import output_chunks, parse_generation
from .models import load_parsenet, load_retinaface, load_spandrel_model
from .paste import blend_restored, face_masks, paste_face
from .read import SourceImage, read_image
from .restore import restore_faces
from .upscale import upscale, upscale_alpha
from .write import encode_png, write_atomic

Status = Literal["fixed", "skipped", "failed", "planned"]


@dataclass(frozen=True)
class FixOptions:
    weights_dir: Path
    upscale: int = 1  # 1 = none, 2 or 4 = the Real-ESRGAN model of that scale
    upscale_strength: float = 0.75
    restorer: Literal["gfpgan", "codeformer"] | None = None
    restore_strength: float = 0.0
    fidelity: float = 0.5  # CodeFormer's w: 0 = most restoration, 1 = most faithful
    gfpgan_version: str = "1.4"
    upscaler_path: Path | None = None  # any spandrel super-resolution checkpoint
    device: str = "auto"
    tile: int | None = None  # None = chosen from the device; 0 = whole image
    half: bool = False  # fp16 upscaling on CUDA: faster, not bit-identical to fp32
    only_center_face: bool = False
    detector: str = "retinaface_resnet50"
    output_dir: Path | None = None
    overwrite: bool = False
    dry_run: bool = False
    recursive: bool = True
    extensions: tuple[str, ...] = ("png",)
    offline: bool = False
    mirrors: tuple[str, ...] = ()

    @property
    def upscales(self) -> bool:
        return self.upscaler_path is not None or self.upscale > 1

    def validate(self) -> None:
        """Raise SetupError for options no run can satisfy, before any work starts."""
        if self.upscale not in (1, 2, 4):
            raise SetupError(f"--upscale must be 1, 2 or 4, not {self.upscale}")
        if not 0.0 <= self.upscale_strength <= 1.0:
            raise SetupError(f"--upscale-strength must be in [0, 1], not {self.upscale_strength}")
        if self.restorer is not None and not 0.0 < self.restore_strength <= 1.0:
            raise SetupError(
                f"--{self.restorer} strength must be in (0, 1], not {self.restore_strength}"
            )
        if not 0.0 <= self.fidelity <= 1.0:
            raise SetupError(f"--fidelity must be in [0, 1], not {self.fidelity}")
        if self.gfpgan_version not in registry.GFPGAN_VERSIONS:
            raise SetupError(f"--gfpgan-model must be one of {', '.join(registry.GFPGAN_VERSIONS)}")
        if self.detector not in registry.DETECTORS:
            raise SetupError(f"--detector must be one of {', '.join(registry.DETECTORS)}")
        if self.tile is not None and self.tile < 0:
            raise SetupError("--tile must be 0 (whole image) or a positive number of pixels")
        if self.tile and self.tile < 32:
            raise SetupError("--tile below 32 pixels is too small to upscale well")
        if self.upscaler_path is not None and not self.upscaler_path.is_file():
            raise SetupError(f"--upscaler: no such model file: {self.upscaler_path}")
        if not self.upscales and self.restorer is None:
            raise SetupError(
                "nothing to do: give --upscale 2|4, --upscaler, --gfpgan or --codeformer"
            )

    def required_models(self) -> list[registry.ModelInfo]:
        return registry.required_models(
            upscale=self.upscale,
            restorer=self.restorer,
            gfpgan_version=self.gfpgan_version,
            detector=self.detector,
            custom_upscaler=self.upscaler_path is not None,
        )


class Models:
    """The networks a run needs, each loaded on first use and then kept for the whole run."""

    def __init__(self, options: FixOptions, device: torch.device) -> None:
        self.options = options
        self.device = device

    def _path(self, name: str) -> Path:
        return self.options.weights_dir / registry.get_model(name).file

    @property
    def upscaler_path(self) -> Path:
        """--upscaler's file, else the registry's Real-ESRGAN for --upscale."""
        if self.options.upscaler_path is not None:
            return self.options.upscaler_path
        return self._path(registry.upscaler_for_scale(self.options.upscale).name)

    @cached_property
    def upscaler(self):
        path = self.upscaler_path
        model = load_spandrel_model(path, self.device)
        if model.purpose not in ("SR", "Restoration") or model.input_channels != 3:
            raise SetupError(
                f"{path} is a {model.architecture.name} {model.purpose} model, not an RGB upscaler"
            )
        if self.half and model.supports_half:
            model.half()
        return model

    @cached_property
    def upscaler_sha256(self) -> str:
        if self.options.upscaler_path is None:
            return registry.upscaler_for_scale(self.options.upscale).sha256
        return _file_sha256(self.options.upscaler_path)

    @cached_property
    def restorer(self):
        model = load_spandrel_model(self._path(self.restorer_info.name), self.device)
        if model.purpose != "FaceSR":
            raise SetupError(f"{self.restorer_info.file} is not a face restoration model")
        return model

    @cached_property
    def restorer_info(self) -> registry.ModelInfo:
        if self.options.restorer == "codeformer":
            return registry.get_model("codeformer")
        return registry.get_model(registry.GFPGAN_VERSIONS[self.options.gfpgan_version])

    @cached_property
    def detector(self) -> FaceDetector:
        name = registry.DETECTORS[self.options.detector]
        network = self.options.detector.removeprefix("retinaface_")
        return retinaface_detector(load_retinaface(self._path(name), network, self.device))

    @cached_property
    def parser(self) -> torch.nn.Module:
        return load_parsenet(self._path("parsenet"), self.device)

    @property
    def half(self) -> bool:
        # Opt-in: fp16 runs the upscaler ~1.8x faster on an H100 (benchmarks/RESULTS.md), but
        # fp32 is what the tests verify; CPUs gain nothing from it.
        return self.device.type == "cuda" and self.options.half

    @property
    def tile(self) -> int:
        return default_tile(self.device) if self.options.tile is None else self.options.tile


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class FixedImage:
    rgb: np.ndarray
    alpha: np.ndarray | None
    faces: int
    operations: list[dict]


def fix_image(source: SourceImage, options: FixOptions, models: Models) -> FixedImage:
    """Upscale, then restore the faces of the upscaled image. Pure arrays in, arrays out."""
    rgb, alpha = source.rgb, source.alpha
    operations: list[dict] = []
    if options.upscales:
        model = models.upscaler
        rgb = upscale(
            rgb,
            model,
            strength=options.upscale_strength,
            device=models.device,
            tile=models.tile,
            half=models.half,
        )
        if alpha is not None:
            alpha = upscale_alpha(alpha, rgb.shape[1], rgb.shape[0])
        operations.append(
            {
                "type": "esrgan",
                "scale": model.scale,
                "strength": options.upscale_strength,
                "model": models.upscaler_path.name,
                "sha256": models.upscaler_sha256,
            }
        )
    faces = 0
    if options.restorer is not None:
        height, width = rgb.shape[:2]
        found = select_faces(
            models.detector(rgb), (width, height), only_center_face=options.only_center_face
        )
        faces = len(found)
        if found:
            matrices = [alignment_matrix(face.landmarks) for face in found]
            crops = [warp_face(rgb, matrix) for matrix in matrices]
            restored = restore_faces(
                models.restorer, crops, device=models.device, fidelity=options.fidelity
            )
            masks = face_masks(models.parser, restored, models.device)
            pasted = rgb.copy()
            for face, mask, matrix in zip(restored, masks, matrices, strict=True):
                paste_face(pasted, face, mask, matrix)
            rgb = blend_restored(rgb, pasted, options.restore_strength)
        info = models.restorer_info
        operation = {"type": options.restorer, "strength": options.restore_strength}
        if options.restorer == "codeformer":
            operation["fidelity"] = options.fidelity
        else:
            operation["version"] = options.gfpgan_version
        operation.update({"model": info.file, "sha256": info.sha256, "faces": faces})
        operations.append(operation)
    return FixedImage(rgb, alpha, faces, operations)


def facefix_record(source: SourceImage, operations: list[dict]) -> dict:
    """The JSON facefix writes into every output: what it did, with which files, to what."""
    return {
        "facefix_version": __version__,
        "operations": operations,
        "source": {"file": source.path.name, "sha256": source.sha256},
    }


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

    def to_dict(self) -> dict:
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


def fix_file(job: Job, options: FixOptions, models: Models) -> FileResult:
    """Fix one file; every per-file problem comes back as a failed result, never an exception."""
    started = time.perf_counter()
    result = FileResult(job.source, job.output, "failed")
    try:
        if job.output.resolve() == job.source.resolve():
            raise ImageError("output would overwrite the input")
        source = read_image(job.source)
        generation = parse_generation(source.chunks)
        result.tool, result.seed = generation.tool, generation.seed
        if generation.facefix and not options.overwrite:  # a renamed .fixed.png
            result.status, result.reason = (
                "skipped",
                "already a facefix output (use --overwrite to redo)",
            )
            return result
        fixed = fix_image(source, options, models)
        chunks = output_chunks(
            source.chunks, fixed.operations, facefix_record(source, fixed.operations)
        )
        write_atomic(job.output, encode_png(fixed.rgb, fixed.alpha, source.bit_depth, chunks))
        result.status, result.faces = "fixed", fixed.faces
        if options.restorer is not None and fixed.faces == 0:
            result.reason = (
                "no faces found; upscaled only" if options.upscales else "no faces found"
            )
    except ImageError as exc:
        result.reason = str(exc)
    except torch.OutOfMemoryError:
        result.reason = "out of GPU memory; try a smaller --tile (e.g. --tile 256)"
    except FacefixError:
        raise  # setup problems (a model that will not load) stop the whole run
    except (ValueError, RuntimeError, MemoryError) as exc:
        result.reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    finally:
        result.seconds = time.perf_counter() - started
    return result


def fix(
    paths: Sequence[Path],
    options: FixOptions,
    *,
    events: FixEvents | None = None,
    models: Models | None = None,
    download_progress: DownloadProgress | None = None,
) -> FixSummary:
    """Fix every image under `paths`. Setup problems raise SetupError before any image is read;
    per-file problems are failed results and the batch goes on."""
    events = events or SilentEvents()
    started = time.perf_counter()
    options.validate()
    try:
        jobs, rejected = discover(
            paths,
            recursive=options.recursive,
            extensions=options.extensions,
            output_dir=options.output_dir,
        )
    except ValueError as exc:
        raise SetupError(str(exc)) from None
    summary = FixSummary()
    summary.results.extend(FileResult(r.path, None, "failed", r.reason) for r in rejected)
    todo: list[Job] = []
    for job in jobs:
        if job.output.exists() and not options.overwrite:
            summary.results.append(
                FileResult(job.source, job.output, "skipped", "output exists (use --overwrite)")
            )
        else:
            todo.append(job)
    events.started(len(summary.results) + len(todo))
    for result in summary.results:
        events.file_finished(result)
    if options.dry_run or not todo:
        for job in todo:
            result = FileResult(job.source, job.output, "planned")
            summary.results.append(result)
            events.file_finished(result)
        summary.seconds = time.perf_counter() - started
        return summary
    device = resolve_device(options.device)
    ensure_weights(
        options.required_models(),
        options.weights_dir,
        offline=options.offline,
        mirrors=options.mirrors,
        progress=download_progress,
    )
    make_deterministic()
    models = models or Models(options, device)
    for job in todo:
        events.file_started(job)
        result = fix_file(job, options, models)
        summary.results.append(result)
        events.file_finished(result)
    summary.seconds = time.perf_counter() - started
    return summary
