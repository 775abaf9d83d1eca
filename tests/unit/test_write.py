"""io/write.py: quantize's rounding in bands, and the encoder's PNG rebuilt around the metadata
chunks without copying its image data more than once (the bytes as they always were)."""

from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np
import pytest

from facefix_cli.io import write
from facefix_cli.io.formats import PNG_SIGNATURE
from facefix_cli.io.pngchunks import Chunk, PngFormatError, parse_chunks, with_chunks


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
