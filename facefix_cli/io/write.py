"""Encode the result as PNG with its metadata chunks, and put it in place atomically."""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

import cv2
import numpy as np

from facefix_cli.errors import ImageError, OutputWriteError
from facefix_cli.io import safefs
from facefix_cli.io.defaults import DEFAULT_PNG_LEVEL
from facefix_cli.io.names import display_path, temporary_path
from facefix_cli.io.pngchunks import Chunk, with_chunks

QUANTIZE_BAND = 1 << 20  # values per float temporary in `quantize`: 4 MiB, whatever the image


def quantize(pixels: np.ndarray, bit_depth: int) -> np.ndarray:
    """Float pixels in [0, 1] (rows first) as 8- or 16-bit integers in C order, rounded to
    nearest. Done in bands of rows, so the float temporary stays small: on an 8192 px output
    one for the whole image would be 768 MiB."""
    maximum = 65535 if bit_depth == 16 else 255
    out = np.empty(pixels.shape, dtype=np.uint16 if bit_depth == 16 else np.uint8)
    rows = max(1, QUANTIZE_BAND // max(1, pixels[:1].size))
    for top in range(0, len(pixels), rows):
        band = pixels[top : top + rows]
        scaled = np.multiply(band, maximum, dtype=np.result_type(band.dtype, np.float32))
        np.rint(scaled, out=scaled)
        out[top : top + rows] = np.clip(scaled, 0, maximum, out=scaled)
    return out


def encode_png(
    rgb: np.ndarray,
    alpha: np.ndarray | None,
    bit_depth: int,
    chunks: list[Chunk],
    level: int = DEFAULT_PNG_LEVEL,
) -> bytes:
    """PNG bytes of float RGB (and alpha) at `bit_depth`, carrying `chunks` after IHDR,
    compressed at zlib `level` (0-9)."""

    planes = rgb[:, :, ::-1] if alpha is None else np.dstack([rgb[:, :, ::-1], alpha])
    ok, encoded = cv2.imencode(
        ".png", quantize(planes, bit_depth), [cv2.IMWRITE_PNG_COMPRESSION, level]
    )
    if not ok:
        raise ImageError("PNG encoding failed")
    return with_chunks(encoded.data, chunks)  # the encoder's own buffer, not a copy


def write_atomic(
    path: Path,
    data: bytes,
    *,
    mode: int = 0o666,
    owner: tuple[int, int] | None = None,
    folder: tuple[int, int] | None = None,
    sync: bool = True,
) -> None:
    """Write to a new temporary file in the same folder, flush it to disk, then rename into
    place, so a crash, a full disk or Ctrl-C never leaves a half-written file under the final
    name. The temporary file is made by `safefs.create_exclusive` under a name nobody can
    guess, so no link planted in the folder can redirect the write; the folder is opened once
    and the file made and renamed through that descriptor, so a folder swapped for a link
    meanwhile cannot either.

    `mode`: the new file's permission bits, masked by the umask (pass an input's bits: the
    output is then no more readable than it, as `cp` does). `owner`: (uid, gid) given to the
    file before it has any bytes or its name (root only). `folder`: the (st_dev, st_ino) the
    folder must have; another folder (swapped since it was checked) is refused (ELOOP).
    `sync=False` skips the flush to disk (for files rewritten on every run, such as thumbnails).
    Errors are OutputWriteError with the OS errno, so callers can tell a full disk from a bad
    name; the temporary file is removed on every path out."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputWriteError(
            f"cannot create output folder {display_path(path.parent)}: {exc.strerror}", exc.errno
        ) from None
    temporary = temporary_path(path).name
    dir_fd: int | None = None
    created = False
    try:
        dir_fd = safefs.open_folder(path.parent)
        if folder is not None:
            st = os.fstat(dir_fd)
            if (st.st_dev, st.st_ino) != folder:
                raise safefs.replaced("folder", path.parent)
        fd = safefs.create_exclusive(temporary, mode & 0o777, dir_fd=dir_fd)
        created = True
        with open(fd, "wb") as fh:
            if owner is not None:
                os.fchown(fd, *owner)
            fh.write(data)
            fh.flush()
            if sync:
                os.fsync(fd)
        os.replace(temporary, path.name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        created = False
    except OSError as exc:
        reason = "disk full" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))
        raise OutputWriteError(f"cannot write {display_path(path)}: {reason}", exc.errno) from None
    finally:
        # Never raise from here: a failed open leaves nothing, and a second error would hide
        # the first (a read-only folder refuses the unlink too).
        if dir_fd is not None:
            if created:
                with contextlib.suppress(OSError):
                    os.unlink(temporary, dir_fd=dir_fd)
            os.close(dir_fd)
