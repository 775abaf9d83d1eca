"""What the output carries: every metadata chunk of the input, byte for byte, with each tool's
own record of facefix's operations (`ToolFormat.extend`), then facefix's own iTXt record.

For a JPEG or WebP input, its metadata is first turned into the PNG chunks the tools
themselves would have written (`chunks_for_foreign_image`); settings hidden in the pixels
(stealth info) are carried as text chunks too, since resampling destroys the pixels' low bits.

For a WebP, JPEG or AVIF output, `embedded_metadata` puts those same chunks where the tools
that read such files look (the README's table): the ICC profile where the format keeps one;
the EXIF (Orientation 1: the pixels are upright), with A1111's `parameters` in the Exif IFD's
UserComment (`UNICODE\0` + UTF-16BE, as A1111 writes it through piexif) and ComfyUI's graphs
in IFD0 Model (`prompt:{json}`) and Make (`workflow:{json}`), as ComfyUI's own WebP saver does
and its frontend reads; and every text, facefix's record included, in XMP `facefix:texts`
(`containers.xmp`). `chunks_for_foreign_image` reads all that back into the same chunks.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence

from facefix_cli.errors import InflateLimitError
from facefix_cli.io.encode import (
    EXIF_HEADER,
    JPEG_SEGMENT_MAX,
    XMP_SEGMENT_MAX,
    Embedded,
    extended_xmp_guid,
)
from facefix_cli.io.formats import sniff
from facefix_cli.io.outputs import OutputFormat
from facefix_cli.io.pngchunks import (
    Chunk,
    carried_chunks,
    exif_chunk,
    iccp_chunk,
    inflate,
    itxt_chunk,
    parse_chunks,
    text_chunk,
    ztxt_chunk,
)
from facefix_cli.metadata.containers import xmp
from facefix_cli.metadata.containers.exif import USER_COMMENT, ExifTags, load_exif
from facefix_cli.metadata.containers.foreign import foreign_metadata
from facefix_cli.metadata.containers.pngtext import TextReader, decode_latin1_text
from facefix_cli.metadata.containers.stealth import StealthPayload
from facefix_cli.metadata.read import FACEFIX_KEY, exif_texts, payload_texts
from facefix_cli.metadata.tools import TOOLS, Texts
from facefix_cli.operations import Operation

XMP_KEY = "XML:com.adobe.xmp"  # the iTXt keyword the XMP spec assigns to PNG
ORIENTATION = 0x0112
EXIF_IFD = 0x8769
MAKE, MODEL = 0x010F, 0x0110
# Texts with a place in EXIF that a tool's reader looks at: (keyword, IFD0 tag, label), the tag
# None for the Exif IFD's UserComment. ComfyUI's SaveAnimatedWEBP writes the graphs as
# `prompt:{json}` in Model and `workflow:{json}` in Make; its frontend splits at the first colon.
EXIF_PLACES: tuple[tuple[str, int | None, str], ...] = (
    ("parameters", None, ""),
    ("prompt", MODEL, "prompt:"),
    ("workflow", MAKE, "workflow:"),
)


def chunks_for_foreign_image(data: bytes) -> list[Chunk]:
    """The PNG chunks that carry a JPEG's or WebP's metadata into a PNG output, in this order:
    iCCP (its ICC profile), eXIf (its EXIF, bytes unchanged but for an Orientation the reader
    applied to the pixels and set to 1), the text chunks the generating
    tool writes to PNGs (A1111's `parameters` from the UserComment, ComfyUI's `prompt` and
    `workflow` from IFD0, Fooocus's `fooocus_scheme` from the MakerNote, NovelAI's entries...),
    the XMP packet as iTXt `XML:com.adobe.xmp`, and JPEG comments as tEXt `Comment`.
    A file facefix wrote (its XMP has `facefix:texts`) gets back the chunks it was written from.
    Raises UnsupportedImageError for anything but JPEG, WebP and AVIF."""
    found = foreign_metadata(data)
    for packet in (found.xmp, found.extended_xmp):
        texts, _problem = xmp.read_texts(packet) if packet else (None, None)
        if texts is not None:
            return _chunks_from_texts(found.icc, found.exif, texts)
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


def _chunks_from_texts(icc: bytes | None, exif: bytes | None, texts: xmp.Texts) -> list[Chunk]:
    """The chunks of a WebP, JPEG or AVIF that facefix wrote: ICC, EXIF, then each text of
    `facefix:texts` in order, those written in EXIF instead taken from there."""
    chunks: list[Chunk] = []
    if icc:
        chunks.append(iccp_chunk(icc))
    in_exif: dict[str, str] = {}
    if exif:
        chunks.append(exif_chunk(exif))
        in_exif = _exif_place_texts(load_exif(exif))
    for keyword, text in texts:
        if text is None:
            text = in_exif.get(keyword)
            if text is None:
                continue  # the EXIF lost it (an editor rewrote it): nothing to show
        chunks.append(text_chunk(keyword, text))
    return chunks


def _exif_place_texts(tags: ExifTags) -> dict[str, str]:
    """The texts at `EXIF_PLACES` in `tags`, as `embedded_metadata` wrote them."""
    found: dict[str, str] = {}
    ifd0 = tags.ifd0_texts()
    for keyword, tag, label in EXIF_PLACES:
        if tag is None:
            if tags.user_comment is not None:
                found[keyword] = tags.user_comment
        elif ifd0.get(tag, "").startswith(label):
            found[keyword] = ifd0[tag][len(label) :]
    return found


def embedded_metadata(chunks: list[Chunk], output_format: OutputFormat) -> Embedded:
    """Where a WebP, JPEG or AVIF output carries `chunks` (what a PNG output would carry, from
    `output_chunks`): see the module docstring. In a JPEG, whose EXIF must fit one 64 KB
    segment, graphs too big for it stay in XMP only, and XMP too big for one segment continues
    in Extended XMP. Other PNG chunks (sRGB, gAMA, pHYs, tIME...) have no place and are left."""
    icc: bytes | None = None
    base: bytes | None = None
    texts: list[tuple[str, str]] = []
    reader = TextReader()
    for chunk in chunks:
        if chunk.type == b"iCCP" and icc is None:
            try:
                icc = inflate(chunk.data.partition(b"\x00")[2][1:])
            except (zlib.error, InflateLimitError):
                icc = None
        elif chunk.type == b"eXIf" and base is None:
            base = chunk.data.removeprefix(EXIF_HEADER)
        else:
            entry = reader.decode(chunk)[0]
            if entry is not None:
                texts.append((entry.keyword, entry.text))
    first: dict[str, str] = {}
    for keyword, text in texts:
        first.setdefault(keyword, text)

    jpeg = output_format is OutputFormat.JPEG
    places = [place for place in EXIF_PLACES if _fits_exif(place, first.get(place[0]))]
    while True:
        values = [(tag, label + first[k]) for k, tag, label in places]
        exif_bytes = _exif_block(base, values, output_format is not OutputFormat.AVIF)
        if not jpeg or len(EXIF_HEADER) + len(exif_bytes) <= JPEG_SEGMENT_MAX:
            break
        if places:
            places.pop()  # the workflow first, then the prompt, then the parameters
        elif base is not None:
            base = None  # the input's own EXIF alone is too big: only facefix's tags
        else:
            break
    in_exif = {keyword for keyword, _tag, _label in places}
    stored: xmp.Texts = []
    for keyword, text in texts:
        if keyword in in_exif:
            in_exif.discard(keyword)  # only the first of a keyword is the one in EXIF
            stored.append((keyword, None))
        else:
            stored.append((keyword, text))
    packet = xmp.texts_packet(stored)
    extended = None
    if jpeg and len(packet) > XMP_SEGMENT_MAX:
        extended, packet = packet, xmp.extension_pointer(extended_xmp_guid(packet))
    return Embedded(icc=icc, exif=exif_bytes, xmp=packet, extended_xmp=extended)


def _exif_block(
    base: bytes | None, values: list[tuple[int | None, str]], orientation_tag: bool = True
) -> bytes:
    """The TIFF structure of the output's EXIF: `base` (the input's, where piexif reads it)
    with Orientation 1 and each (IFD0 tag, text) of `values`, a tag of None meaning the Exif
    IFD's UserComment. Written with piexif, as A1111 writes it, so UserComment is UNDEFINED
    (Pillow would write bytes of a tag it has no type for as BYTE, which piexif, and so
    A1111's reader, loads as a tuple of numbers). Without `orientation_tag` (AVIF, whose
    orientation is its own irot/imir boxes: none is upright) the tag is left out: Pillow's AVIF
    writer would otherwise move it there and write the EXIF again itself, in that BYTE way."""
    import piexif

    tags: dict = {"0th": {}, "Exif": {}}
    if base is not None:
        try:
            tags = piexif.load(base)
            tags.pop("thumbnail", None)
            tags.pop("1st", None)
        except Exception:  # piexif raises many types on EXIF it cannot parse: start afresh
            tags = {"0th": {}, "Exif": {}}
    tags.setdefault("0th", {})[ORIENTATION] = 1  # the pixels were turned upright when read
    if not orientation_tag:
        del tags["0th"][ORIENTATION]
    for tag, text in values:
        if tag is None:
            tags.setdefault("Exif", {})[USER_COMMENT] = b"UNICODE\x00" + text.encode("utf-16-be")
        else:
            tags["0th"][tag] = text.encode("ascii")
    try:
        return bytes(piexif.dump(tags)).removeprefix(EXIF_HEADER)
    except Exception:  # a tag of the input piexif cannot write back: only facefix's own
        if base is None:
            raise
        return _exif_block(None, values, orientation_tag)


def _fits_exif(place: tuple[str, int | None, str], text: str | None) -> bool:
    """Whether `text` can sit at `place` unchanged: IFD0 tags are ASCII and end at a NUL."""
    if text is None:
        return False
    if place[1] is None:
        try:
            text.encode("utf-16-be")  # a lone surrogate (from a broken chunk) does not
        except UnicodeEncodeError:
            return False
        return True
    return text.isascii() and "\x00" not in text
