"""What the file header declares, before any decoding: the image's dimensions (PNG IHDR, JPEG
SOFn, WebP VP8/VP8L/VP8X) and whether it is animated (APNG acTL, WebP ANMF frames). Lets a run
refuse a hostile image (a 1 KB file that claims 100000x100000 pixels) in microseconds instead of
allocating gigabytes to find out, and skip an animation instead of writing its first frame."""

from __future__ import annotations

import struct

from facefix_cli.io.formats import sniff

DEFAULT_MAX_PIXELS = 100_000_000  # far above any real render (8192x8192 is 67 megapixels)
# SOF0..SOF15 carry the frame size; C4 (DHT), C8 (JPG) and CC (DAC) share the range but do not.
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def image_dimensions(data: bytes) -> tuple[int, int] | None:
    """(width, height) the header declares, or None when no header of a known kind is found
    (the decoder then reports the file as corrupt)."""
    kind = sniff(data)
    if kind == "PNG":
        if len(data) >= 24 and data[12:16] == b"IHDR":
            return struct.unpack(">II", data[16:24])
        return None
    if kind == "JPEG":
        return _jpeg_dimensions(data)
    if kind == "WebP":
        return _webp_dimensions(data)
    return None


def _jpeg_dimensions(data: bytes) -> tuple[int, int] | None:
    position = 2
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            return None
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # no length field
            position += 2
            continue
        (length,) = struct.unpack(">H", data[position + 2 : position + 4])
        if marker in _JPEG_SOF:
            if position + 9 > len(data):
                return None
            height, width = struct.unpack(">HH", data[position + 5 : position + 9])
            return width, height
        if marker == 0xDA or length < 2:  # scan data before any frame header: malformed
            return None
        position += 2 + length
    return None


def _webp_dimensions(data: bytes) -> tuple[int, int] | None:
    kind, body = data[12:16], data[20:]
    if kind == b"VP8X" and len(body) >= 10:
        width = int.from_bytes(body[4:7], "little") + 1
        height = int.from_bytes(body[7:10], "little") + 1
        return width, height
    if kind == b"VP8L" and len(body) >= 5 and body[0] == 0x2F:
        bits = int.from_bytes(body[1:5], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if kind == b"VP8 " and len(body) >= 10 and body[3:6] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", body[6:10])
        return width & 0x3FFF, height & 0x3FFF
    return None


def animation_frames(data: bytes) -> int | None:
    """The frame count of an animated PNG (APNG) or WebP, or None for a still image. (Decoders
    return the first frame of an animation: fixing that would quietly lose the rest.)"""
    kind = sniff(data)
    if kind == "PNG":
        frames = _png_frames(data)
    elif kind == "WebP":
        frames = _webp_frames(data)
    else:
        return None
    return frames if frames > 1 else None


def _png_frames(data: bytes) -> int:
    """acTL's frame count; it must come before the first IDAT, so the walk stops there."""
    position = 8
    while position + 12 <= len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        if kind == b"acTL" and length >= 8 and position + 12 <= len(data):
            return struct.unpack(">I", data[position + 8 : position + 12])[0]
        if kind in (b"IDAT", b"IEND"):
            return 1
        position += 12 + length
    return 1


def _webp_frames(data: bytes) -> int:
    """The number of ANMF chunks of a WebP whose VP8X header sets the animation flag."""
    if data[12:16] != b"VP8X" or len(data) < 21 or not data[20] & 0x02:
        return 1
    frames, position = 0, 12
    while position + 8 <= len(data):
        size = int.from_bytes(data[position + 4 : position + 8], "little")
        frames += data[position : position + 4] == b"ANMF"
        position += 8 + size + (size & 1)  # chunks are padded to an even size
    return frames
