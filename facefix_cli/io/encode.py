"""The encoders of `io.outputs.OutputFormat`: pixels and their metadata to a file's bytes, and
the containers' limits they and `metadata.carry` share.

Pure: nothing here touches a file (the bytes go through `io.write.write_atomic`). PNG is the
encoder facefix always had (`io.write.encode_png`, OpenCV, byte for byte the same); WebP, JPEG
and AVIF are Pillow's, at 8 bits per sample (16-bit pixels are rounded to 8 bits: the record
says so), with the metadata of `outputs.Embedded` where each format keeps it:

- WebP: ICCP, EXIF and XMP chunks (libwebp's mux). Every chunk before EXIF is given an even
  length, so readers that step over chunks without RIFF's padding byte (ComfyUI's frontend,
  `getWebpMetadata`) still land on EXIF: an odd image chunk gets one zero byte of its own,
  which decoders ignore as the end of the bitstream.
- JPEG: APP1 EXIF, APP1 XMP, APP2 ICC; an XMP packet too big for one segment continues in
  Adobe's Extended XMP segments (XMP spec part 3, 1.1.3.1), which exiftool and `facefix info`
  read back. JPEG has no alpha: a caller passes pixels without it (`pipeline.file` refuses a
  transparent image for JPEG).
- AVIF: libavif's Exif and XMP items and its ICC colour property.

Light to import (the table in `io.outputs` refers to these functions, and the CLI imports the
table at start): numpy, Pillow and OpenCV are imported when a file is first encoded.
"""

from __future__ import annotations

import hashlib
import io
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

from facefix_cli.errors import ImageError
from facefix_cli.io.defaults import DEFAULT_PNG_LEVEL

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

    from facefix_cli.io.pngchunks import Chunk

EXIF_HEADER = b"Exif\x00\x00"
JPEG_SEGMENT_MAX = 65533  # bytes of one JPEG marker segment's payload (its length field: 65535)
XMP_HEADER = b"http://ns.adobe.com/xap/1.0/\x00"
EXTENDED_XMP_HEADER = b"http://ns.adobe.com/xmp/extension/\x00"
# Data in one Extended XMP segment: after its header, GUID (32), full length (4), offset (4).
EXTENDED_XMP_CHUNK = JPEG_SEGMENT_MAX - len(EXTENDED_XMP_HEADER) - 40
XMP_SEGMENT_MAX = JPEG_SEGMENT_MAX - len(XMP_HEADER)


def extended_xmp_guid(extended: bytes) -> str:
    """The GUID that ties a JPEG's main XMP packet to its extension: the MD5 of the extension,
    in upper-case hex (XMP spec part 3)."""
    return hashlib.md5(extended, usedforsecurity=False).hexdigest().upper()


@dataclass(frozen=True)
class Embedded:
    """Metadata for a format that embeds it (WebP, JPEG, AVIF): the bytes the encoder writes,
    each where that format keeps it. `exif` is a TIFF structure (no `Exif\\0\\0` header); `xmp`
    a whole XMP packet; `extended_xmp` (JPEG only) the rest of it when it does not fit in one
    JPEG segment, written as Adobe's Extended XMP segments."""

    icc: bytes | None = None
    exif: bytes | None = None
    xmp: bytes | None = None
    extended_xmp: bytes | None = None


@dataclass(frozen=True)
class EncodeOptions:
    """How to encode: `quality` of a lossy format (the table fills in the format's default
    before an encoder sees it), `png_level` of PNG (zlib, 0-9)."""

    quality: int | None = None
    png_level: int = DEFAULT_PNG_LEVEL


@dataclass(frozen=True)
class OutputPixels:
    """The fixed image as the writer gets it: float RGB in [0, 1], H x W x 3; alpha H x W or
    None; and the bit depth of the input (8 or 16)."""

    rgb: np.ndarray
    alpha: np.ndarray | None
    bit_depth: int


def encode_png(pixels: OutputPixels, carried: object, options: EncodeOptions) -> bytes:
    from facefix_cli.io.write import encode_png as encode_with_chunks

    assert isinstance(carried, list)
    chunks: list[Chunk] = carried
    return encode_with_chunks(pixels.rgb, pixels.alpha, pixels.bit_depth, chunks, options.png_level)


def _pillow_image(pixels: OutputPixels, keep_alpha: bool) -> Image.Image:
    import numpy as np
    from PIL import Image

    from facefix_cli.io.write import quantize

    if pixels.alpha is not None and keep_alpha:
        planes = np.dstack([pixels.rgb, pixels.alpha])
        return Image.fromarray(quantize(planes, 8), "RGBA")
    return Image.fromarray(quantize(pixels.rgb, 8), "RGB")


def _embedded(carried: object) -> Embedded:
    assert isinstance(carried, Embedded)
    return carried


