"""--png-level: every level writes the same pixels and metadata; only size and speed differ."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facefix_cli.errors import SetupError
from facefix_cli.io.defaults import DEFAULT_PNG_LEVEL
from facefix_cli.io.pngchunks import Chunk, parse_chunks
from facefix_cli.io.write import encode_png
from facefix_cli.pipeline import RunSettings


def smooth_image(size: int = 96) -> np.ndarray:
    """Gradients plus mild noise: compressible like a render, so levels differ in size."""
    y, x = np.mgrid[0:size, 0:size] / size
    noise = np.random.default_rng(3).normal(0, 0.01, (size, size, 3))
    return np.clip(np.dstack([x, y, (x + y) / 2]) + noise, 0, 1)


@pytest.mark.parametrize("bit_depth", [8, 16])
def test_every_level_is_lossless_and_keeps_the_chunks(bit_depth):
    rgb, alpha = smooth_image(), smooth_image()[:, :, 0]
    chunks = [Chunk(b"tEXt", b"parameters\x00a cat, Steps: 20")]
    encoded = {level: encode_png(rgb, alpha, bit_depth, chunks, level) for level in (0, 1, 6, 9)}
    pixels = {level: np.asarray(Image.open(io.BytesIO(data))) for level, data in encoded.items()}
    for level in (1, 6, 9):
        assert np.array_equal(pixels[level], pixels[0])
        texts = [c for c in parse_chunks(encoded[level]) if c.type == b"tEXt"]
        assert texts == chunks
    sizes = {level: len(data) for level, data in encoded.items()}
    assert sizes[0] > sizes[1] >= sizes[6] >= sizes[9]


def test_the_level_is_checked_and_defaults_to_fast():
    assert RunSettings(weights_dir=Path(".")).png_level == DEFAULT_PNG_LEVEL == 1
    RunSettings(weights_dir=Path("."), png_level=9).validate()
    with pytest.raises(SetupError, match="--png-level must be 0 to 9"):
        RunSettings(weights_dir=Path("."), png_level=10).validate()
