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


def retinaface_input(rgb: np.ndarray, device: torch.device) -> torch.Tensor:
    """A float RGB image as RetinaFace was trained on: BGR, 0-255, minus the channel means."""
    image = torch.from_numpy(np.ascontiguousarray(rgb, dtype=np.float32)).to(device)
    bgr_mean = torch.tensor([104.0, 117.0, 123.0], device=device).view(1, 3, 1, 1)
    return image.flip(-1).permute(2, 0, 1)[None] * 255.0 - bgr_mean


def retinaface_detector(
    net: torch.nn.Module, threshold: float = CONFIDENCE_THRESHOLD, nms_threshold: float = 0.4
) -> FaceDetector:
    """A FaceDetector running facexlib's RetinaFace network at the image's own resolution.

    Same decoding as facexlib's `detect_faces`, but the image is prepared on the network's
    device and the anchor priors are computed once per image size: facexlib rebuilds them in
    a Python loop on every call, which cost more than the network itself on a GPU.
    """
    from facexlib.detection.retinaface_utils import PriorBox, decode, decode_landm
    from torchvision.ops import nms

    device = next(net.parameters()).device
    variance = net.cfg["variance"]
    priors_by_size: dict[tuple[int, int], torch.Tensor] = {}

    def detect(rgb: np.ndarray) -> list[Face]:
        height, width = rgb.shape[:2]
        if (height, width) not in priors_by_size:
            priors_by_size[(height, width)] = (
                PriorBox(net.cfg, image_size=(height, width)).forward().to(device)
            )
        priors = priors_by_size[(height, width)]
        with torch.inference_mode():
            loc, conf, landmarks = net(retinaface_input(rgb, device))
            box_scale = torch.tensor([width, height] * 2, dtype=torch.float32, device=device)
            boxes = decode(loc[0], priors, variance) * box_scale
            points = decode_landm(landmarks[0], priors, variance) * box_scale[:2].repeat(5)
            scores = conf[0, :, 1]
            keep = scores > threshold
            boxes, points, scores = boxes[keep], points[keep], scores[keep]
            order = scores.argsort(descending=True)
            boxes, points, scores = boxes[order], points[order], scores[order]
            keep = nms(boxes.float(), scores.float(), nms_threshold)
            rows = (
                torch.cat([boxes[keep], scores[keep, None], points[keep]], dim=1)
                .float()
                .cpu()
                .numpy()
            )
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
