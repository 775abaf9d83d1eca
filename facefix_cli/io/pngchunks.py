"""PNG files as lists of raw chunks: read with CRC checks, rebuild with chosen chunks inserted.

Metadata is carried byte for byte at this level, so nothing a decoder or encoder does to text,
profiles or EXIF can change it.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from facefix_cli.errors import (
    InflateLimitError,
    PngFormatError,  # noqa: F401  (raised here; callers import it from here too)
)
from facefix_cli.io.formats import PNG_SIGNATURE, sniff

# The most one compressed text chunk (zTXt, compressed iTXt) may inflate to. Real metadata stays
# far below (a large ComfyUI workflow is a few MB); a "zip bomb" chunk is refused, not inflated.
TEXT_INFLATE_LIMIT = 32 * 1024 * 1024

# Chunks that describe the pixel encoding of the original, which the re-encoded output replaces.
PIXEL_LAYOUT_CHUNKS = frozenset(
    {b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"sBIT", b"bKGD", b"hIST", b"sPLT"}
    | {b"acTL", b"fcTL", b"fdAT"}  # APNG frames: the output is one still image
)
# Known ancillary chunks that stay true after resampling, although their safe-to-copy bit is off.
KEPT_ANCILLARY = frozenset(
    {b"tEXt", b"zTXt", b"iTXt", b"iCCP", b"sRGB", b"gAMA", b"cHRM", b"cICP", b"pHYs", b"eXIf"}
    | {b"tIME", b"mDCv", b"cLLi"}
)


@dataclass(frozen=True)
class Chunk:
    type: bytes  # four ASCII letters, e.g. b"tEXt"
    data: bytes

    def to_bytes(self) -> bytes:
        crc = zlib.crc32(self.type + self.data) & 0xFFFFFFFF
        return struct.pack(">I", len(self.data)) + self.type + self.data + struct.pack(">I", crc)


def parse_chunks(data: bytes) -> list[Chunk]:
    """Every chunk from signature to IEND, checked for truncation and CRC errors."""
    view = memoryview(data).cast("B")
    return [
        Chunk(kind, bytes(view[start + 8 : end - 4])) for kind, start, end in _chunk_spans(view)
    ]


def _name(chunk_type: bytes) -> str:
    return chunk_type.decode("latin-1")


def is_carried(chunk: Chunk) -> bool:
    """Whether an input chunk belongs in the output: metadata yes, pixel encoding no.

    Unknown chunks follow the PNG rule: copy them only if their safe-to-copy bit is set
    (lower-case fourth letter).
    """
    if chunk.type in PIXEL_LAYOUT_CHUNKS:
        return False
    if chunk.type in KEPT_ANCILLARY:
        return True
    is_ancillary = bool(chunk.type[0] & 0x20)
    safe_to_copy = bool(chunk.type[3] & 0x20)
    return is_ancillary and safe_to_copy


def carried_chunks(chunks: list[Chunk]) -> list[Chunk]:
    return [c for c in chunks if is_carried(c)]


CRITICAL_CHUNKS = (b"IHDR", b"PLTE", b"IDAT", b"IEND")


def with_chunks(png: bytes | memoryview, extra: list[Chunk]) -> bytes:
    """`png` (as an encoder wrote it) with its own ancillary chunks dropped and `extra` put
    right after IHDR, in order, so colour chunks come before the image data as PNG requires.
    The encoder's chunks are copied once, as they are, into the result (a big output's image
    data is hundreds of MB); they are checked as `parse_chunks` checks a file."""
    view = memoryview(png).cast("B")
    kept = [
        (kind, start, end) for kind, start, end in _chunk_spans(view) if kind in CRITICAL_CHUNKS
    ]
    pieces: list[bytes | memoryview] = [PNG_SIGNATURE, view[kept[0][1] : kept[0][2]]]
    pieces += [chunk.to_bytes() for chunk in extra]
    pieces += [view[start:end] for _kind, start, end in kept[1:]]
    return b"".join(pieces)


def _chunk_spans(view: memoryview) -> list[tuple[bytes, int, int]]:
    """(type, start, end) of every raw chunk of a PNG in memory, signature to IEND, with the
    checks of `parse_chunks` (CRC included), without copying the chunks' data."""
    if sniff(bytes(view[: len(PNG_SIGNATURE)])) != "PNG":
        raise PngFormatError("not a PNG file (bad signature)")
    spans: list[tuple[bytes, int, int]] = []
    pos = len(PNG_SIGNATURE)
    while True:
        if pos + 8 > len(view):
            raise PngFormatError("truncated PNG (file ends before the IEND chunk)")
        (length,) = struct.unpack(">I", view[pos : pos + 4])
        chunk_type = bytes(view[pos + 4 : pos + 8])
        end = pos + 12 + length
        if end > len(view):
            raise PngFormatError(f"truncated PNG (cut off in chunk {_name(chunk_type)})")
        (crc,) = struct.unpack(">I", view[end - 4 : end])
        if zlib.crc32(view[pos + 8 : end - 4], zlib.crc32(chunk_type)) & 0xFFFFFFFF != crc:
            raise PngFormatError(f"corrupt PNG (CRC mismatch in chunk {_name(chunk_type)})")
        spans.append((chunk_type, pos, end))
        pos = end
        if chunk_type == b"IEND":
            break
    if not spans or spans[0][0] != b"IHDR":
        raise PngFormatError("corrupt PNG (first chunk is not IHDR)")
    if not any(kind == b"IDAT" for kind, _start, _end in spans):
        raise PngFormatError("corrupt PNG (no image data)")
    return spans


