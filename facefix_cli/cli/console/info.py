"""What `facefix info` shows: a record as (label, text) rows, chunks as rows, JSON objects.
Pure functions over the metadata library's results; the CLI prints them."""

from __future__ import annotations

import struct
from dataclasses import asdict, dataclass
from typing import Any

from facefix_cli.io.pngchunks import Chunk
from facefix_cli.metadata import Generation, InfoResult
from facefix_cli.metadata.containers.pngtext import TextReader


def record_rows(record: Generation, pixels: tuple[int, int] | None = None) -> list[tuple[str, str]]:
    """(label, text) rows of a record for display: its settings (`Generation.rows`, the one
    rendering the report shares) and its history."""
    return [*record.rows(pixels), *record.history_rows()]


@dataclass
class ChunkRow:
    """One line of `facefix info --raw`."""

    type: str
    keyword: str  # empty for chunks that are not text
    length: int  # bytes of chunk data (summed over a run of IDAT chunks)
    preview: str  # the start of the text, or a short description of binary data
    count: int = 1  # how many chunks the row stands for (a run of IDAT is one row)
    text: str | None = None  # the whole text of a text chunk


def chunk_rows(chunks: list[Chunk], preview_chars: int = 60) -> list[ChunkRow]:
    """A row per chunk for `--raw`; consecutive IDAT chunks share one row."""
    rows: list[ChunkRow] = []
    reader = TextReader()
    for chunk in chunks:
        kind = chunk.type.decode("latin-1")
        if kind == "IDAT" and rows and rows[-1].type == "IDAT":
            rows[-1].count += 1
            rows[-1].length += len(chunk.data)
            rows[-1].preview = f"image data, {rows[-1].count} chunks"
            continue
        entry, problem = reader.decode(chunk)
        if entry:
            preview = entry.text[: preview_chars * 4]
        elif problem:
            preview = problem
        elif kind == "IDAT":
            preview = "image data"
        elif kind == "IHDR" and len(chunk.data) == 13:
            width, height, depth, colour = struct.unpack(">IIBB", chunk.data[:10])
            preview = f"{width}x{height}, {depth}-bit, colour type {colour}"
        else:
            preview = chunk.data[:16].hex(" ")
        preview = preview.replace("\n", "\\n")
        if len(preview) > preview_chars:
            preview = preview[: preview_chars - 1] + "…"
        keyword = entry.keyword if entry else ""
        text = entry.text if entry else None
        rows.append(ChunkRow(kind, keyword, len(chunk.data), preview, text=text))
    return rows


def info_json(result: InfoResult, *, include_chunks: bool = False) -> dict[str, Any]:
    """`info --json`: path and record (or error); with `include_chunks`, every chunk too,
    text chunks with their whole text."""
    data = result.to_dict()
    if include_chunks and result.record is not None:
        data["chunks"] = [asdict(row) for row in chunk_rows(result.chunks)]
    return data
