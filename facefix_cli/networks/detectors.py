"""Face detectors in one table, as face restorers are in `networks.restorers`: each
`--detector` value names how its network is built and run, and `load_detector` is the one way
a run gets a `FaceDetector` (`ops.detect`'s interface: faces, best first, per image).

A new detector is one row in `DETECTORS` here (with its loader) and its weight file's row in
`weights.registry` (`registry.DETECTORS` maps the option to the file, so `--detector`'s choices,
`facefix download` and the recipe's checks follow from it).

Guarantees: the detector runs at the images' own resolution on a batch at once and gives the
same faces as facexlib's `detect_faces` for the same network; what `ops.detect.detect_faces`
does around it (a smaller copy of big images) is the same for every detector."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from facefix_cli.networks.load import load_retinaface
from facefix_cli.ops.detect import CONFIDENCE_THRESHOLD, Face, FaceDetector, faces_from_rows

# Pixels per RetinaFace pass: batches of big images go in smaller groups.
DETECT_PIXELS = 1 << 22


@dataclass(frozen=True)
class DetectorKind:
    """One row: what the detector is, for people, and how to load it from its file."""

    description: str
    # (weight file, device, confidence threshold) -> the detector, ready to run
    load: Callable[[Path, torch.device, float], FaceDetector]


def _retinaface(network: str) -> Callable[[Path, torch.device, float], FaceDetector]:
    def load(path: Path, device: torch.device, threshold: float) -> FaceDetector:
        return retinaface_detector(load_retinaface(path, network, device), threshold=threshold)

    return load


DETECTORS: dict[str, DetectorKind] = {
    "retinaface_resnet50": DetectorKind("RetinaFace ResNet-50 (facexlib)", _retinaface("resnet50")),
    "retinaface_mobile0.25": DetectorKind(
        "RetinaFace MobileNet-0.25 (facexlib)", _retinaface("mobile0.25")
    ),
}


def load_detector(
    name: str, path: Path, device: torch.device, threshold: float = CONFIDENCE_THRESHOLD
) -> FaceDetector:
    """The `--detector` called `name`, its weights from `path`, on `device`, keeping faces it
    is at least `threshold` sure of. KeyError for a name not in `DETECTORS` (`Recipe.validate`
    refuses those first)."""
    return DETECTORS[name].load(path, device, threshold)


def retinaface_input(images: torch.Tensor) -> torch.Tensor:
    """Float RGB images (N x 3 x H x W) as RetinaFace was trained on: BGR, 0-255, minus the
    channel means."""
    bgr_mean = torch.tensor([104.0, 117.0, 123.0], device=images.device).view(1, 3, 1, 1)
    return images.float().flip(1) * 255.0 - bgr_mean


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
