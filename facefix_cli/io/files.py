"""Reading a file's bytes, with the one wording facefix uses for each OS error, whichever
command meets it (`fix`, `info`, `report`).

Files are opened by `safefs.open_input`: a link is followed only where the link-trust rule
allows it, and a file that is not the one the walk saw (given its inode) is refused."""

from __future__ import annotations

import os
from pathlib import Path

from facefix_cli.errors import ImageError
from facefix_cli.io import safefs


def read_bytes(path: Path) -> bytes:
    """The file's bytes; ImageError with a one-line reason when they cannot be read."""
    return read_file(path)[0]


def read_file(path: Path, inode: int | None = None) -> tuple[bytes, os.stat_result]:
    """The file's bytes and the stat of the file read (its mode and owner are the output's);
    ImageError with a one-line reason when they cannot be read or are not to be trusted."""
    try:
        return safefs.read_input(path, inode)
    except FileNotFoundError:
        raise ImageError("no such file") from None
    except IsADirectoryError:
        raise ImageError("is a folder, not an image") from None
    except PermissionError:
        raise ImageError("permission denied") from None
    except OSError as exc:
        if exc.errno == safefs.REPLACED:  # an untrusted link, or not the file the walk saw
            raise ImageError(f"not read: {exc.strerror}") from None
        raise ImageError(f"cannot read: {exc.strerror or exc}") from None
