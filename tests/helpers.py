"""Test helpers shared by several test folders: stand-in detectors and in-memory images."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from conftest import gradient_image
from spandrel import SizeRequirements

from facefix_cli.io.read import SourceImage
from facefix_cli.ops import align, detect

EYE_SPACING = 0.12  # face scale relative to the 512 template: eyes ~15 px apart


def centred_face_detector(calls: list):
    """A FaceDetector that reports one face at the centre of each image, like RetinaFace
    would; `calls` gets the shape of each batch it sees."""

    def detect_faces(images: torch.Tensor) -> list[list[detect.Face]]:
        calls.append(tuple(images.shape))
        return [centred_faces(*images.shape[2:]) for _ in range(images.shape[0])]

    return detect_faces


def centred_faces(height: int, width: int) -> list[detect.Face]:
    landmarks = (align.FFHQ_TEMPLATE_512 - 256) * EYE_SPACING + np.array([width / 2, height / 2])
    return [detect.Face((0, 0, width, height), 0.99, landmarks.astype(np.float32))]


def placed_face(x: float, y: float, size: float, score: float = 0.99) -> detect.Face:
    """A face centred at (x, y) whose 512-template square (its box) is `size` pixels."""
    landmarks = (align.FFHQ_TEMPLATE_512 - 256) * (size / 512) + np.array([x, y])
    half = size / 2
    return detect.Face(
        (x - half, y - half, x + half, y + half), score, landmarks.astype(np.float32)
    )


def placed_faces_detector(layout: list[tuple[float, float, float]], calls: list | None = None):
    """A FaceDetector reporting, in each image, the faces of `layout`: (x, y, size) as shares
    of the image's width (x, size) and height (y), so they sit on the same picture features
    whatever size the detector is shown. `calls` gets each batch's shape."""

    def detect_faces(images: torch.Tensor) -> list[list[detect.Face]]:
        if calls is not None:
            calls.append(tuple(images.shape))
        height, width = images.shape[2:]
        faces = [placed_face(x * width, y * height, size * width) for x, y, size in layout]
        return [list(faces) for _ in range(images.shape[0])]

    return detect_faces


class TinyRestorer:
    """A spandrel GFPGAN descriptor's call and output form, as a 3x3 convolution."""

    architecture = type("Architecture", (), {"id": "GFPGAN"})
    dtype = torch.float32
    size_requirements = SizeRequirements(minimum=512)

    def __init__(self) -> None:
        torch.manual_seed(1)
        conv = torch.nn.Conv2d(3, 3, 3, padding=1)
        self.model = lambda x, return_rgb, randomize_noise: (torch.tanh(conv(x) * 3),)


def with_tiny_faces(models: Any) -> Any:
    """`models` (a Networks) with TinyRestorer and TinyParser in place of GFPGAN and ParseNet,
    and a stand-in restorer digest (no GFPGAN file to hash)."""
    models.restorer, models.parser = TinyRestorer(), TinyParser()
    models.restorer_sha256 = "0" * 64
    return models


class TinyParser(torch.nn.Module):
    """ParseNet's call and output form, as a 1x1 convolution: cheap on a CPU."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 19, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        return (self.conv(x),)


def source_image(width: int, height: int, alpha: bool = False, seed: int = 3) -> SourceImage:
    rgb = gradient_image(width, height, seed=seed)
    alpha_plane = (
        np.linspace(0, 1, width * height, dtype=np.float32).reshape(height, width)
        if alpha
        else None
    )
    return SourceImage(Path("face.png"), rgb, alpha_plane, 8, [], "0" * 64)


def fixed_output_with_faces(
    folder: Path,
    name: str,
    prompt: str,
    boxes: list[tuple[float, float, float, float]],
    size: tuple[int, int] = (40, 32),
    scale: int = 2,
    seed: int = 5,
    output_dir: Path | None = None,
) -> Path:
    """An original `name.png` (A1111 metadata) and its `name.fixed.png` written as `fix_file`
    writes one (into `output_dir` if given, recording where the original is, as `--output-dir`
    does), with a restoration record listing `boxes` (in output pixels) as its faces.
    The "restored" pixels are the bicubic upscale brightened inside each box, so before and
    after differ exactly where the faces are; no network is run."""
    import cv2
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    from facefix_cli.io.read import read_image
    from facefix_cli.io.write import encode_png, quantize
    from facefix_cli.metadata import chunks_from_bytes, output_chunks
    from facefix_cli.operations import Operation, RecordedFace, facefix_record

    width, height = size
    original = folder / f"{name}.png"
    info = PngInfo()
    info.add_text(
        "parameters", f"{prompt}\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: {seed}"
    )
    Image.fromarray(quantize(gradient_image(width, height, seed), 8)).save(original, pnginfo=info)
    source = read_image(original, chunks_from_bytes)
    after = cv2.resize(source.rgb, (width * scale, height * scale), interpolation=cv2.INTER_CUBIC)
    for x0, y0, x1, y1 in boxes:
        after[int(y0) : int(y1), int(x0) : int(x1)] = (
            1.0 - after[int(y0) : int(y1), int(x0) : int(x1)]
        )
    operations = [
        Operation(type="esrgan", strength=0.75, scale=scale, model="RealESRGAN_x2plus.pth"),
        Operation(
            type="gfpgan",
            strength=0.8,
            version="1.4",
            model="GFPGANv1.4.pth",
            faces=len(boxes),
            detections=tuple(RecordedFace.rounded(box, 0.99) for box in boxes),
        ),
    ]
    output = (output_dir or folder) / f"{name}.fixed.png"
    relative = None
    if output_dir is not None:
        relative = Path(os.path.relpath(original, output_dir)).as_posix()
    record = facefix_record(operations, original.name, source.sha256, relative)
    output.write_bytes(
        encode_png(np.clip(after, 0, 1), None, 8, output_chunks(source.chunks, operations, record))
    )
    return output


def discover(
    paths: Sequence[Path],
    *,
    recursive: bool = True,
    extensions: Sequence[str] = ("png",),
    output_dir: Path | None = None,
    skipped: list[Any] | None = None,
    output_format: Any = "png",
) -> tuple[list[Any], list[Any]]:
    """The jobs for every image under `paths`, and the named paths that are not usable inputs
    (`io.discover.scan` without the skip rules: what the tests of the walk and the stages want).

    Folders yield files by extension (case-insensitive) whose signature matches; a file named
    explicitly is rejected with a reason if it is missing or not an image of the accepted kinds.
    Each source appears once, even when named twice. Extensions have aliases (`jpg` means
    `.jpeg` too). Files found in folders that are images of a type not asked for are appended
    to `skipped` (when given), so the run can count and report them. Outputs are not looked
    at (`scan` decides what is done already)."""
    from facefix_cli.io.discover import Job, Kind, Rejected, scan

    jobs: list[Job] = []
    rejected: list[Rejected] = []
    for found in scan(
        paths,
        recursive=recursive,
        extensions=extensions,
        output_dir=output_dir,
        check_outputs=False,
        output_format=output_format,
    ):
        if found.kind is Kind.TODO:
            jobs.append(found.job)
        elif found.kind is Kind.REJECTED:
            rejected.append(Rejected(found.source, found.reason))
        elif found.kind is Kind.OTHER_TYPE and skipped is not None:
            skipped.append(Rejected(found.source, found.reason))
    return jobs, rejected
