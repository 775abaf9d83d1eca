"""What the output carries: every metadata chunk of the input, byte for byte, with each tool's
own record of facefix's operations (`ToolFormat.extend`), then facefix's own iTXt record.

For a JPEG or WebP input, its metadata is first turned into the PNG chunks the tools
themselves would have written (`chunks_for_foreign_image`); settings hidden in the pixels
(stealth info) are carried as text chunks too, since resampling destroys the pixels' low bits.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence

from facefix_cli.io.formats import sniff
from facefix_cli.io.pngchunks import (
    Chunk,
    carried_chunks,
    exif_chunk,
    iccp_chunk,
    itxt_chunk,
    parse_chunks,
    text_chunk,
    ztxt_chunk,
)
from facefix_cli.metadata.containers.exif import load_exif
from facefix_cli.metadata.containers.foreign import foreign_metadata
from facefix_cli.metadata.containers.pngtext import TextReader, decode_latin1_text
from facefix_cli.metadata.containers.stealth import StealthPayload
from facefix_cli.metadata.read import FACEFIX_KEY, exif_texts, payload_texts
from facefix_cli.metadata.tools import TOOLS, Texts
from facefix_cli.operations import Operation

XMP_KEY = "XML:com.adobe.xmp"  # the iTXt keyword the XMP spec assigns to PNG


def chunks_for_foreign_image(data: bytes) -> list[Chunk]:
    """The PNG chunks that carry a JPEG's or WebP's metadata into a PNG output, in this order:
    iCCP (its ICC profile), eXIf (its EXIF, bytes unchanged but for an Orientation the reader
    applied to the pixels and set to 1), the text chunks the generating
    tool writes to PNGs (A1111's `parameters` from the UserComment, ComfyUI's `prompt` and
    `workflow` from IFD0, Fooocus's `fooocus_scheme` from the MakerNote, NovelAI's entries...),
    the XMP packet as iTXt `XML:com.adobe.xmp`, and JPEG comments as tEXt `Comment`.
    Raises UnsupportedImageError for anything but JPEG and WebP."""
    found = foreign_metadata(data)
    chunks: list[Chunk] = []
    if found.icc:
        chunks.append(iccp_chunk(found.icc))
    if found.exif:
        chunks.append(exif_chunk(found.exif))
        chunks.extend(text_chunk(k, v) for k, v in exif_texts(load_exif(found.exif)).items())
    if found.xmp:
        chunks.append(itxt_chunk(XMP_KEY, found.xmp.decode("utf-8", errors="replace")))
    for comment_bytes in found.comments:
        chunks.append(text_chunk("Comment", decode_latin1_text(comment_bytes)))
    return chunks


def chunks_from_bytes(data: bytes) -> list[Chunk]:
    """A file's chunks by its signature: a PNG's own, or those made for a JPEG or WebP.
    Raises PngFormatError or UnsupportedImageError."""
    if sniff(data) == "PNG":
        return parse_chunks(data)
    return chunks_for_foreign_image(data)


def stealth_chunks(stealth: StealthPayload, present: set[str]) -> list[Chunk]:
    """Text chunks for a stealth payload's entries whose keywords the file does not have."""
    return [text_chunk(k, v) for k, v in payload_texts(stealth.text).items() if k not in present]


def output_chunks(
    input_chunks: list[Chunk],
    operations: Sequence[Operation],
    record: dict,
    *,
    stealth: StealthPayload | None = None,
) -> list[Chunk]:
    """The metadata chunks of the output, in order: every carried input chunk unchanged except
    those a tool extends with facefix's operations (e.g. `sd-metadata`, A1111's
    `postprocessing`), new chunks a tool adds after one of them, the stealth payload as text
    chunks where the input had it, then facefix's own iTXt record (after any earlier ones, so
    history reads in order)."""
    kept = carried_chunks(input_chunks)
    reader = TextReader()
    decoded = [reader.decode(chunk)[0] for chunk in kept]
    keywords = {entry.keyword for entry in decoded if entry}
    if stealth is not None:
        extra = stealth_chunks(stealth, keywords)
        kept += extra
        decoded += [reader.decode(chunk)[0] for chunk in extra]
    first: dict[str, str] = {}
    for entry in decoded:
        if entry:
            first.setdefault(entry.keyword, entry.text)
    texts = Texts(first)
    rewrite: dict[str, str] = {}
    add_after: dict[str, list[tuple[str, str]]] = {}
    for tool in TOOLS:
        if tool.extend is None:
            continue
        extension = tool.extend(texts, operations)
        for rewritten, text in extension.rewrite.items():
            rewrite.setdefault(rewritten, text)
        for after, added, text in extension.add_after:
            add_after.setdefault(after, []).append((added, text))
    out: list[Chunk] = []
    done: set[str] = set()
    for chunk, entry in zip(kept, decoded, strict=True):
        keyword = entry.keyword if entry else None
        if keyword in rewrite and keyword not in done:
            chunk = text_chunk_like(chunk, keyword, rewrite[keyword])
            done.add(keyword)
        out.append(chunk)
        if keyword in add_after and f"after {keyword}" not in done:
            out.extend(text_chunk(new, text) for new, text in add_after[keyword])
            done.add(f"after {keyword}")
    record_json = json.dumps(record, sort_keys=True, separators=(",", ":"))
    return [*out, itxt_chunk(FACEFIX_KEY, record_json)]


def text_chunk_like(original: Chunk, keyword: str, text: str) -> Chunk:
    """A text chunk for `text` of the same kind as `original`: same type where the text allows
    it, same compression, and for iTXt the same language tag and translated keyword."""
    if original.type == b"iTXt":
        rest = original.data.partition(b"\x00")[2]
        compressed = bool(rest[:1] == b"\x01")
        tags = rest[2:].split(b"\x00", 2)[:2]
        body = text.encode("utf-8")
        if compressed:
            body = zlib.compress(body)
        header = keyword.encode("latin-1") + b"\x00" + bytes([int(compressed), 0])
        return Chunk(b"iTXt", header + b"\x00".join(tags) + b"\x00" + body)
    try:
        if original.type == b"zTXt":
            return ztxt_chunk(keyword, text)
        return Chunk(b"tEXt", keyword.encode("latin-1") + b"\x00" + text.encode("latin-1"))
    except UnicodeEncodeError:
        return itxt_chunk(keyword, text, compressed=original.type == b"zTXt")
