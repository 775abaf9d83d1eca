"""`errors`: one root. Every error a user's file can cause is a FacefixError with its exit code."""

from __future__ import annotations

import zlib

import pytest

from facefix_cli.errors import (
    EXIT_FAILED,
    FacefixError,
    ImageError,
    InflateLimitError,
    PngFormatError,
    UnsupportedImageError,
)
from facefix_cli.io.pngchunks import (
    TEXT_INFLATE_LIMIT,
    Chunk,
    decode_text_chunk,
    inflate,
    parse_chunks,
)
from facefix_cli.metadata import chunks_from_bytes
from facefix_cli.metadata.containers.pngtext import TextReader


@pytest.mark.parametrize("error", [PngFormatError, UnsupportedImageError, InflateLimitError])
def test_format_errors_are_under_the_root_and_still_value_errors(error: type) -> None:
    assert issubclass(error, ImageError) and issubclass(error, FacefixError)
    assert issubclass(error, ValueError)  # parsers of bytes raise ValueErrors
    assert error("x").exit_code == EXIT_FAILED


def test_a_user_file_that_is_no_image_raises_a_facefix_error() -> None:
    with pytest.raises(FacefixError, match="not a PNG, JPEG"):
        chunks_from_bytes(b"GIF89a not ours")
    with pytest.raises(FacefixError, match="truncated"):
        parse_chunks(b"\x89PNG\r\n\x1a\n\x00\x00")


def test_text_over_the_inflate_limit_raises_under_the_root_and_readers_catch_it() -> None:
    body = zlib.compress(b"0" * 4096)
    with pytest.raises(FacefixError, match="inflates past"):
        inflate(body, limit=1024)
    assert inflate(body, limit=4096) == b"0" * 4096
    # the readers leave such text unread: no exception reaches the caller
    reader = TextReader()
    reader.inflate_budget = 1024
    entry, problem = reader.decode(Chunk(b"zTXt", b"parameters\x00\x00" + body))
    assert entry is None and problem is not None and "inflates past" in problem
    bomb = zlib.compress(bytes(TEXT_INFLATE_LIMIT + 1))
    assert decode_text_chunk(Chunk(b"zTXt", b"parameters\x00\x00" + bomb)) is None
