"""ops.paste: paste-back against OpenCV's, only under the mask, in the faces' window; the mask's blur; the blend."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from conftest import gradient_image
from ops_support import (
    FACE_PLACES,
    as_image,
    assert_close_to_opencv,
    face_at,
    rotated_face,
    soften_one,
)

from facefix_cli.ops import align, paste


def opencv_paste(image: np.ndarray, face: np.ndarray, mask: np.ndarray, matrix: np.ndarray):
    """facefix's paste-back before it moved to tensors, with cv2.warpAffine."""
    height, width = image.shape[:2]
    x0, y0, x1, y1 = paste.inverse_region(matrix, width, height)
    inverse = cv2.invertAffineTransform(matrix)
    inverse[:, 2] -= (x0, y0)
    size = (x1 - x0, y1 - y0)
    warped_face = cv2.warpAffine(face, inverse, size, flags=cv2.INTER_LINEAR, borderValue=0)
    warped_mask = cv2.warpAffine(mask, inverse, size, flags=cv2.INTER_LINEAR, borderValue=0)
    area = image[y0:y1, x0:x1]
    inside = warped_mask > 0
    area[inside] = (area + warped_mask[:, :, None] * (warped_face - area))[inside]


@pytest.mark.parametrize("place", FACE_PLACES)
def test_paste_back_agrees_with_opencv_and_keeps_unmasked_pixels(place):
    image = gradient_image(300, 240, seed=3)
    matrix = rotated_face(*place)
    face = gradient_image(512, 512, seed=4)
    mask = soften_one(np.pad(np.ones((312, 312), np.float32), 100))
    expected = image.copy()
    opencv_paste(expected, face, mask, matrix)
    pasted = torch.from_numpy(image).permute(2, 0, 1).contiguous()
    paste.paste_faces(
        pasted,
        torch.from_numpy(face).permute(2, 0, 1)[None],
        torch.from_numpy(mask)[None],
        [matrix],
    )
    ours = as_image(pasted)
    x0, y0, x1, y1 = paste.inverse_region(matrix, 300, 240)
    assert_close_to_opencv(ours[y0:y1, x0:x1], expected[y0:y1, x0:x1])
    # Exactly unchanged where the warped mask is 0: outside the region, and inside it.
    weight = align.warp_affine(
        torch.from_numpy(mask)[None, None], [cv2.invertAffineTransform(matrix)], (300, 240)
    )[0, 0].numpy()
    outside = weight == 0
    np.testing.assert_array_equal(ours[outside], image[outside])
    assert 0.2 * outside.size < outside.sum() < outside.size  # the face is pasted, not all over
    assert np.abs(ours - image).max() > 0.1


def test_pasting_into_the_faces_window_equals_pasting_into_the_whole_image():
    # Two overlapping faces, one over the image's corner: the window is their regions' union.
    image = torch.from_numpy(gradient_image(300, 240, seed=5)).permute(2, 0, 1).contiguous()
    matrices = [rotated_face(*FACE_PLACES[1]), rotated_face(*FACE_PLACES[3])]
    faces = torch.from_numpy(np.stack([gradient_image(512, 512, seed=s) for s in (6, 7)]))
    faces = faces.permute(0, 3, 1, 2).contiguous()
    mask = torch.from_numpy(soften_one(np.pad(np.ones((312, 312), np.float32), 100)))
    masks = torch.stack([mask, mask])
    whole = image.clone()
    paste.paste_faces(whole, faces, masks, matrices)
    boxes = [paste.inverse_region(m, 300, 240) for m in matrices]
    x0, y0 = min(b[0] for b in boxes), min(b[1] for b in boxes)
    x1, y1 = max(b[2] for b in boxes), max(b[3] for b in boxes)
    assert (x0, y0) != (0, 0) and (x1, y1) == (300, 240)  # a window, not the whole image
    window = image[:, y0:y1, x0:x1].clone()
    paste.paste_faces(window, faces, masks, matrices, (x0, y0, 300, 240))
    assert torch.equal(window, whole[:, y0:y1, x0:x1])
    outside = torch.ones(240, 300, dtype=torch.bool)
    outside[y0:y1, x0:x1] = False
    assert torch.equal(whole[:, outside], image[:, outside])


def test_paste_touches_only_pixels_under_the_mask():
    image = gradient_image(200, 160)
    matrix = align.alignment_matrix(face_at(100, 80, 0.2).landmarks)
    mask = soften_one(np.pad(np.ones((312, 312)), 100))
    pasted = torch.from_numpy(image).permute(2, 0, 1).contiguous()
    paste.paste_faces(pasted, torch.ones((1, 3, 512, 512)), torch.from_numpy(mask)[None], [matrix])
    result = as_image(pasted)
    warped = cv2.warpAffine(mask, cv2.invertAffineTransform(matrix), (200, 160))
    # Far from the mask's edge both warps agree on where it is 0.
    outside = cv2.dilate((warped > 0).astype(np.uint8), np.ones((3, 3))) == 0
    np.testing.assert_array_equal(result[outside], image[outside])
    assert outside.sum() > 0.5 * outside.size
    # Near the face centre the mask is ~1: the pasted (white) face shows.
    assert result[80, 100].min() > 0.95
    x0, y0, x1, y1 = paste.inverse_region(matrix, 200, 160)
    assert 0 <= x0 < 100 < x1 <= 200 and 0 <= y0 < 80 < y1 <= 160


def test_mask_blur_matches_opencvs_gaussian():
    rng = np.random.default_rng(2)
    hard = (rng.random((512, 512)) > 0.6).astype(np.float32)
    expected = hard
    for _ in range(2):
        expected = cv2.GaussianBlur(expected, paste.MASK_BLUR_KERNEL, paste.MASK_BLUR_SIGMA)
    border = paste.MASK_BORDER
    inner = (slice(border, -border), slice(border, -border))
    softened = soften_one(hard)
    np.testing.assert_allclose(softened[inner], expected[inner], atol=1e-5)
    assert not softened[:border].any() and not softened[:, -border:].any()


def test_blend_restored_is_exact_at_the_ends_and_linear_between():
    base = torch.from_numpy(gradient_image(10, 10, seed=1))
    restored = base.clone()
    restored[2:5, 2:5] = 1.0
    torch.testing.assert_close(paste.blend_restored(base, restored, 1.0), restored, rtol=0, atol=0)
    half = paste.blend_restored(base, restored, 0.5)
    torch.testing.assert_close(half, 0.5 * base + 0.5 * restored, rtol=0, atol=1e-7)
    untouched = torch.ones((10, 10), dtype=torch.bool)
    untouched[2:5, 2:5] = False
    assert torch.equal(half[untouched], base[untouched])
