"""PNG text chunks as (keyword, text) entries, decoded in linear time within fixed limits.

Limits (each breach is named in the record's problems; the chunks themselves are still carried
into the output byte for byte, only not read):

- one compressed chunk inflates to at most `TEXT_INFLATE_LIMIT` (32 MiB); past that it is not
  inflated at all, so a 1 MB chunk that would inflate to 1 GiB costs 32 MiB at most;
- all compressed chunks of one file inflate to at most `TOTAL_INFLATE_LIMIT` (64 MiB) together;
- at most `MAX_TEXT_CHUNKS` (1,000) text chunks of a file are read.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from facefix_cli.errors import InflateLimitError
from facefix_cli.io.pngchunks import TEXT_INFLATE_LIMIT, Chunk, inflate

TOTAL_INFLATE_LIMIT = 64 * 1024 * 1024
MAX_TEXT_CHUNKS = 1000
TEXT_TYPES = (b"tEXt", b"zTXt", b"iTXt")


@dataclass(frozen=True)
class TextEntry:
    keyword: str
    text: str


def decode_latin1_text(body: bytes) -> str:
    """tEXt/zTXt are Latin-1 by the PNG spec, but some writers put UTF-8 there; text that is
    valid UTF-8 with non-ASCII bytes is almost never intended Latin-1, so read it as UTF-8."""
    if body.isascii():
        return body.decode("ascii")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return body.decode("latin-1")


class TextReader:
    """Decodes the text chunks of one file, keeping count of what the limits allow."""

    def __init__(self) -> None:
        self.chunks_read = 0
        self.inflate_budget = TOTAL_INFLATE_LIMIT
        self.over_count = False

    def decode(self, chunk: Chunk) -> tuple[TextEntry | None, str | None]:
        """(entry, problem) for a text chunk; (None, None) for other chunks."""
        if chunk.type not in TEXT_TYPES:
            return None, None
        if self.chunks_read >= MAX_TEXT_CHUNKS:
            if self.over_count:
                return None, None
            self.over_count = True
            return None, (
                f"more than {MAX_TEXT_CHUNKS} text chunks: the rest are not read "
                "(they are still kept in the output)"
            )
        self.chunks_read += 1
        kind = chunk.type.decode("ascii")
        keyword_bytes, sep, rest = chunk.data.partition(b"\x00")
        keyword = keyword_bytes.decode("latin-1")
        if not sep:
            return None, f"{kind} chunk {keyword[:40]!r}: no keyword separator, not readable"
        try:
            if chunk.type == b"tEXt":
                return TextEntry(keyword, decode_latin1_text(rest)), None
            if chunk.type == b"zTXt":
                return TextEntry(keyword, decode_latin1_text(self._inflate(rest[1:]))), None
            compressed = rest[0]
            _language, _, rest = rest[2:].partition(b"\x00")
            _translated, _, body = rest.partition(b"\x00")
            if compressed:
                body = self._inflate(body)
            try:
                return TextEntry(keyword, body.decode("utf-8")), None
            except UnicodeDecodeError:
                problem = f"iTXt {keyword!r}: text is not valid UTF-8 (bad bytes shown as \ufffd)"
                return TextEntry(keyword, body.decode("utf-8", errors="replace")), problem
        except InflateLimitError as error:
            return None, f"{kind} {keyword!r}: {error}; not read (kept in the output unchanged)"
        except (zlib.error, IndexError):
            return None, f"{kind} {keyword!r}: truncated or corrupt, not readable"

    def _inflate(self, data: bytes) -> bytes:
        limit = min(TEXT_INFLATE_LIMIT, self.inflate_budget)
        if limit <= 0:
            raise InflateLimitError(
                f"compressed text of this file inflates past {TOTAL_INFLATE_LIMIT >> 20} MiB"
            )
        out = inflate(data, limit)
        self.inflate_budget -= len(out)
        return out
