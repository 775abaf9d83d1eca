"""io.header and io.read against hostile files: sizes declared in headers, animations, decoder
limits and messages. The files are generated here."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from facefix_cli.errors import (
    ImageError,
)
from facefix_cli.io import read
from facefix_cli.io.discover import Job
from facefix_cli.io.header import animation_frames, image_dimensions
from facefix_cli.metadata import chunks_from_bytes
from facefix_cli.pipeline.file import read_job
from facefix_cli.pipeline.results import FileResult
from facefix_cli.pipeline.settings import RunSettings


def png_header_only(width: int, height: int, bit_depth: int = 1, colour: int = 0) -> bytes:
    """A valid PNG whose IHDR claims width x height, with one tiny IDAT: decoding would need
    width * height pixels of memory."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")
        )

    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def encoded(fmt: str, size: tuple[int, int], **params) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (10, 20, 30)).save(buffer, fmt, **params)
    return buffer.getvalue()


# --- header limits ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "params"),
    [
        ("PNG", {}),
        ("JPEG", {}),
        ("JPEG", {"progressive": True}),
        ("WEBP", {"lossless": True}),  # VP8L
        ("WEBP", {"quality": 80}),  # VP8
        ("WEBP", {"quality": 80, "exif": b"Exif\x00\x00II*\x00"}),  # VP8X
    ],
)
def test_header_dimensions_of_real_files(fmt, params):
    assert image_dimensions(encoded(fmt, (37, 23), **params)) == (37, 23)


def test_header_dimensions_of_junk_is_none():
    for junk in (b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xda" + bytes(10), b"RIFF....WEBPVP8 "):
        assert image_dimensions(junk) is None


def animation(fmt: str, frames: int, **params) -> bytes:
    images = [Image.new("RGB", (12, 10), (40 * i, 20, 30)) for i in range(frames)]
    buffer = io.BytesIO()
    images[0].save(buffer, fmt, save_all=True, append_images=images[1:], duration=80, **params)
    return buffer.getvalue()


@pytest.mark.parametrize(("fmt", "params"), [("PNG", {}), ("WEBP", {"lossless": True})])
def test_animations_are_told_from_stills_by_their_header(fmt, params):
    assert animation_frames(animation(fmt, 3, **params)) == 3
    assert animation_frames(animation(fmt, 1, **params)) is None  # one frame is a still
    assert animation_frames(encoded(fmt, (12, 10), **params)) is None
    assert animation_frames(encoded("JPEG", (12, 10))) is None
    for junk in (b"", b"\x89PNG\r\n\x1a\n" + b"\xff" * 12, b"RIFF\x00\x00\x00\x00WEBPVP8X"):
        assert animation_frames(junk) is None


def test_an_animation_is_skipped_with_its_reason_and_no_output(tmp_path):
    (tmp_path / "loop.png").write_bytes(animation("PNG", 4))
    job = Job(tmp_path / "loop.png", tmp_path / "loop.fixed.png")
    result = read_job(job, RunSettings(weights_dir=tmp_path))
    assert isinstance(result, FileResult) and result.status == "skipped"
    assert result.reason == "animated image (4 frames); facefix fixes still images"
    assert list(tmp_path.iterdir()) == [tmp_path / "loop.png"]  # no output, no claim left


def test_a_one_bit_30000_square_png_is_refused_before_decoding(tmp_path, monkeypatch):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_header_only(30000, 30000, bit_depth=1))
    assert path.stat().st_size < 1000

    def never(*args):
        raise AssertionError("decoded a file over the limit")

    monkeypatch.setattr(read.cv2, "imdecode", never)
    with pytest.raises(ImageError, match="900 megapixels, over the --max-pixels limit of 100"):
        read.read_image(path, chunks_from_bytes)


def test_a_header_over_opencvs_own_limit_is_a_file_error_not_a_crash(tmp_path):
    path = tmp_path / "huge.png"
    path.write_bytes(png_header_only(100000, 100000))
    with pytest.raises(ImageError, match="cannot decode"):
        read.read_image(
            path, chunks_from_bytes, max_pixels=0
        )  # no limit of ours: OpenCV's cv2.error is caught


def test_libpng_messages_become_the_files_reason(tmp_path, capfd):
    good = encoded("PNG", (16, 16))
    start = good.index(b"IDAT")
    (length,) = struct.unpack(">I", good[start - 4 : start])
    damaged = bytearray(good)
    damaged[start + 4 + length - 2] ^= 0xFF  # inside the zlib checksum
    damaged[start + 4 + length : start + 8 + length] = zlib.crc32(
        bytes(damaged[start : start + 4 + length])
    ).to_bytes(4, "big")  # a valid chunk CRC: only the decoder notices
    path = tmp_path / "flipped.png"
    path.write_bytes(bytes(damaged))
    with pytest.raises(ImageError, match="libpng error: IDAT"):
        read.read_image(path, chunks_from_bytes)
    assert "libpng" not in capfd.readouterr().err
