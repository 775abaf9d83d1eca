"""What every tool module provides (`ToolFormat`) and what it reads from (`Texts`)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from facefix_cli.metadata.containers.exif import ExifTags
from facefix_cli.metadata.generation import Generation
from facefix_cli.operations import Operation

_PROBLEM_TEXT_CHARS = 2000  # raw text quoted in a problem stops here; `info --raw` shows all


class Texts:
    """A file's text entries by keyword (the first of a repeated keyword wins), with JSON
    parsed at most once per keyword and JSON problems recorded once."""

    def __init__(self, first: Mapping[str, str], problems: list[str] | None = None) -> None:
        self._first = dict(first)
        self._json: dict[str, Any] = {}
        self.problems = problems if problems is not None else []

    def __contains__(self, keyword: object) -> bool:
        return keyword in self._first

    def get(self, keyword: str, default: str | None = None) -> str | None:
        return self._first.get(keyword, default)

    def __getitem__(self, keyword: str) -> str:
        return self._first[keyword]

    def keys(self) -> list[str]:
        return list(self._first)

    def json(self, keyword: str) -> Any:
        """The entry parsed as JSON; None (and one problem quoting the text) if it is not JSON.
        Only entries that look like a JSON object or list are parsed."""
        if keyword not in self._json:
            text = self._first.get(keyword)
            value = None
            if text is not None and looks_like_json(text):
                try:
                    value = json.loads(text)
                except (json.JSONDecodeError, RecursionError) as error:
                    self.problems.append(
                        f"{keyword}: not valid JSON ({error}); its text:\n{quote(text)}"
                    )
            self._json[keyword] = value
        return self._json[keyword]


def looks_like_json(text: str) -> bool:
    return text.lstrip()[:1] in ("{", "[")


def json_object(text: str) -> dict[str, Any] | None:
    """`text` parsed as a JSON object; None when it is not one (not JSON, a list, too deep)."""
    if not looks_like_json(text):
        return None
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def quote(text: str) -> str:
    if len(text) <= _PROBLEM_TEXT_CHARS:
        return text
    return text[:_PROBLEM_TEXT_CHARS] + f"… ({len(text) - _PROBLEM_TEXT_CHARS} more characters)"


@dataclass
class Extension:
    """How a tool records facefix's operations in its own chunks: new text for existing
    keywords, and new chunks to insert after a keyword (keyword after, new keyword, text)."""

    rewrite: dict[str, str] = field(default_factory=dict)
    add_after: list[tuple[str, str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class ToolFormat:
    """One tool's knowledge of its metadata, as data the readers and writers dispatch on.

    `detect` says whether the texts hold this tool's record; `read` fills the record (it may
    refine `record.tool`, e.g. "Forge" for the A1111 family). `from_payload` turns a text blob
    found outside PNG text chunks (an EXIF UserComment, a stealth payload) into the text chunks
    the tool would have written to a PNG; `from_exif` does the same for EXIF tags (noting in
    the tags' `problems` what it finds wrong). `extend`
    records facefix's operations in the tool's own form. `history` reads the post-processing
    record the tool keeps in its own chunks; it is read whichever tool made the image, since
    facefix adds A1111's beside any `parameters` (e.g. next to a ComfyUI graph).
    """

    name: str
    keywords: tuple[str, ...]
    detect: Callable[[Texts], bool]
    read: Callable[[Texts, Generation], None]
    from_payload: Callable[[str], dict[str, str] | None] | None = None
    from_exif: Callable[[ExifTags], dict[str, str]] | None = None
    extend: Callable[[Texts, Sequence[Operation]], Extension] | None = None
    history: Callable[[Texts], list[dict]] | None = None
