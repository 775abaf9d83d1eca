"""Paste restored faces back into the image through the inverse alignment, under a soft
face-parsing mask, and blend the result by the restore strength.

Tensors in, tensors out, on whatever device they live (the warp is `align.warp_affine`, which
agrees with OpenCV's). Guarantees: pixels where a warped mask is 0 are exactly unchanged, and
the strength blend is exact at both ends and where restored and upscaled agree.

Crops of another size than 512 (restorers trained at 256, 1024, 2048) are parsed on a 512 copy,
since ParseNet is a 512 network, and their masks resized back to the crop."""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from facefix_cli.ops.align import FACE_SIZE, warp_affine
from facefix_cli.ops.restore import FACE_BATCH

# ParseNet's 19 classes: which ones belong to the pasted face (skin, brows, eyes, ears, nose,
# mouth, lips, neck...) and which do not (background, necklace, cloth, hair, hat), as in
# facexlib's paste-back.
FACE_CLASSES = np.array([0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 0, 0, 0], dtype=np.float32)
MASK_BLUR_KERNEL = (101, 101)
MASK_BLUR_SIGMA = 11
MASK_BORDER = 10  # the aligned crop's edge is never pasted, so no square seams show


@torch.inference_mode()
def face_masks(
    parser: torch.nn.Module, faces: torch.Tensor, batch: int = FACE_BATCH
) -> torch.Tensor:
    """Soft F x S x S masks in [0, 1] of the face area of aligned faces (F x 3 x S x S in
    [0, 1], on the parser's device; S = 512 unless a restorer works at another size), parsed
    `batch` faces at a time."""
    size = faces.shape[-1]
    if size != FACE_SIZE:
        faces = F.interpolate(
            faces, size=(FACE_SIZE, FACE_SIZE), mode="bilinear", align_corners=False, antialias=True
        )
    face_classes = torch.from_numpy(FACE_CLASSES).to(faces.device)
    masks = [
        soften_masks(face_classes[parser(chunk * 2.0 - 1.0)[0].argmax(dim=1)])
        for chunk in faces.split(batch)
    ]
    if not masks:
        return faces.new_zeros((0, size, size))
    joined = torch.cat(masks)
    if size != FACE_SIZE:
        joined = F.interpolate(
            joined[:, None], size=(size, size), mode="bilinear", align_corners=False
        )[:, 0].clamp(0.0, 1.0)
    return joined


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


def inverse_region(
    matrix: np.ndarray, width: int, height: int, size: int = FACE_SIZE
) -> tuple[int, int, int, int] | None:
    """The image rectangle (x0, y0, x1, y1) the aligned size x size crop maps back onto,
    clipped; None if it lies outside the image. Warping only this region keeps paste-back
    cheap on big images."""
    inverse = cv2.invertAffineTransform(matrix)
    corners = np.array([[0, 0, 1], [size, 0, 1], [0, size, 1], [size, size, 1]])
    points = corners @ inverse.T
    x0 = max(math.floor(points[:, 0].min()) - 1, 0)
    y0 = max(math.floor(points[:, 1].min()) - 1, 0)
    x1 = min(math.ceil(points[:, 0].max()) + 2, width)
    y1 = min(math.ceil(points[:, 1].max()) + 2, height)
    if x1 <= x0 or y1 <= y0:
        return None
    return x0, y0, x1, y1


@torch.inference_mode()
def paste_faces(
    image: torch.Tensor,
    faces: torch.Tensor,
    masks: torch.Tensor,
    matrices: list[np.ndarray],
    window: tuple[int, int, int, int] | None = None,
) -> None:
    """Blend each aligned face (F x 3 x S x S) into `image` (3 x H x W) in place, through
    the inverse of its alignment `matrix`, weighted by its mask (F x S x S); in order, so
    a later face lies over an earlier one where they overlap.

    `window` (x0, y0, full width, full height): `image` is only the part of a larger image
    from (x0, y0) on, holding every face's `inverse_region` (the matrices stay in the full
    image's pixels); the result is the same as pasting into the whole image.

    Pixels where the warped mask is 0 are left exactly as they were.
    """
    left, top, width, height = window or (0, 0, image.shape[2], image.shape[1])
    for face, mask, matrix in zip(faces, masks, matrices, strict=True):
        region = inverse_region(matrix, width, height, face.shape[-1])
        if region is None:
            continue
        x0, y0, x1, y1 = region
        inverse = cv2.invertAffineTransform(matrix)
        inverse[:, 2] -= (x0, y0)  # warp straight into the region's own coordinates
        # Face and mask in one warp: one grid, one sampling pass.
        planes = torch.cat([face, mask[None]])[None]
        warped = warp_affine(planes, [inverse], (x1 - x0, y1 - y0))[0]
        warped_face, weight = warped[:3], warped[3:]
        area = image[:, y0 - top : y1 - top, x0 - left : x1 - left]
        area.copy_(torch.where(weight > 0, area + weight * (warped_face - area), area))


def blend_restored(upscaled: torch.Tensor, restored: torch.Tensor, strength: float) -> torch.Tensor:
    """strength * restored + (1 - strength) * upscaled; where they agree, upscaled exactly."""
    if strength >= 1.0:
        return restored
    return torch.where(restored == upscaled, upscaled, upscaled + strength * (restored - upscaled))
