"""Test helpers shared by several test folders: stand-in detectors and in-memory images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from conftest import gradient_image

from facefix.io.read import SourceImage
from facefix.ops import align, detect

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


def source_image(width: int, height: int, alpha: bool = False, seed: int = 3) -> SourceImage:
    rgb = gradient_image(width, height, seed=seed)
    alpha_plane = (
        np.linspace(0, 1, width * height, dtype=np.float32).reshape(height, width)
        if alpha
        else None
    )
    return SourceImage(Path("face.png"), rgb, alpha_plane, 8, [], "0" * 64)
