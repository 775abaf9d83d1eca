"""EXIF: the tags of IFD0 and of the Exif IFD, and the UserComment text with its character code.

Tools put generation settings in several EXIF places: A1111 in the Exif IFD's UserComment
(`UNICODE\\0` + UTF-16), Fooocus in IFD0 (UserComment, MakerNote and Software as plain ASCII),
ComfyUI in IFD0's Model and Make (`prompt:{json}`, `workflow:{json}`), ComfyUI saver nodes in
ImageDescription and Make (`Workflow: {json}`, `Prompt: {json}`) or in UserComment. This module
reads them all without interpreting them; the tool modules decide what they mean.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from facefix_cli.metadata.containers.pngtext import decode_latin1_text

EXIF_HEADER = b"Exif\x00\x00"
USER_COMMENT = 0x9286
MAKER_NOTE = 0x927C
_EXIF_IFD = 0x8769
# IFD0 tags the EXIF spec types ASCII: DocumentName, ImageDescription, Make, Model, Software,
# Artist, Copyright. A writer that stores one as bytes still meant text.
_TEXT_TAGS = {0x010D, 0x010E, 0x010F, 0x0110, 0x0131, 0x013B, 0x8298}

# EXIF UserComment starts with an 8-byte character-code prefix (EXIF 2.3, table 9).
_USER_COMMENT_ASCII = b"ASCII\x00\x00\x00"
_USER_COMMENT_UNICODE = b"UNICODE\x00"
_USER_COMMENT_JIS = b"JIS\x00\x00\x00\x00\x00"
_USER_COMMENT_UNDEFINED = b"\x00" * 8


@dataclass
class ExifTags:
    """The tags of IFD0 and the Exif IFD; ASCII values as text, the others as Pillow gives them."""

    ifd0: dict[int, Any] = field(default_factory=dict)
    exif: dict[int, Any] = field(default_factory=dict)
    user_comment: str | None = None  # decoded, from the Exif IFD or else from IFD0
    problems: list[str] = field(default_factory=list)

    def text(self, tag: int) -> str | None:
        """A tag's value as text, from the Exif IFD or else IFD0; None if absent or binary."""
        for ifd in (self.exif, self.ifd0):
            value = ifd.get(tag)
            if isinstance(value, bytes):
                value = decode_latin1_text(value.rstrip(b"\x00"))
            if isinstance(value, str):
                return _utf8_from_latin1(value.rstrip("\x00"))
        return None

    def ifd0_texts(self) -> dict[int, str]:
        """IFD0's text tags, e.g. Model, Make and ImageDescription where ComfyUI and its saver
        nodes put their graphs: ASCII ones, and those a writer stored as bytes (UNDEFINED)."""
        texts = {}
        for tag, value in self.ifd0.items():
            if isinstance(value, bytes) and tag in _TEXT_TAGS:
                value = decode_latin1_text(value.rstrip(b"\x00"))
            if isinstance(value, str):
                texts[tag] = _utf8_from_latin1(value.rstrip("\x00"))
        return texts


def _utf8_from_latin1(text: str) -> str:
    """Pillow reads ASCII tags as Latin-1; writers that put UTF-8 there meant UTF-8."""
    try:
        return decode_latin1_text(text.encode("latin-1"))
    except UnicodeEncodeError:
        return text


def load_exif(blob: bytes) -> ExifTags:
    """The tags of an EXIF blob (a TIFF structure, with or without a JPEG `Exif\\0\\0` header).
    Never raises: an unreadable blob gives empty tags and a problem."""
    tags = ExifTags()
    tiff = blob.removeprefix(EXIF_HEADER)
    if not tiff.startswith((b"II*\x00", b"MM\x00*")):
        tags.problems.append("EXIF does not start with a TIFF header, not readable")
        return tags
    logger = logging.getLogger("PIL.TiffImagePlugin")
    level = logger.level
    logger.setLevel(logging.ERROR)  # Pillow logs every odd tag; problems are reported here
    try:
        exif = Image.Exif()
        exif.load(tiff)
        tags.ifd0 = {tag: value for tag, value in exif.items() if tag != _EXIF_IFD}
        tags.exif = dict(exif.get_ifd(_EXIF_IFD))
    except Exception as error:  # Pillow raises many types on malformed EXIF
        tags.problems.append(f"EXIF is unreadable ({type(error).__name__}: {error})")
        return tags
    finally:
        logger.setLevel(level)
    comment = tags.exif.get(USER_COMMENT)
    if isinstance(comment, str):
        comment = comment.encode("latin-1", errors="replace")
    if isinstance(comment, bytes):
        text, problem = decode_user_comment(comment)
        if problem:
            tags.problems.append(problem)
        tags.user_comment = text
    elif isinstance(tags.ifd0.get(USER_COMMENT), str):  # Fooocus: plain ASCII in IFD0
        tags.user_comment = _utf8_from_latin1(tags.ifd0[USER_COMMENT].rstrip("\x00")) or None
    return tags


def decode_user_comment(value: bytes) -> tuple[str | None, str | None]:
    """(text, problem) of a raw UserComment value: the 8-byte character-code prefix, then the
    text. UNICODE is UTF-16; A1111 writes it big-endian (piexif's choice) and other tools
    little-endian, so the byte order is taken from a BOM or from where the zero bytes fall."""
    prefix, body = value[:8], value[8:]
    problem = None
    if prefix == _USER_COMMENT_UNICODE:
        text, problem = _decode_utf16(body)
    elif prefix == _USER_COMMENT_ASCII:
        text = decode_latin1_text(body)  # declared ASCII, yet tools routinely store UTF-8 here
    elif prefix == _USER_COMMENT_JIS:
        text = body.decode("shift_jis", errors="replace")
    elif prefix == _USER_COMMENT_UNDEFINED:
        text = decode_latin1_text(body)
    else:
        text = decode_latin1_text(value)
        problem = "EXIF UserComment has no character-code prefix; read as UTF-8/Latin-1"
    text = text.rstrip("\x00")
    return (text or None), problem


def _decode_utf16(body: bytes) -> tuple[str, str | None]:
    problem = None
    if body.startswith((b"\xfe\xff", b"\xff\xfe")):
        encoding = "utf-16"  # the BOM decides
    else:
        zeros_even = body[0::2].count(0)
        zeros_odd = body[1::2].count(0)
        encoding = "utf-16-le" if zeros_odd > zeros_even else "utf-16-be"
    if len(body) % 2:
        body = body[:-1]
        problem = "EXIF UserComment (UNICODE) has an odd byte count; last byte dropped"
    try:
        return body.decode(encoding), problem
    except UnicodeDecodeError:
        bad = "EXIF UserComment (UNICODE) is not valid UTF-16; bad units shown as \ufffd"
        return body.decode(encoding, errors="replace"), bad
