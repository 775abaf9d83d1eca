"""What `facefix info` shows: a record as (label, text) rows, chunks as rows, JSON objects.
Pure functions over the metadata library's results; the CLI prints them."""

from __future__ import annotations

import json
import struct
from dataclasses import asdict, dataclass
from typing import Any

from facefix_cli.io.pngchunks import Chunk
from facefix_cli.metadata import Generation, InfoResult, Pass
from facefix_cli.metadata.containers.pngtext import TextReader
from facefix_cli.operations import Operation


def record_rows(record: Generation) -> list[tuple[str, str]]:
    """(label, text) pairs describing a record for display; empty fields are left out."""
    rows: list[tuple[str, str]] = []
    if record.tool is not None:
        tool = record.tool
        if record.tool_version and not record.tool_version.startswith(record.tool):
            tool += f" {record.tool_version}"
        elif record.tool_version:
            tool = record.tool_version  # "Fooocus v2.5.5", not "Fooocus Fooocus v2.5.5"
        rows.append(("Tool", tool))
    cfg = f"{record.cfg:g}" if record.cfg is not None else None
    for label, value in (
        ("Prompt", record.prompt),
        ("Negative prompt", record.negative_prompt),
        ("Seed", record.seed),
        ("Steps", record.steps),
        ("Sampler", record.sampler),
        ("CFG scale", cfg),
        ("Size", _size(record.width, record.height)),
        ("Model", record.model),
    ):
        if value not in (None, ""):
            rows.append((label, str(value)))
    if record.passes:
        rows.append(("Further passes", "\n".join(describe_pass(p) for p in record.passes)))
    if record.stealth:
        rows.append(("Hidden in pixels", record.stealth))
    if record.postprocessing:
        history = "\n".join(_describe_entry(entry) for entry in record.postprocessing)
        rows.append(("Post-processing", history))
    if record.facefix:
        rows.append(("facefix runs", "\n".join(describe_facefix_record(r) for r in record.facefix)))
    if record.sources:
        rows.append(("Read from", ", ".join(record.sources)))
    if record.problems:
        rows.append(("Problems", "\n".join(record.problems)))
    return rows


def _size(width: int | None, height: int | None) -> str | None:
    return f"{width}x{height}" if width and height else None


def describe_pass(step: Pass) -> str:
    parts = [
        f"{label} {value}"
        for label, value in (
            ("seed", step.seed),
            ("steps", step.steps),
            ("sampler", step.sampler),
            ("CFG", f"{step.cfg:g}" if step.cfg is not None else None),
            ("size", _size(step.width, step.height)),
            ("model", step.model),
        )
        if value is not None
    ]
    return ", ".join(parts) or "no settings recorded"


def _describe_entry(entry: dict) -> str:
    return ", ".join(f"{key}: {value}" for key, value in entry.items())


def _face_choices(operation: dict) -> list[str]:
    """A restoration's face choices and skipped faces, as `Operation.face_choices` words them;
    nothing for a record that does not parse as one."""
    try:
        return Operation.from_json(operation).face_choices()
    except (TypeError, ValueError, KeyError):
        return []


def describe_facefix_record(record: dict) -> str:
    """One line per facefix run: version, then each operation with its settings."""
    version = record.get("facefix_version") or record.get("version")
    operations = record.get("operations")
    if not isinstance(operations, list):
        return json.dumps(record, sort_keys=True)
    described = []
    for operation in operations:
        if not isinstance(operation, dict):
            continue
        name = str(operation.get("type", "?"))
        if operation.get("version"):
            name += f" {operation['version']}"
        settings = [
            f"{key} {operation[key]}"
            for key in ("scale", "strength", "fidelity", "model", "architecture")
            if operation.get(key) is not None
        ]
        settings.extend(_face_choices(operation))
        if operation.get("size") is not None:  # a --restorer model's crop size
            settings.append(f"crops {operation['size']} px")
        described.append(f"{name} ({', '.join(settings)})")
    prefix = f"facefix {version}: " if version else ""
    return prefix + ("; ".join(described) or "no operations")


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