def itxt_chunk(keyword: str, text: str, *, compressed: bool = False) -> Chunk:
    """An international text chunk (UTF-8), optionally zlib-compressed."""
    body = text.encode("utf-8")
    if compressed:
        body = zlib.compress(body)
    header = keyword.encode("latin-1") + b"\x00" + bytes([1 if compressed else 0, 0]) + b"\x00\x00"
    return Chunk(b"iTXt", header + body)


def text_chunk(keyword: str, text: str) -> Chunk:
    """A Latin-1 tEXt chunk, or iTXt where the text needs characters Latin-1 lacks."""
    try:
        return Chunk(b"tEXt", keyword.encode("latin-1") + b"\x00" + text.encode("latin-1"))
    except UnicodeEncodeError:
        return itxt_chunk(keyword, text)


def inflate(data: bytes, limit: int = TEXT_INFLATE_LIMIT) -> bytes:
    """zlib-decompress `data`, refusing (InflateLimitError) as soon as the output would pass
    `limit` bytes, so a small hostile chunk never costs more than `limit` of memory."""
    decompressor = zlib.decompressobj()
    out = decompressor.decompress(data, limit)
    if decompressor.unconsumed_tail:
        raise InflateLimitError(f"inflates past {limit // (1024 * 1024)} MiB")
    out += decompressor.flush()  # never more than the window: the limit was not reached
    if len(out) > limit:
        raise InflateLimitError(f"inflates past {limit // (1024 * 1024)} MiB")
    if not decompressor.eof:
        raise zlib.error("incomplete or truncated stream")
    return out


def decode_text_chunk(chunk: Chunk) -> tuple[str, str] | None:
    """(keyword, text) of a tEXt, zTXt or iTXt chunk; None for other chunks, broken ones and
    compressed text that would inflate past TEXT_INFLATE_LIMIT."""
    try:
        keyword_bytes, _, rest = chunk.data.partition(b"\x00")
        keyword = keyword_bytes.decode("latin-1")
        if chunk.type == b"tEXt":
            return keyword, rest.decode("latin-1")
        if chunk.type == b"zTXt":
            return keyword, inflate(rest[1:]).decode("latin-1")
        if chunk.type == b"iTXt":
            compressed, _method = rest[0], rest[1]
            _language, _, rest = rest[2:].partition(b"\x00")
            _translated, _, body = rest.partition(b"\x00")
            if compressed:
                body = inflate(body)
            return keyword, body.decode("utf-8", errors="replace")
    except (zlib.error, IndexError, UnicodeDecodeError, InflateLimitError):
        return None
    return None


def ztxt_chunk(keyword: str, text: str) -> Chunk:
    """A zlib-compressed Latin-1 text chunk; raises UnicodeEncodeError for text Latin-1 lacks."""
    body = zlib.compress(text.encode("latin-1"))
    return Chunk(b"zTXt", keyword.encode("latin-1") + b"\x00\x00" + body)


def exif_chunk(exif: bytes) -> Chunk:
    """An eXIf chunk. PNG stores the TIFF structure itself, so a JPEG-style `Exif\\0\\0` prefix
    is dropped."""
    if exif.startswith(b"Exif\x00\x00"):
        exif = exif[6:]
    return Chunk(b"eXIf", exif)


def iccp_chunk(profile: bytes, name: str = "ICC Profile") -> Chunk:
    """An embedded ICC colour profile (zlib-compressed, as iCCP requires)."""
    return Chunk(b"iCCP", name.encode("latin-1") + b"\x00\x00" + zlib.compress(profile))
