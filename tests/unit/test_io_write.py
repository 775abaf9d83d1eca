"""io.write: quantize's rounding in bands, the encoder's PNG rebuilt around the metadata chunks
without copying its image data more than once (the bytes as they always were), --png-level,
and its faults (a read-only folder, a name too long)."""

from __future__ import annotations

import errno
import io
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from facefix_cli.errors import (
    OutputWriteError,
    SetupError,
)
from facefix_cli.io import safefs, write
from facefix_cli.io.defaults import DEFAULT_PNG_LEVEL
from facefix_cli.io.formats import PNG_SIGNATURE
from facefix_cli.io.pngchunks import Chunk, PngFormatError, parse_chunks, with_chunks
from facefix_cli.io.write import encode_png, write_atomic
from facefix_cli.pipeline import RunSettings


def whole_image_quantize(pixels: np.ndarray, bit_depth: int) -> np.ndarray:
    """The formula, on the whole image at once."""
    maximum = 65535 if bit_depth == 16 else 255
    dtype = np.uint16 if bit_depth == 16 else np.uint8
    return np.clip(np.rint(pixels * maximum), 0, maximum).astype(dtype)


@pytest.mark.parametrize("bit_depth", [8, 16])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_quantize_in_bands_equals_the_whole_image_formula(monkeypatch, bit_depth, dtype):
    monkeypatch.setattr(write, "QUANTIZE_BAND", 7 * 3 * 5)  # 5 rows a band, the last one short
    rng = np.random.default_rng(bit_depth)
    pixels = rng.uniform(-0.2, 1.2, (23, 7, 3)).astype(dtype)  # out of range: clipped
    maximum = 65535 if bit_depth == 16 else 255
    pixels[0, :, 0] = (np.arange(7) + 0.5) / maximum  # exact halves: rint rounds to even
    for view in (pixels, pixels[:, :, ::-1], pixels[:, :, 0]):  # BGR view, a plane
        result = write.quantize(view, bit_depth)
        expected = whole_image_quantize(view, bit_depth)
        assert result.dtype == expected.dtype and result.flags.c_contiguous
        np.testing.assert_array_equal(result, expected)


def encoded_png(with_text: bool = True) -> bytes:
    image = np.random.default_rng(1).integers(0, 256, (40, 30, 3), dtype=np.uint8)
    ok, data = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    assert ok
    png = data.tobytes()
    if with_text:  # an encoder's own ancillary chunk, which the output must not carry
        chunks = parse_chunks(png)
        ancillary = Chunk(b"tEXt", b"Software\x00encoder").to_bytes()
        rest = b"".join(c.to_bytes() for c in chunks[1:])
        png = PNG_SIGNATURE + chunks[0].to_bytes() + ancillary + rest
    return png


def test_with_chunks_puts_the_metadata_after_ihdr_and_keeps_the_image_bytes():
    png = encoded_png()
    extra = [
        Chunk(b"tEXt", b"parameters\x00a cat"),
        Chunk(b"iTXt", b"facefix\x00\x00\x00\x00\x00{}"),
    ]
    result = with_chunks(memoryview(png), extra)
    assert isinstance(result, bytes)
    chunks = parse_chunks(png)
    critical = [c for c in chunks if c.type in (b"IHDR", b"IDAT", b"IEND")]
    # What it always was: every chunk parsed, then serialised again in this order.
    expected = PNG_SIGNATURE + b"".join(c.to_bytes() for c in critical[:1] + extra + critical[1:])
    assert result == expected
    assert [c.type for c in parse_chunks(result)][:3] == [b"IHDR", b"tEXt", b"iTXt"]
    assert with_chunks(png, extra) == result  # bytes or a view of them


def test_with_chunks_refuses_a_damaged_encoding():
    png = bytearray(encoded_png(with_text=False))
    idat = png.index(b"IDAT")
    png[idat + 6] ^= 0xFF  # a data byte: the CRC no longer matches
    with pytest.raises(PngFormatError, match="CRC mismatch in chunk IDAT"):
        with_chunks(bytes(png), [])
    header = bytes(png[:8]) + struct.pack(">I", 13) + b"IHDR" + bytes(13)
    header += struct.pack(">I", zlib.crc32(b"IHDR" + bytes(13)))
    with pytest.raises(PngFormatError, match="truncated PNG"):
        with_chunks(header, [])


# -- --png-level: every level writes the same pixels and metadata; only size and speed differ.
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


# -- io.write's faults: a read-only folder, a name too long.
def test_a_read_only_folder_is_one_clean_error_with_its_errno(tmp_path, monkeypatch):
    def refuse(name, *args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(name))

    monkeypatch.setattr(safefs, "create_exclusive", refuse)
    with pytest.raises(OutputWriteError, match="Read-only file system") as caught:
        write_atomic(tmp_path / "o.fixed.png", b"data")
    assert caught.value.errno == errno.EROFS


def test_a_name_too_long_fails_that_write_only(tmp_path):
    with pytest.raises(OutputWriteError, match="File name too long") as caught:
        write_atomic(tmp_path / ("x" * 250 + ".fixed.png"), b"data")
    assert caught.value.errno == errno.ENAMETOOLONG
    assert list(tmp_path.iterdir()) == []
