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


def retinaface_input(images: torch.Tensor) -> torch.Tensor:
    """Float RGB images (N x 3 x H x W) as RetinaFace was trained on: BGR, 0-255, minus the
    channel means."""
    bgr_mean = torch.tensor([104.0, 117.0, 123.0], device=images.device).view(1, 3, 1, 1)
    return images.float().flip(1) * 255.0 - bgr_mean


DETECT_PIXELS = 1 << 22  # pixels per RetinaFace pass: batches of big images go in smaller groups


def retinaface_detector(
    net: torch.nn.Module, threshold: float = CONFIDENCE_THRESHOLD, nms_threshold: float = 0.4
) -> FaceDetector:
    """A FaceDetector running facexlib's RetinaFace network at the images' own resolution, on
    a batch at once.

    Same decoding as facexlib's `detect_faces`, but the images are prepared on the network's
    device and the anchor priors are computed once per image size: facexlib rebuilds them in
    a Python loop on every call, which cost more than the network itself on a GPU.
    """
    from facexlib.detection.retinaface_utils import PriorBox, decode, decode_landm
    from torchvision.ops import nms

    device = next(net.parameters()).device
    variance = net.cfg["variance"]  # type: ignore[index]  # facexlib's RetinaFace config dict
    priors_by_size: dict[tuple[int, int], torch.Tensor] = {}

    def decode_one(loc, conf, landmarks, priors, box_scale) -> list[Face]:
        boxes = decode(loc, priors, variance) * box_scale
        points = decode_landm(landmarks, priors, variance) * box_scale[:2].repeat(5)
        scores = conf[:, 1]
        keep = scores > threshold
        boxes, points, scores = boxes[keep], points[keep], scores[keep]
        order = scores.argsort(descending=True)
        boxes, points, scores = boxes[order], points[order], scores[order]
        keep = nms(boxes.float(), scores.float(), nms_threshold)
        rows = torch.cat([boxes[keep], scores[keep, None], points[keep]], dim=1)
        return faces_from_rows(rows.float().cpu().numpy())

    @torch.inference_mode()
    def detect(images: torch.Tensor) -> list[list[Face]]:
        count, _, height, width = images.shape
        if (height, width) not in priors_by_size:
            priors_by_size[(height, width)] = (
                PriorBox(net.cfg, image_size=(height, width)).forward().to(device)
            )
        priors = priors_by_size[(height, width)]
        box_scale = torch.tensor([width, height] * 2, dtype=torch.float32, device=device)
        per_pass = max(1, DETECT_PIXELS // (height * width))
        found: list[list[Face]] = []
        for start in range(0, count, per_pass):
            chunk = images[start : start + per_pass].to(device)
            loc, conf, landmarks = net(retinaface_input(chunk))
            found.extend(
                decode_one(loc[i], conf[i], landmarks[i], priors, box_scale)
                for i in range(loc.shape[0])
            )
        return found

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
