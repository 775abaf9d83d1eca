"""Align faces to the FFHQ template from their five landmarks (512 x 512, or the template
scaled to another restorer's crop size), and the affine warp that does it (and pastes them
back) on tensors, wherever they live.

`warp_affine` follows `cv2.warpAffine`'s conventions: the matrix maps source pixel
coordinates to destination ones, pixel centres sit at integer coordinates, sampling is
bilinear, and taps outside the source take a constant border value. It runs through
`torch.nn.functional.grid_sample` (align_corners=False, with the pixel-to-normalised
conversions built into the matrix), so it agrees with OpenCV within OpenCV's own rounding:
OpenCV quantises sample positions to 1/32 pixel (INTER_BITS = 5) and this does not, which
differs by at most a 1/64-pixel shift of the bilinear weights (tested: mean under 0.5/255 and
maximum under 2/255 on textured images).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F

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


def ffhq_template(size: int = FACE_SIZE) -> np.ndarray:
    """The five FFHQ landmarks for a size x size crop: the 512 template scaled (exactly the
    512 one at 512)."""
    if size == FACE_SIZE:
        return FFHQ_TEMPLATE_512
    return (FFHQ_TEMPLATE_512 * np.float32(size / FACE_SIZE)).astype(np.float32)


def alignment_matrix(landmarks: np.ndarray, size: int = FACE_SIZE) -> np.ndarray:
    """The 2 x 3 similarity transform taking image landmarks onto the template of a
    size x size crop."""
    matrix, _ = cv2.estimateAffinePartial2D(
        np.asarray(landmarks, np.float32), ffhq_template(size), method=cv2.LMEDS
    )
    if matrix is None:
        raise ValueError("landmarks are degenerate; no alignment exists")
    return matrix


def sampling_theta(
    matrix: np.ndarray, source_size: tuple[int, int], size: tuple[int, int]
) -> np.ndarray:
    """grid_sample's 2 x 3 theta (destination -> source, normalised, align_corners=False) for
    OpenCV's `matrix` (source pixels -> destination pixels). Sizes are (width, height)."""
    src_w, src_h = source_size
    dst_w, dst_h = size
    forward = np.vstack([np.asarray(matrix, np.float64), [0.0, 0.0, 1.0]])
    # Normalised destination -> destination pixel, then pixel -> source pixel (the inverse of
    # `matrix`), then source pixel -> normalised source. Pixel centres at integers.
    to_pixels = np.array(
        [[dst_w / 2, 0, (dst_w - 1) / 2], [0, dst_h / 2, (dst_h - 1) / 2], [0, 0, 1]]
    )
    to_normalised = np.array(
        [[2 / src_w, 0, 1 / src_w - 1], [0, 2 / src_h, 1 / src_h - 1], [0, 0, 1]]
    )
    return (to_normalised @ np.linalg.inv(forward) @ to_pixels)[:2]


@torch.inference_mode()
def warp_affine(
    images: torch.Tensor,
    matrices: Sequence[np.ndarray],
    size: tuple[int, int],
    border: float | Sequence[float] = 0.0,
) -> torch.Tensor:
    """`cv2.warpAffine(image, matrix, size, INTER_LINEAR, BORDER_CONSTANT, border)` for each
    of N images (N x C x H x W) and its matrix; size is (width, height)."""
    count, channels, height, width = images.shape
    theta = torch.from_numpy(
        np.stack([sampling_theta(m, (width, height), size) for m in matrices]).astype(np.float32)
    ).to(images.device)
    grid = F.affine_grid(theta, [count, channels, size[1], size[0]], align_corners=False)
    fill = torch.as_tensor(border, dtype=images.dtype, device=images.device).reshape(1, -1, 1, 1)
    if not bool((fill == 0).all()):
        # grid_sample pads with zeros: shift the image so that zero is the border value.
        return F.grid_sample(images - fill, grid, align_corners=False) + fill
    return F.grid_sample(images, grid, align_corners=False)


@torch.inference_mode()
def warp_faces(
    image: torch.Tensor, matrices: Sequence[np.ndarray], size: int = FACE_SIZE
) -> torch.Tensor:
    """The aligned size x size crops (F x 3 x size x size) of one 3 x H x W image."""
    if not matrices:
        return image.new_zeros((0, 3, size, size))
    fill = torch.tensor(BORDER_RGB, dtype=image.dtype, device=image.device).view(1, 3, 1, 1)
    shifted = image[None] - fill  # once per image, not once per face
    crops = [warp_affine(shifted, [matrix], (size, size)) for matrix in matrices]
    return torch.cat(crops) + fill


def warp_face(rgb: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """The aligned crop of a float H x W x 3 image on the host (for tools and tests)."""
    image = torch.from_numpy(np.ascontiguousarray(rgb, np.float32)).permute(2, 0, 1)
    return warp_faces(image, [matrix])[0].permute(1, 2, 0).contiguous().numpy()
