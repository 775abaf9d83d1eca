"""ops.upscale without a network: the PIL-compatible bicubic resize, the tile choice, alpha."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from ops_support import as_batch, as_image
from PIL import Image

from facefix_cli.io.write import quantize
from facefix_cli.ops import upscale


@pytest.mark.parametrize(("width", "height"), [(82, 74), (164, 148), (20, 18), (60, 37)])
def test_bicubic_resize_matches_pils_within_one_level(width, height):
    # InvokeAI blends with PIL's Image.resize(BICUBIC): a = -0.5 and the intermediate clipped
    # after the horizontal pass. Noise is the hard case (bicubic overshoots at every pixel).
    rng = np.random.default_rng(5)
    image8 = (rng.random((37, 41, 3)) * 256).astype(np.uint8)
    expected = np.asarray(Image.fromarray(image8).resize((width, height), Image.BICUBIC))
    resized = upscale.resize_bicubic(as_batch(image8.astype(np.float32) / 255), height, width)
    ours = quantize(as_image(resized[0]), 8)
    assert np.abs(ours.astype(int) - expected.astype(int)).max() <= 1
    # OpenCV's bicubic (a = -0.75), what facefix used before, is far from PIL's here.
    opencv = cv2.resize(image8, (width, height), interpolation=cv2.INTER_CUBIC)
    assert np.abs(opencv.astype(int) - expected.astype(int)).max() > 1


def test_tile_choice_from_image_size_and_memory():
    gib = 2**30
    # Small images fit whole; a 4096 px input does not, and gets tiles that fit the budget.
    assert upscale.choose_tile(512, 512, scale=2, batch=1, budget_bytes=2 * gib) == 0
    for scale in (2, 4):
        tile = upscale.choose_tile(4096, 4096, scale=scale, batch=1, budget_bytes=2 * gib)
        assert tile % upscale.TILE_MULTIPLE == 0 and upscale.MIN_TILE <= tile < 4096
        padded = (tile + 2 * upscale.TILE_PAD) ** 2
        assert padded * upscale.bytes_per_pixel(scale) <= 2 * gib
        bigger = (tile + upscale.TILE_MULTIPLE + 2 * upscale.TILE_PAD) ** 2
        assert bigger * upscale.bytes_per_pixel(scale) > 2 * gib  # the largest that fits
    # Batches share the budget; fp16 halves the need; a tiny budget still gets MIN_TILE.
    one = upscale.choose_tile(2048, 2048, scale=4, batch=1, budget_bytes=gib)
    assert upscale.choose_tile(2048, 2048, scale=4, batch=4, budget_bytes=gib) < one
    assert upscale.choose_tile(2048, 2048, scale=4, batch=1, budget_bytes=gib, element_size=2) > one
    assert upscale.choose_tile(2048, 2048, scale=4, batch=1, budget_bytes=1) == upscale.MIN_TILE
    assert upscale.smaller_tiles(0, 300, 200) == [150, 75]
    assert upscale.smaller_tiles(512, 4096, 4096) == [256, 128, 64]


def test_upscale_alpha_is_a_plain_resize():
    alpha = np.zeros((10, 10, 1), np.float32)
    alpha[3:7, 3:7] = 1.0
    out = upscale.upscale_alpha(as_batch(alpha), 20, 20)
    assert out.shape == (1, 1, 20, 20) and out.min() >= 0.0 and out.max() <= 1.0
    assert float(out[0, 0, 10, 10]) == pytest.approx(1.0) and float(out[0, 0, 0, 0]) == 0.0
