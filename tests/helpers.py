"""Test helpers shared by several test folders: stand-in detectors and in-memory images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from conftest import gradient_image

from facefix.io.read import SourceImage
from facefix.ops import align, detect

EYE_SPACING = 0.12  # face scale relative to the 512 template: eyes ~15 px apart


def centred_face_detector(calls: list):
    """A FaceDetector that reports one face at the image centre, like RetinaFace would."""

    def detect_faces(rgb: np.ndarray) -> list[detect.Face]:
        calls.append(rgb.shape)
        height, width = rgb.shape[:2]
        landmarks = (align.FFHQ_TEMPLATE_512 - 256) * EYE_SPACING + np.array(
            [width / 2, height / 2]
        )
        return [detect.Face((0, 0, width, height), 0.99, landmarks.astype(np.float32))]

    return detect_faces


def source_image(width: int, height: int, alpha: bool = False) -> SourceImage:
    rgb = gradient_image(width, height, seed=3)
    alpha_plane = (
        np.linspace(0, 1, width * height, dtype=np.float32).reshape(height, width)
        if alpha
        else None
    )
    return SourceImage(Path("face.png"), rgb, alpha_plane, 8, [], "0" * 64)
