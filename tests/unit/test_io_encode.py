"""The encoders: alpha kept where the format can, 16-bit to 8-bit, ICC/EXIF/XMP where each format
keeps them, WebP chunks that ComfyUI's reader can step over, JPEG's Extended XMP."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from PIL import Image, ImageCms

from facefix_cli.io.encode import (
    EXIF_HEADER,
    Embedded,
    EncodeOptions,
    OutputPixels,
    even_chunks_before_exif,
)
from facefix_cli.io.outputs import OutputFormat
from facefix_cli.metadata.containers.foreign import foreign_metadata

LOSSY = [OutputFormat.WEBP, OutputFormat.JPEG, OutputFormat.AVIF]
SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def pixels(alpha: bool = False, bit_depth: int = 8, size=(48, 40)) -> OutputPixels:
    rng = np.random.default_rng(1)
    height, width = size
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    rgb = np.dstack([x / width, y / height, (x + y) / (width + height)]).astype(np.float32)
    rgb += rng.normal(0, 0.01, rgb.shape).astype(np.float32)
    rgb = np.clip(rgb, 0, 1)
    a = np.clip(x / width, 0, 1).astype(np.float32) if alpha else None
    return OutputPixels(rgb, a, bit_depth)


def exif_tiff() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 1
    exif[0x010F] = 'workflow:{"a": 1}'
    return exif.tobytes().removeprefix(EXIF_HEADER)


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


@pytest.mark.parametrize("fmt", LOSSY)
def test_lossy_formats_round_trip_their_pixels_and_metadata(fmt):
    meta = Embedded(icc=SRGB, exif=exif_tiff(), xmp=b"<x:xmpmeta>facefix</x:xmpmeta>")
    data = fmt.encode(pixels(), meta, EncodeOptions())
    image = decode(data)
    assert image.format == {"webp": "WEBP", "jpeg": "JPEG", "avif": "AVIF"}[fmt.value]
    assert image.size == (40, 48) and image.mode == "RGB"  # (width, height)
    expected = np.rint(pixels().rgb * 255)
    assert np.abs(np.asarray(image, dtype=np.float64) - expected).mean() < 4
    found = foreign_metadata(data)
    assert found.icc == SRGB
    tags = Image.Exif()
    tags.load(found.exif)
    # Pillow's AVIF writer moves Orientation into the container's own boxes (irot/imir): a
    # tag left out means upright too
    assert tags.get(0x0112, 1) == 1
    assert tags[0x010F] == 'workflow:{"a": 1}'
    assert found.xmp is not None and b"facefix" in found.xmp


@pytest.mark.parametrize("fmt", [OutputFormat.WEBP, OutputFormat.AVIF])
def test_webp_and_avif_keep_alpha(fmt):
    source = pixels(alpha=True)
    image = decode(fmt.encode(source, Embedded(), EncodeOptions()))
    assert image.mode == "RGBA"
    alpha = np.asarray(image)[:, :, 3].astype(np.float64)
    assert np.abs(alpha - np.rint(source.alpha * 255)).max() <= 8


def test_jpeg_never_writes_alpha():
    image = decode(OutputFormat.JPEG.encode(pixels(alpha=True), Embedded(), EncodeOptions()))
    assert image.mode == "RGB"


@pytest.mark.parametrize("fmt", LOSSY)
def test_sixteen_bit_pixels_become_eight_bit(fmt):
    source = pixels(bit_depth=16)
    image = decode(fmt.encode(source, Embedded(), EncodeOptions()))
    assert image.mode == "RGB"  # 8 bits per sample


def test_quality_changes_the_size():
    small = OutputFormat.WEBP.encode(pixels(size=(96, 96)), Embedded(), EncodeOptions(quality=20))
    large = OutputFormat.WEBP.encode(pixels(size=(96, 96)), Embedded(), EncodeOptions(quality=98))
    assert len(small) < len(large)


def riff_chunks(webp: bytes) -> list[tuple[bytes, int]]:
    chunks, position = [], 12
    while position + 8 <= len(webp):
        (size,) = struct.unpack("<I", webp[position + 4 : position + 8])
        chunks.append((webp[position : position + 4], size))
        position += 8 + size + (size & 1)
    return chunks


def noisy(alpha: bool) -> OutputPixels:
    rng = np.random.default_rng(7)
    a = rng.random((64, 80), dtype=np.float32) if alpha else None
    return OutputPixels(rng.random((64, 80, 3), dtype=np.float32), a, 8)


@pytest.mark.parametrize("alpha", [False, True])
def test_webp_chunks_before_exif_have_even_lengths(alpha):
    """ComfyUI's reader steps `8 + length` without RIFF's padding: any odd chunk before EXIF
    would put it off its track (tests/tool_readers.py)."""
    for quality in range(60, 100, 3):
        data = OutputFormat.WEBP.encode(
            noisy(alpha), Embedded(exif=exif_tiff()), EncodeOptions(quality=quality)
        )
        chunks = riff_chunks(data)
        names = [name for name, _size in chunks]
        before = chunks[: names.index(b"EXIF")]
        assert all(size % 2 == 0 for name, size in before if name != b"VP8X")
        assert struct.unpack("<I", data[4:8])[0] == len(data) - 8


def test_padding_the_image_chunk_keeps_the_pixels():
    from facefix_cli.io.encode import _pillow_image, _save

    image = _pillow_image(noisy(alpha=True), keep_alpha=True)
    changed = 0
    for quality in range(70, 100, 2):
        raw = _save(image, "WEBP", quality=quality, exif=EXIF_HEADER + exif_tiff())
        even = even_chunks_before_exif(raw)
        if even != raw:
            changed += 1
            assert np.array_equal(np.asarray(decode(raw)), np.asarray(decode(even)))
    assert changed  # the case happens: the test covered it


def test_jpeg_xmp_too_big_for_one_segment_continues_in_extended_xmp():
    from facefix_cli.io.encode import extended_xmp_guid
    from facefix_cli.metadata.containers import xmp

    texts = [("workflow", "x" * 200_000), ("facefix", "{}")]
    packet = xmp.texts_packet(texts)
    main = xmp.extension_pointer(extended_xmp_guid(packet))
    data = OutputFormat.JPEG.encode(
        pixels(), Embedded(xmp=main, extended_xmp=packet), EncodeOptions()
    )
    found = foreign_metadata(data)
    assert found.extended_xmp == packet
    assert extended_xmp_guid(packet).encode() in (found.xmp or b"")
    assert xmp.read_texts(found.extended_xmp)[0] == texts
    decode(data)  # still a JPEG Pillow reads


def test_lossless_webp_keeps_every_8_bit_value_alpha_and_metadata():
    """`--format webp-lossless`: the pixels PNG would keep (colour under transparent pixels
    too), in WebP, with the same metadata as lossy WebP, and in fewer bytes than PNG."""
    source = pixels(alpha=True, size=(96, 80))
    source.alpha[:8] = 0.0  # fully transparent rows: their colour is kept as well (exact)
    meta = Embedded(icc=SRGB, exif=exif_tiff(), xmp=b"<x:xmpmeta>facefix</x:xmpmeta>")
    data = OutputFormat.WEBP_LOSSLESS.encode(source, meta, EncodeOptions(quality=50))
    image = decode(data)
    assert image.format == "WEBP" and image.mode == "RGBA"
    expected_rgb = np.rint(source.rgb * 255)
    assert np.array_equal(np.asarray(image)[:, :, :3], expected_rgb.astype(np.uint8))
    assert np.array_equal(np.asarray(image)[:, :, 3], np.rint(source.alpha * 255).astype(np.uint8))
    found = foreign_metadata(data)
    assert found.icc == SRGB and found.xmp is not None and b"facefix" in found.xmp
    png = OutputFormat.PNG.encode(source, [], EncodeOptions())
    assert len(data) < len(png)
