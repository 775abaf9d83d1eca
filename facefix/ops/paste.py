"""Paste restored faces back into the image through the inverse alignment, under a soft
face-parsing mask, and blend the result by the restore strength."""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from facefix.ops.align import FACE_SIZE

# ParseNet's 19 classes: which ones belong to the pasted face (skin, brows, eyes, ears, nose,
# mouth, lips, neck...) and which do not (background, necklace, cloth, hair, hat), as in
# facexlib's paste-back.
FACE_CLASSES = np.array([0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 0, 0, 0], dtype=np.float32)
MASK_BLUR_KERNEL = (101, 101)
MASK_BLUR_SIGMA = 11
MASK_BORDER = 10  # the aligned crop's edge is never pasted, so no square seams show


PARSE_BATCH = 4  # faces per ParseNet pass, bounded like the restorer's batches


@torch.inference_mode()
def face_masks(
    parser: torch.nn.Module, faces: list[np.ndarray], device: torch.device
) -> list[np.ndarray]:
    """Soft FACE_SIZE x FACE_SIZE masks in [0, 1] of the face area of aligned faces."""
    face_classes = torch.from_numpy(FACE_CLASSES).to(device)
    masks: list[np.ndarray] = []
    for start in range(0, len(faces), PARSE_BATCH):
        batch = np.stack(faces[start : start + PARSE_BATCH]).transpose(0, 3, 1, 2)
        tensor = torch.from_numpy(np.ascontiguousarray(batch)).to(device)
        classes = parser(tensor * 2.0 - 1.0)[0].argmax(dim=1)
        masks.extend(soften_masks(face_classes[classes]).cpu().numpy())
    return masks


def face_mask(parser: torch.nn.Module, face: np.ndarray, device: torch.device) -> np.ndarray:
    return face_masks(parser, [face], device)[0]


def soften_masks(hard: torch.Tensor) -> torch.Tensor:
    """Blur N x H x W hard masks twice with facexlib's Gaussian (101 px, sigma 11) and clear
    the border. Runs where the masks are: on a GPU this was the costliest CPU step per face."""
    taps = cv2.getGaussianKernel(MASK_BLUR_KERNEL[0], MASK_BLUR_SIGMA)[:, 0].astype(np.float32)
    kernel = torch.from_numpy(taps).to(hard.device)
    radius = len(taps) // 2
    masks = hard.float()[:, None]
    for _ in range(2):
        # torch's "reflect" padding is OpenCV's default border (BORDER_REFLECT_101).
        masks = F.conv2d(
            F.pad(masks, (radius, radius, 0, 0), mode="reflect"), kernel.view(1, 1, 1, -1)
        )
        masks = F.conv2d(
            F.pad(masks, (0, 0, radius, radius), mode="reflect"), kernel.view(1, 1, -1, 1)
        )
    masks = masks[:, 0]
    masks[:, :MASK_BORDER, :] = 0
    masks[:, -MASK_BORDER:, :] = 0
    masks[:, :, :MASK_BORDER] = 0
    masks[:, :, -MASK_BORDER:] = 0
    return masks


def soften_mask(hard: np.ndarray) -> np.ndarray:
    return soften_masks(torch.from_numpy(np.asarray(hard, np.float32))[None])[0].numpy()


def inverse_region(matrix: np.ndarray, width: int, height: int) -> tuple[int, int, int, int] | None:
    """The image rectangle (x0, y0, x1, y1) the aligned crop maps back onto, clipped; None if
    it lies outside the image. Warping only this region keeps paste-back cheap on big images."""
    inverse = cv2.invertAffineTransform(matrix)
    corners = np.array([[0, 0, 1], [FACE_SIZE, 0, 1], [0, FACE_SIZE, 1], [FACE_SIZE, FACE_SIZE, 1]])
    points = corners @ inverse.T
    x0 = max(math.floor(points[:, 0].min()) - 1, 0)
    y0 = max(math.floor(points[:, 1].min()) - 1, 0)
    x1 = min(math.ceil(points[:, 0].max()) + 2, width)
    y1 = min(math.ceil(points[:, 1].max()) + 2, height)
    if x1 <= x0 or y1 <= y0:
        return None
    return x0, y0, x1, y1


def paste_face(image: np.ndarray, face: np.ndarray, mask: np.ndarray, matrix: np.ndarray) -> None:
    """Blend `face` (aligned by `matrix`) into `image` in place, weighted by `mask`.

    Pixels where the warped mask is 0 are left exactly as they were.
    """
    height, width = image.shape[:2]
    region = inverse_region(matrix, width, height)
    if region is None:
        return
    x0, y0, x1, y1 = region
    inverse = cv2.invertAffineTransform(matrix)
    inverse[:, 2] -= (x0, y0)  # warp straight into the region's own coordinates
    size = (x1 - x0, y1 - y0)
    warped_face = cv2.warpAffine(face, inverse, size, flags=cv2.INTER_LINEAR, borderValue=0)
    warped_mask = cv2.warpAffine(mask, inverse, size, flags=cv2.INTER_LINEAR, borderValue=0)
    area = image[y0:y1, x0:x1]
    weight = warped_mask[:, :, None]
    inside = warped_mask > 0
    area[inside] = (area + weight * (warped_face - area))[inside]


def blend_restored(upscaled: np.ndarray, restored: np.ndarray, strength: float) -> np.ndarray:
    """strength * restored + (1 - strength) * upscaled; where they agree, upscaled exactly."""
    if strength >= 1.0:
        return restored
    return np.where(restored == upscaled, upscaled, upscaled + strength * (restored - upscaled))
