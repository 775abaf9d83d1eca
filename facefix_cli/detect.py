"""Find faces: boxes, scores and the five landmarks (eyes, nose, mouth corners) of each."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

# GFPGAN's reference keeps detections above 0.97 and faces whose eyes are 5 px apart or more.
CONFIDENCE_THRESHOLD = 0.97
MIN_EYE_DISTANCE = 5.0


@dataclass(frozen=True)
class Face:
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in image pixels
    score: float
    landmarks: np.ndarray  # 5 x 2 float32: left eye, right eye, nose, mouth left, mouth right

    @property
    def eye_distance(self) -> float:
        return float(np.linalg.norm(self.landmarks[0] - self.landmarks[1]))


class FaceDetector(Protocol):
    def __call__(self, rgb: np.ndarray) -> list[Face]:
        """Faces in a float RGB image (H x W x 3, [0, 1]), best first."""
        ...


def faces_from_rows(rows: np.ndarray) -> list[Face]:
    """facexlib's detection rows (x0, y0, x1, y1, score, then 5 landmark x, y pairs)."""
    return [
        Face(
            box=tuple(float(v) for v in row[:4]),
            score=float(row[4]),
            landmarks=np.asarray(row[5:15], dtype=np.float32).reshape(5, 2),
        )
        for row in rows
    ]


def retinaface_detector(
    net: torch.nn.Module, threshold: float = CONFIDENCE_THRESHOLD
) -> FaceDetector:
    """A FaceDetector calling facexlib's RetinaFace at the image's own resolution."""

    def detect(rgb: np.ndarray) -> list[Face]:
        bgr_255 = np.ascontiguousarray(rgb[:, :, ::-1] * 255.0, dtype=np.float32)
        with torch.inference_mode():
            rows = net.detect_faces(bgr_255, conf_threshold=threshold, use_origin_size=True)
        return faces_from_rows(rows)

    return detect


def select_faces(
    faces: list[Face],
    image_size: tuple[int, int],
    *,
    only_center_face: bool = False,
    min_eye_distance: float = MIN_EYE_DISTANCE,
) -> list[Face]:
    """Drop faces too small to restore; with only_center_face keep the one nearest the centre."""
    kept = [f for f in faces if f.eye_distance >= min_eye_distance]
    if only_center_face and kept:
        width, height = image_size
        centre = np.array([width / 2, height / 2])

        def distance(face: Face) -> float:
            x0, y0, x1, y1 = face.box
            return float(np.linalg.norm(np.array([(x0 + x1) / 2, (y0 + y1) / 2]) - centre))

        kept = [min(kept, key=distance)]
    return kept
