"""Find faces: boxes, scores and the five landmarks (eyes, nose, mouth corners) of each, from any
`FaceDetector` (the detectors themselves are `networks.detectors`'s table); find them on a
smaller copy of big images (`detect_faces`); choose which to restore (`select_faces`).

Coordinates are image pixels with pixel centres at integers, as in `align` (OpenCV's
convention). Mapping faces between two sizes of one image (`scale_faces`) follows the resize's
own geometry (`align_corners=False`: the image's edges map onto each other), so landmarks found
on a copy land where the same features are on the full image.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F

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

    @property
    def size(self) -> float:
        """The box's longer side: what --min-face and --max-faces compare."""
        x0, y0, x1, y1 = self.box
        return max(x1 - x0, y1 - y0)


class FaceDetector(Protocol):
    def __call__(self, images: torch.Tensor) -> list[list[Face]]:
        """Faces in each of N float RGB images (N x 3 x H x W, [0, 1]), best first."""
        ...


def faces_from_rows(rows: np.ndarray) -> list[Face]:
    """facexlib's detection rows (x0, y0, x1, y1, score, then 5 landmark x, y pairs)."""
    return [
        Face(
            box=(float(row[0]), float(row[1]), float(row[2]), float(row[3])),
            score=float(row[4]),
            landmarks=np.asarray(row[5:15], dtype=np.float32).reshape(5, 2),
        )
        for row in rows
    ]


def scale_faces(faces: list[Face], x_factor: float, y_factor: float) -> list[Face]:
    """`faces` of an image, placed on the same image resized by these factors (new size / old
    size per axis): a point at pixel x goes to (x + 0.5) * factor - 0.5."""

    def point(x: float, y: float) -> tuple[float, float]:
        return (x + 0.5) * x_factor - 0.5, (y + 0.5) * y_factor - 0.5

    factors = np.array([x_factor, y_factor], dtype=np.float64)
    scaled = []
    for face in faces:
        (x0, y0), (x1, y1) = point(*face.box[:2]), point(*face.box[2:])
        landmarks = (face.landmarks.astype(np.float64) + 0.5) * factors - 0.5
        scaled.append(replace(face, box=(x0, y0, x1, y1), landmarks=landmarks.astype(np.float32)))
    return scaled


def detection_size(height: int, width: int, max_side: int) -> tuple[int, int]:
    """The (height, width) faces are looked for at: the image's own, or with its long side
    brought down to `max_side` (0: always the image's own)."""
    longest = max(height, width)
    if max_side <= 0 or longest <= max_side:
        return height, width
    factor = max_side / longest
    return max(1, round(height * factor)), max(1, round(width * factor))


@torch.inference_mode()
def detect_faces(
    detector: FaceDetector, images: torch.Tensor, max_side: int = 0
) -> list[list[Face]]:
    """`detector` on N x 3 x H x W images, or on a copy whose long side is `max_side` when
    they are larger (an antialiased bilinear resize), with the faces mapped back to the
    images' pixels. Images no larger than `max_side` (or any, with 0) go to the detector as
    they are. RetinaFace finds faces of about 16-512 px, and its memory grows with the
    pixels: at 4096 px it needs gigabytes, and a face filling a portrait is too big for it."""
    height, width = images.shape[2:]
    small_h, small_w = detection_size(height, width, max_side)
    if (small_h, small_w) == (height, width):
        return detector(images)
    small = F.interpolate(
        images, size=(small_h, small_w), mode="bilinear", antialias=True, align_corners=False
    )
    found = detector(small.clamp_(0.0, 1.0))
    return [scale_faces(faces, width / small_w, height / small_h) for faces in found]


def select_faces(
    faces: list[Face],
    image_size: tuple[int, int],
    *,
    only_center_face: bool = False,
    min_eye_distance: float = MIN_EYE_DISTANCE,
    min_size: float = 0.0,
    min_share: float = 0.0,
    max_faces: int | None = None,
) -> list[Face]:
    """The faces to restore, in the detector's order. First the faces too small are dropped:
    eyes closer than `min_eye_distance`, a box (longer side) under `min_size` pixels or under
    `min_share` of the largest face found; then, of the rest, with `only_center_face` the one
    nearest the centre, and with `max_faces` the largest that many."""
    largest = max((face.size for face in faces), default=0.0)
    kept = [
        f
        for f in faces
        if f.eye_distance >= min_eye_distance
        and f.size >= min_size
        and f.size >= min_share * largest
    ]
    if only_center_face and kept:
        width, height = image_size
        centre = np.array([width / 2, height / 2])

        def distance(face: Face) -> float:
            x0, y0, x1, y1 = face.box
            return float(np.linalg.norm(np.array([(x0 + x1) / 2, (y0 + y1) / 2]) - centre))

        kept = [min(kept, key=distance)]
    if max_faces is not None and len(kept) > max_faces:
        # sorted() is stable: of faces of one size, the detector's first (best) ones stay.
        largest_ones = {id(f) for f in sorted(kept, key=lambda f: -f.size)[:max_faces]}
        kept = [f for f in kept if id(f) in largest_ones]
    return kept
