"""Align a face to the 512 x 512 FFHQ template from its five landmarks."""

from __future__ import annotations

import cv2
import numpy as np

FACE_SIZE = 512
# Where FFHQ (and so GFPGAN and CodeFormer) expect the eyes, nose tip and mouth corners.
FFHQ_TEMPLATE_512 = np.array(
    [
        [192.98138, 239.94708],
        [318.90277, 240.19360],
        [256.63416, 314.01935],
        [201.26117, 371.41043],
        [313.08905, 371.15118],
    ],
    dtype=np.float32,
)
# Grey the models saw outside the photo during training (RGB of facexlib's BGR 135,133,132).
BORDER_RGB = (132 / 255, 133 / 255, 135 / 255)


def alignment_matrix(landmarks: np.ndarray) -> np.ndarray:
    """The 2 x 3 similarity transform taking image landmarks onto the template."""
    matrix, _ = cv2.estimateAffinePartial2D(
        np.asarray(landmarks, np.float32), FFHQ_TEMPLATE_512, method=cv2.LMEDS
    )
    if matrix is None:
        raise ValueError("landmarks are degenerate; no alignment exists")
    return matrix


def warp_face(rgb: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """The aligned FACE_SIZE x FACE_SIZE crop of a float RGB image."""
    return cv2.warpAffine(
        rgb, matrix, (FACE_SIZE, FACE_SIZE), borderMode=cv2.BORDER_CONSTANT, borderValue=BORDER_RGB
    )
