"""Reading a file's bytes, with the one wording facefix uses for each OS error, whichever
command meets it (`fix`, `info`, `report`)."""

from __future__ import annotations

from pathlib import Path

from facefix_cli.errors import ImageError


def read_bytes(path: Path) -> bytes:
    """The file's bytes; ImageError with a one-line reason when they cannot be read."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ImageError("no such file") from None
    except IsADirectoryError:
        raise ImageError("is a folder, not an image") from None
    except PermissionError:
        raise ImageError("permission denied") from None
    except OSError as exc:
        raise ImageError(f"cannot read: {exc.strerror or exc}") from None
