"""The metadata of a JPEG, WebP or AVIF file, as raw bytes: EXIF, XMP (with a JPEG's Extended
XMP), ICC profile and comments.

Segments and RIFF chunks are walked by their lengths, so the cost is linear in the file size and
a damaged file gives what was found before the damage. AVIF (which facefix writes, never reads
as an input) is read through Pillow's AVIF plugin.
"""

from __future__ import annotations

import hashlib
import io
import struct
from dataclasses import dataclass, field

from facefix_cli.errors import UnsupportedImageError
from facefix_cli.io.formats import sniff
from facefix_cli.metadata.containers.exif import EXIF_HEADER

_XMP_HEADER = b"http://ns.adobe.com/xap/1.0/\x00"
_EXTENDED_XMP_HEADER = b"http://ns.adobe.com/xmp/extension/\x00"
_ICC_HEADER = b"ICC_PROFILE\x00"


@dataclass
class ForeignMetadata:
    format: str  # "JPEG", "WebP" or "AVIF"
    exif: bytes | None = None  # the TIFF structure, without the `Exif\0\0` header
    xmp: bytes | None = None
    # A JPEG's Extended XMP, put together from its segments, when the GUID (its MD5) matches
    extended_xmp: bytes | None = None
    icc: bytes | None = None
    comments: list[bytes] = field(default_factory=list)


def foreign_metadata(data: bytes) -> ForeignMetadata:
    """The metadata of a JPEG or WebP file; UnsupportedImageError for anything else."""
    kind = sniff(data)
    if kind == "JPEG":
        return _jpeg_metadata(data)
    if kind == "WebP":
        return _webp_metadata(data)
    if kind == "AVIF":
        return _avif_metadata(data)
    raise UnsupportedImageError("not a PNG, JPEG, WebP or AVIF file")


def _jpeg_metadata(data: bytes) -> ForeignMetadata:
    found = ForeignMetadata("JPEG")
    icc_parts: dict[int, bytes] = {}
    extended: dict[bytes, dict[int, bytes]] = {}  # GUID -> offset -> piece
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            break  # not a marker: a damaged file; keep what was found so far
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:  # markers without a length
            pos += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image, start of scan: no metadata after this
            break
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        segment = data[pos + 4 : pos + 2 + length]
        pos += 2 + length
        if marker == 0xE1 and segment.startswith(EXIF_HEADER) and found.exif is None:
            found.exif = segment[len(EXIF_HEADER) :]
        elif marker == 0xE1 and segment.startswith(_XMP_HEADER) and found.xmp is None:
            found.xmp = segment[len(_XMP_HEADER) :]
        elif marker == 0xE1 and segment.startswith(_EXTENDED_XMP_HEADER):
            rest = segment[len(_EXTENDED_XMP_HEADER) :]
            if len(rest) >= 40:
                (offset,) = struct.unpack(">I", rest[36:40])
                extended.setdefault(rest[:32], {})[offset] = rest[40:]
        elif marker == 0xE2 and segment.startswith(_ICC_HEADER) and len(segment) > 14:
            icc_parts[segment[12]] = segment[14:]  # sequence number, count, then the data
        elif marker == 0xFE and segment:
            found.comments.append(segment)
    if icc_parts:
        found.icc = b"".join(icc_parts[n] for n in sorted(icc_parts))
    for guid, pieces in extended.items():
        whole = b"".join(pieces[offset] for offset in sorted(pieces))
        if hashlib.md5(whole, usedforsecurity=False).hexdigest().upper().encode() == guid:
            found.extended_xmp = whole
            break
    return found


def _webp_metadata(data: bytes) -> ForeignMetadata:
    found = ForeignMetadata("WebP")
    pos = 12
    while pos + 8 <= len(data):
        fourcc = data[pos : pos + 4]
        (size,) = struct.unpack("<I", data[pos + 4 : pos + 8])
        body = data[pos + 8 : pos + 8 + size]
        pos += 8 + size + (size & 1)  # chunks are padded to even length
        if fourcc == b"EXIF":
            found.exif = body.removeprefix(EXIF_HEADER)
        elif fourcc == b"XMP ":
            found.xmp = body
        elif fourcc == b"ICCP":
            found.icc = body
    return found


def _avif_metadata(data: bytes) -> ForeignMetadata:
    from PIL import Image, UnidentifiedImageError

    found = ForeignMetadata("AVIF")
    try:
        with Image.open(io.BytesIO(data)) as image:
            info = dict(image.info)
    except (OSError, UnidentifiedImageError, ValueError) as error:
        raise UnsupportedImageError(f"AVIF not readable by this Pillow ({error})") from None
    exif = info.get("exif")
    if isinstance(exif, bytes):
        found.exif = exif.removeprefix(EXIF_HEADER)
    xmp = info.get("xmp")
    if isinstance(xmp, bytes):
        found.xmp = xmp
    icc = info.get("icc_profile")
    if isinstance(icc, bytes) and icc:
        found.icc = icc
    return found
