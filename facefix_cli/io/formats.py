"""The one signature sniffer: which image format a file's first bytes say it is.

Every place that must tell PNG, JPEG, WebP and AVIF apart (the walk, the reader, the header check,
the metadata containers) asks `sniff`, so a file is never one format to one stage and another
to the next."""

from __future__ import annotations

from typing import Literal

ImageFormat = Literal["PNG", "JPEG", "WebP", "AVIF"]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SIGNATURE = b"\xff\xd8\xff"
HEAD_SIZE = 12  # enough bytes for every signature below (WebP's is at offset 8)

# The spellings `--ext` accepts, and the format each names.
EXTENSIONS: dict[str, ImageFormat] = {"png": "PNG", "jpg": "JPEG", "jpeg": "JPEG", "webp": "WebP"}


def sniff(head: bytes) -> ImageFormat | None:
    """The format of a file that starts with `head` (HEAD_SIZE bytes suffice), or None."""
    if head.startswith(PNG_SIGNATURE):
        return "PNG"
    if head.startswith(JPEG_SIGNATURE):
        return "JPEG"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    if head[4:8] == b"ftyp" and head[8:12] in (b"avif", b"avis"):
        return "AVIF"  # facefix writes it (`--format avif`) and `info` reads it; never an input
    return None
