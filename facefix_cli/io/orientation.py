"""EXIF Orientation (IFD0 tag 0x0112): which of the eight turns and mirrors shows the stored
pixels upright. Phones store photos sideways and set this tag; facefix turns the pixels upright
before looking for faces (a detector misses sideways faces), so the output must then say 1.

Guarantees: `upright` changes the two bytes of the tag's value and nothing else, so every other
EXIF byte reaches the output unchanged; malformed EXIF reads as 1 (leave the pixels alone)."""

from __future__ import annotations

import struct

import numpy as np

ORIENTATION = 0x0112
_SHORT = 3


def _value_offset(tiff: bytes) -> tuple[int, str] | None:
    """Where IFD0's Orientation value sits in `tiff` (a TIFF structure, as in PNG's eXIf) and
    the byte order, or None when the tag is absent or the structure is malformed."""
    if len(tiff) < 8 or tiff[:2] not in (b"II", b"MM"):
        return None
    order = "<" if tiff[:2] == b"II" else ">"
    (ifd,) = struct.unpack(order + "I", tiff[4:8])
    if ifd + 2 > len(tiff):
        return None
    (count,) = struct.unpack(order + "H", tiff[ifd : ifd + 2])
    for index in range(count):
        entry = ifd + 2 + 12 * index
        if entry + 12 > len(tiff):
            return None
        tag, kind, number = struct.unpack(order + "HHI", tiff[entry : entry + 8])
        if tag == ORIENTATION:
            return (entry + 8, order) if kind == _SHORT and number == 1 else None
    return None


def orientation(tiff: bytes) -> int:
    """The Orientation of `tiff`: 1 (upright) to 8; 1 when absent, malformed or out of range."""
    found = _value_offset(tiff)
    if found is None:
        return 1
    offset, order = found
    (value,) = struct.unpack(order + "H", tiff[offset : offset + 2])
    return value if 1 <= value <= 8 else 1


def upright(tiff: bytes) -> bytes:
    """`tiff` with Orientation set to 1; the same bytes when it has none."""
    found = _value_offset(tiff)
    if found is None:
        return tiff
    offset, order = found
    return tiff[:offset] + struct.pack(order + "H", 1) + tiff[offset + 2 :]


def turn_upright(pixels: np.ndarray, value: int) -> np.ndarray:
    """`pixels` (H x W or H x W x C) as a viewer shows them for Orientation `value` (what
    Pillow's `ImageOps.exif_transpose` does)."""
    if value == 2:
        return pixels[:, ::-1]
    if value == 3:
        return pixels[::-1, ::-1]
    if value == 4:
        return pixels[::-1]
    if value == 5:
        return np.swapaxes(pixels, 0, 1)
    if value == 6:
        return np.rot90(pixels, -1)
    if value == 7:
        return np.rot90(pixels, 1)[:, ::-1]
    if value == 8:
        return np.rot90(pixels, 1)
    return pixels
