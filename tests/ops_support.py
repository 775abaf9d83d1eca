"""What the tests of `ops/` share: images as batches and back, faces placed on the FFHQ
template, and comparisons with OpenCV's reference implementations."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from facefix_cli.ops import align, detect, paste


def as_batch(*images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()


def as_image(tensor: torch.Tensor) -> np.ndarray:
    return tensor.permute(1, 2, 0).numpy()


def face_at(x: float, y: float, scale: float = 1.0, score: float = 0.99) -> detect.Face:
    landmarks = (align.FFHQ_TEMPLATE_512 - 256) * scale + np.array([x, y], np.float32)
    return detect.Face(
        (x - 256 * scale, y - 256 * scale, x + 256 * scale, y + 256 * scale), score, landmarks
    )


def rotated_face(x: float, y: float, scale: float, degrees: float) -> np.ndarray:
    """The alignment matrix of a face at (x, y), `scale` of the template, turned `degrees`."""
    landmarks = (align.FFHQ_TEMPLATE_512 - 256) * scale + np.array([x, y], np.float32)
    turn = cv2.getRotationMatrix2D((x, y), degrees, 1.0)
    return align.alignment_matrix(
        (np.hstack([landmarks, np.ones((5, 1))]) @ turn.T).astype(np.float32)
    )


# Faces inside, across the edge, and at a corner of a 300 x 240 image, some turned.
FACE_PLACES = [(150, 120, 0.25, 0), (160, 110, 0.3, 17), (20, 30, 0.3, -25), (290, 230, 0.4, 40)]


def assert_close_to_opencv(ours: np.ndarray, opencv: np.ndarray) -> None:
    # OpenCV rounds sample positions to 1/32 pixel; grid_sample does not (module notes).
    difference = np.abs(ours - opencv) * 255
    assert difference.mean() < 0.5 and difference.max() < 2.0


def soften_one(hard: np.ndarray) -> np.ndarray:
    """`paste.soften_masks` on one 2-D mask, as numpy."""
    return paste.soften_masks(torch.from_numpy(np.asarray(hard, np.float32))[None])[0].numpy()
