"""`parse_generation`: the chunks of one image (and any stealth payload in its pixels) to one
`Generation`, by the first tool in `TOOLS` that recognises them. Never raises on bad
input: whatever cannot be understood is listed in `problems`, and the raw text kept in `raw`.
Linear in the size and number of chunks (within the limits of `containers.pngtext`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from facefix_cli.io.pngchunks import Chunk
from facefix_cli.metadata.containers.exif import ExifTags, load_exif
from facefix_cli.metadata.containers.pngtext import TextEntry, TextReader
from facefix_cli.metadata.containers.stealth import StealthPayload
from facefix_cli.metadata.generation import Generation
from facefix_cli.metadata.tools import TOOLS, Texts
from facefix_cli.metadata.tools.base import quote

FACEFIX_KEY = "facefix"


def payload_texts(text: str) -> dict[str, str]:
    """The text chunks a tool would have written for a text blob found outside PNG text
    chunks (an EXIF UserComment, a stealth payload): the first tool that claims it decides."""
    for tool in TOOLS:
        if tool.from_payload is not None:
            found = tool.from_payload(text)
            if found:
                return found
    return {}


def decode_texts(chunks: Iterable[Chunk], problems: list[str]) -> list[TextEntry]:
    reader = TextReader()
    entries = []
    for chunk in chunks:
        entry, problem = reader.decode(chunk)
        if problem:
            problems.append(problem)
        if entry is not None:
            entries.append(entry)
    return entries


def parse_generation(chunks: list[Chunk], *, stealth: StealthPayload | None = None) -> Generation:
    """The generation settings found in `chunks` (a PNG's, or those `chunks_from_bytes` made
    for a JPEG or WebP), and in `stealth`, a payload `find_stealth` read from the pixels."""
    record = Generation()
    entries = decode_texts(chunks, record.problems)

    counts: dict[str, int] = {}
    for entry in entries:
        n = counts.get(entry.keyword, 0) + 1
        counts[entry.keyword] = n
        key = entry.keyword if n == 1 else f"{entry.keyword} ({n})"
        while key in record.raw:  # a literal "k (2)" keyword taken already: rare, short
            n += 1
            key = f"{entry.keyword} ({n})"
        record.raw[key] = entry.text

    first: dict[str, str] = {}
    for entry in entries:
        first.setdefault(entry.keyword, entry.text)
    # Settings outside the text chunks count where the chunks do not have the same keyword.
    origins: dict[str, str] = {}  # keyword -> where a virtual entry came from
    for chunk in chunks:
        if chunk.type == b"eXIf":
            tags = load_exif(chunk.data)
            found = exif_texts(tags)  # may add problems of its own: listed after reading
            record.problems.extend(f"eXIf: {problem}" for problem in tags.problems)
            for keyword, text in found.items():
                if keyword not in first:
                    first[keyword], origins[keyword] = text, "EXIF"
                    if text == tags.user_comment:
                        origins[keyword] = "EXIF UserComment"
            if tags.user_comment:
                record.raw.setdefault("EXIF UserComment", tags.user_comment)
            break
    if stealth is not None:
        record.stealth = stealth.description
        record.raw.setdefault(stealth.signature, stealth.text)
        for keyword, text in payload_texts(stealth.text).items():
            if keyword not in first:
                first[keyword], origins[keyword] = text, stealth.description

    for entry in entries:
        if entry.keyword == FACEFIX_KEY:
            try:
                parsed = json.loads(entry.text)
            except (json.JSONDecodeError, RecursionError) as error:
                record.problems.append(f"{FACEFIX_KEY}: not valid JSON ({error})")
                continue
            if isinstance(parsed, dict):
                record.facefix.append(parsed)

    texts = Texts(first, record.problems)
    for tool in TOOLS:
        try:
            if not tool.detect(texts):
                continue
            record.tool = tool.name
            tool.read(texts, record)
        except Exception as error:  # a reader's bug must not cost the file its record
            record.problems.append(f"{tool.name} reader: {type(error).__name__}: {error}")
        if record.tool is not None:
            break
    for tool in TOOLS:
        if tool.history is not None:
            record.postprocessing.extend(tool.history(texts))
    record.sources = list(dict.fromkeys(origins.get(s, s) for s in record.sources))
    unexplained = not any(p.startswith("parameters:") for p in record.problems)
    if record.tool is None and "parameters" in texts and unexplained:
        record.problems.append(
            "parameters: not a generation record facefix knows (no settings line, or JSON "
            f"of an unknown layout); its text:\n{quote(texts['parameters'])}"
        )
    return record


def exif_texts(tags: ExifTags) -> dict[str, str]:
    """The text chunks the tools would have written for what EXIF holds: tag conventions
    (`from_exif`) first, then the UserComment as a payload. What a tag convention finds
    wrong is added to `tags.problems`."""
    found: dict[str, str] = {}
    for tool in TOOLS:
        if tool.from_exif is not None:
            for keyword, text in tool.from_exif(tags).items():
                found.setdefault(keyword, text)
    if tags.user_comment:
        for keyword, text in payload_texts(tags.user_comment).items():
            found.setdefault(keyword, text)
    return found