def _save(image: Image.Image, kind: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    try:
        image.save(buffer, kind, **{k: v for k, v in params.items() if v is not None})
    except (OSError, ValueError) as exc:  # Pillow's encoders say what went wrong in either
        raise ImageError(f"{kind} encoding failed: {exc}") from None
    return buffer.getvalue()


def encode_webp(pixels: OutputPixels, carried: object, options: EncodeOptions) -> bytes:
    meta = _embedded(carried)
    data = _save(
        _pillow_image(pixels, keep_alpha=True),
        "WEBP",
        quality=options.quality,
        method=4,
        icc_profile=meta.icc,
        exif=EXIF_HEADER + meta.exif if meta.exif else None,
        xmp=meta.xmp,
    )
    return even_chunks_before_exif(data)


# libwebp's lossless effort (Pillow's `quality` when lossless=True): 0 fastest, 100 smallest.
LOSSLESS_EFFORT = 50


def encode_webp_lossless(pixels: OutputPixels, carried: object, options: EncodeOptions) -> bytes:
    """WebP's lossless mode: every 8-bit value kept, colour under transparent pixels too
    (`exact`), so settings hidden in the pixels' low bits survive as in PNG."""
    meta = _embedded(carried)
    data = _save(
        _pillow_image(pixels, keep_alpha=True),
        "WEBP",
        lossless=True,
        exact=True,
        quality=LOSSLESS_EFFORT,
        method=4,
        icc_profile=meta.icc,
        exif=EXIF_HEADER + meta.exif if meta.exif else None,
        xmp=meta.xmp,
    )
    return even_chunks_before_exif(data)


def even_chunks_before_exif(webp: bytes) -> bytes:
    """`webp` with every chunk before its EXIF chunk of even declared length (see the module
    docstring); unchanged when they already are, or when there is no EXIF chunk."""
    if webp[:4] != b"RIFF" or webp[8:12] != b"WEBP":
        return webp
    pieces: list[bytes] = [b""]
    position, changed = 12, False
    seen_exif = False
    while position + 8 <= len(webp):
        fourcc = webp[position : position + 4]
        (size,) = struct.unpack("<I", webp[position + 4 : position + 8])
        body = webp[position + 8 : position + 8 + size]
        position += 8 + size + (size & 1)
        if fourcc == b"EXIF":
            seen_exif = True
        if size & 1 and not seen_exif and fourcc != b"VP8X":
            body += b"\x00"  # the padding byte becomes the chunk's own
            changed = True
        pieces.append(fourcc + struct.pack("<I", len(body)) + body + b"\x00" * (len(body) & 1))
    if not changed or not seen_exif:
        return webp
    payload = b"WEBP" + b"".join(pieces)
    return b"RIFF" + struct.pack("<I", len(payload)) + payload


def encode_jpeg(pixels: OutputPixels, carried: object, options: EncodeOptions) -> bytes:
    meta = _embedded(carried)
    exif = EXIF_HEADER + meta.exif if meta.exif else None
    if exif is not None and len(exif) > JPEG_SEGMENT_MAX:
        raise ImageError(f"its EXIF ({len(exif)} bytes) does not fit a JPEG segment")
    data = _save(
        _pillow_image(pixels, keep_alpha=False),
        "JPEG",
        quality=options.quality,
        icc_profile=meta.icc,
        exif=exif,
        xmp=meta.xmp,
    )
    if meta.extended_xmp:
        data = _with_segments(data, extended_xmp_segments(meta.extended_xmp))
    return data


def extended_xmp_segments(extended: bytes) -> list[bytes]:
    """APP1 segments (marker included) that carry `extended` in pieces."""
    guid = extended_xmp_guid(extended).encode("ascii")
    segments = []
    for offset in range(0, len(extended), EXTENDED_XMP_CHUNK):
        piece = extended[offset : offset + EXTENDED_XMP_CHUNK]
        payload = EXTENDED_XMP_HEADER + guid + struct.pack(">II", len(extended), offset) + piece
        segments.append(b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload)
    return segments


def _with_segments(jpeg: bytes, segments: list[bytes]) -> bytes:
    """`jpeg` with `segments` after its own APPn and COM segments, before the tables."""
    position = 2
    while position + 4 <= len(jpeg) and jpeg[position] == 0xFF:
        marker = jpeg[position + 1]
        if not (0xE0 <= marker <= 0xEF or marker == 0xFE):
            break
        (length,) = struct.unpack(">H", jpeg[position + 2 : position + 4])
        position += 2 + length
    return jpeg[:position] + b"".join(segments) + jpeg[position:]


def encode_avif(pixels: OutputPixels, carried: object, options: EncodeOptions) -> bytes:
    meta = _embedded(carried)
    return _save(
        _pillow_image(pixels, keep_alpha=True),
        "AVIF",
        quality=options.quality,
        icc_profile=meta.icc,
        exif=EXIF_HEADER + meta.exif if meta.exif else None,
        xmp=meta.xmp,
    )
