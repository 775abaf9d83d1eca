"""`errors`: one root. Every error a user's file can cause is a FacefixError with its exit code."""

from __future__ import annotations

import pytest

from facefix_cli.errors import (
    EXIT_FAILED,
    FacefixError,
    ImageError,
    PngFormatError,
    UnsupportedImageError,
)
from facefix_cli.io.pngchunks import parse_chunks
from facefix_cli.metadata import chunks_from_bytes


@pytest.mark.parametrize("error", [PngFormatError, UnsupportedImageError])
def test_format_errors_are_under_the_root_and_still_value_errors(error: type) -> None:
    assert issubclass(error, ImageError) and issubclass(error, FacefixError)
    assert issubclass(error, ValueError)  # parsers of bytes raise ValueErrors
    assert error("x").exit_code == EXIT_FAILED


def test_a_user_file_that_is_no_image_raises_a_facefix_error() -> None:
    with pytest.raises(FacefixError, match="not a PNG, JPEG"):
        chunks_from_bytes(b"GIF89a not ours")
    with pytest.raises(FacefixError, match="truncated"):
        parse_chunks(b"\x89PNG\r\n\x1a\n\x00\x00")
