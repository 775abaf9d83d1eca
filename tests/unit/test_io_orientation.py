"""EXIF Orientation: sideways photos are read upright, and the output's EXIF says so."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageOps

from facefix_cli.io.orientation import orientation, turn_upright, upright
from facefix_cli.io.read import read_image
from facefix_cli.metadata import chunks_from_bytes


def exif_with(value: int, order: str = "<") -> bytes:
    """A TIFF structure (as PNG's eXIf holds it) with Orientation and one other tag."""
    exif = Image.Exif()
    exif[0x0112] = value
    exif[0x0131] = "facefix test"  # Software: must survive byte for byte
    data = exif.tobytes()
    tiff = data[6:] if data.startswith(b"Exif\x00\x00") else data
    if order == ">":  # the same structure, big-endian, as some cameras write it
        image = Image.new("RGB", (1, 1))
        buffer = io.BytesIO()
        image.save(buffer, "TIFF", tiffinfo={0x0112: value}, byteorder=">")
        return buffer.getvalue()
    return tiff


def pattern(height: int = 5, width: int = 7) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 255, (height, width, 3), np.uint8)


@pytest.mark.parametrize("value", range(1, 9))
def test_every_orientation_turns_the_pixels_as_pillow_does(value):
    pixels = pattern()
    image = Image.fromarray(pixels)
    image.info["exif"] = b"Exif\x00\x00" + exif_with(value)
    expected = np.asarray(ImageOps.exif_transpose(image))
    assert np.array_equal(turn_upright(pixels, value), expected)
    assert np.array_equal(turn_upright(pixels[:, :, 0], value), expected[:, :, 0])  # alpha


@pytest.mark.parametrize("order", ["<", ">"])
def test_the_tag_is_read_and_set_upright_in_place(order):
    tiff = exif_with(6, order)
    assert orientation(tiff) == 6
    fixed = upright(tiff)
    assert orientation(fixed) == 1 and len(fixed) == len(tiff)
    assert sum(a != b for a, b in zip(fixed, tiff, strict=True)) == 1  # the value's low byte
    assert orientation(exif_with(1, order)) == 1
    for junk in (b"", b"II*\x00\xff\xff\xff\xff", b"MM\x00*\x00\x00\x00\x08\x00\x09", b"XX*\x00"):
        assert orientation(junk) == 1 and upright(junk) == junk


def test_a_sideways_png_is_read_upright_with_its_exif_saying_so(tmp_path):
    pixels = pattern(6, 10)
    path = tmp_path / "phone.png"
    Image.fromarray(pixels).save(path, exif=b"Exif\x00\x00" + exif_with(6))
    source = read_image(path, chunks_from_bytes)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(path)))
    assert source.size == (6, 10)  # width and height swapped
    assert np.array_equal(np.rint(source.rgb * 255).astype(np.uint8), expected)
    (exif,) = [c.data for c in source.chunks if c.type == b"eXIf"]
    assert orientation(exif) == 1 and exif == upright(exif_with(6))  # only the tag changed


def test_an_upright_image_is_left_as_it_is(tmp_path):
    pixels = pattern(6, 10)
    path = tmp_path / "still.png"
    Image.fromarray(pixels).save(path, exif=b"Exif\x00\x00" + exif_with(1))
    source = read_image(path, chunks_from_bytes)
    assert source.size == (10, 6)
    assert np.array_equal(np.rint(source.rgb * 255).astype(np.uint8), pixels)
