"""report.thumbnails: sizes within the side and byte limits, alpha, 16-bit and palette inputs,
face crops and their boxes."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from facefix_cli.report import thumbnails


def noise(width: int, height: int, mode: str = "RGB") -> Image.Image:
    channels = len(mode)
    pixels = np.random.default_rng(0).integers(0, 256, (height, width, channels), np.uint8)
    return Image.fromarray(pixels, mode)


@pytest.mark.parametrize("size", [(2400, 1600), (700, 3000), (64, 48)])
def test_compare_thumbnails_fit_the_side_and_byte_limits_even_for_noise(size):
    image = noise(*size)
    thumb = thumbnails.resized(image, thumbnails.fit_within(size, thumbnails.COMPARE_SIDE))
    data = thumbnails.encode(thumb)
    decoded = Image.open(io.BytesIO(data))
    assert max(decoded.size) == min(max(size), thumbnails.COMPARE_SIDE)
    assert len(data) <= thumbnails.MAX_BYTES
    assert decoded.format == thumbnails.FORMAT.upper()


def test_an_image_over_the_byte_budget_is_made_smaller_until_it_fits():
    data = thumbnails.encode(noise(640, 640), max_bytes=20_000)
    assert len(data) <= 20_000
    assert max(Image.open(io.BytesIO(data)).size) < 640  # quality alone could not get there


def test_alpha_is_kept_in_webp_thumbnails():
    image = noise(32, 24, "RGBA")
    decoded = Image.open(io.BytesIO(thumbnails.encode(image)))
    assert decoded.mode == ("RGBA" if thumbnails.FORMAT == "webp" else "RGB")


def test_sixteen_bit_and_palette_pngs_load_as_8_bit_rgb():
    buffer = io.BytesIO()
    Image.fromarray(np.full((4, 6), 65535, np.uint16)).save(buffer, "PNG")
    grey = thumbnails.load(buffer.getvalue())
    assert grey.mode == "RGB" and grey.getpixel((0, 0)) == (255, 255, 255)
    buffer = io.BytesIO()
    noise(6, 4).convert("P").save(buffer, "PNG")
    assert thumbnails.load(buffer.getvalue()).mode == "RGB"


def test_face_crops_grow_by_the_margin_clip_to_the_image_and_map_to_the_original():
    assert thumbnails.face_box((10, 20, 30, 60), (100, 100)) == (5.0, 10.0, 35.0, 70.0)
    assert thumbnails.face_box((0, 0, 40, 40), (30, 30)) == (0.0, 0.0, 30.0, 30.0)
    with pytest.raises(ValueError):
        thumbnails.face_box((200, 200, 220, 220), (100, 100))
    assert thumbnails.scale_box((10, 20, 30, 60), (200, 100), (100, 50)) == (5, 10, 15, 30)
    assert thumbnails.fit((30, 60), thumbnails.FACE_SIDE) == (96, 192)  # small faces grow
