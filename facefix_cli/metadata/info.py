"""`facefix info`'s library side: each file's generation record, read from its metadata
chunks and any settings hidden in its pixels, with its pixel size; or why it could not be
read. Nothing is printed (the CLI shows the rows `Generation.rows()` gives)."""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from facefix_cli.errors import ImageError, PngFormatError, UnsupportedImageError
from facefix_cli.io.files import read_bytes
from facefix_cli.io.formats import EXTENSIONS, sniff
from facefix_cli.io.header import image_dimensions
from facefix_cli.io.orientation import orientation
from facefix_cli.io.pngchunks import Chunk
from facefix_cli.metadata.carry import chunks_from_bytes
from facefix_cli.metadata.containers.stealth import StealthPayload, read_stealth
from facefix_cli.metadata.generation import Generation
from facefix_cli.metadata.read import parse_generation


def _pixels_stealth(data: bytes) -> tuple[StealthPayload | None, str | None]:
    """Stealth info of an encoded PNG or WebP (JPEG is lossy: it cannot keep low bits)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            if image.mode not in ("RGB", "RGBA", "P", "LA", "L"):
                return None, None  # 16-bit and other modes: the tools write 8-bit only
            pixels = np.asarray(image.convert("RGBA"))
    except Exception as error:  # decoders raise many types; the record is still shown
        return None, f"pixels not read for stealth info ({type(error).__name__}: {error})"
    return read_stealth(np.ascontiguousarray(pixels[:, :, :3]), pixels[:, :, 3])


@dataclass
class InfoResult:
    """One file for `facefix info`: its record and chunks, or why it could not be read."""

    path: Path
    format: str | None = None  # "PNG", "JPEG" or "WebP"
    record: Generation | None = None
    # The PNG's own chunks; for JPEG and WebP, the PNG chunks `fix` would carry their metadata in.
    chunks: list[Chunk] = field(default_factory=list)
    error: str | None = None
    pixels: tuple[int, int] | None = None  # the image's own width and height, from its header

    def rows(self) -> list[tuple[str, str]]:
        """The record's rows (`Generation.rows`, with the pixel size) and its history."""
        if self.record is None:
            return []
        return [*self.record.rows(self.pixels), *self.record.history_rows()]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: path, format, pixel size and record, or path and error."""
        if self.record is None:
            return {"path": str(self.path), "error": self.error}
        pixels = None
        if self.pixels is not None:
            pixels = {"width": self.pixels[0], "height": self.pixels[1]}
        return {
            "path": str(self.path),
            "format": self.format,
            "pixels": pixels,
            "record": self.record.to_dict(),
        }


def _upright_size(size: tuple[int, int] | None, chunks: list[Chunk]) -> tuple[int, int] | None:
    """The size as viewers show the image: EXIF Orientation 5-8 turns it a quarter."""
    exif = next((chunk for chunk in chunks if chunk.type == b"eXIf"), None)
    if size is not None and exif is not None and orientation(exif.data) >= 5:
        return size[1], size[0]
    return size


def expand(paths: Iterable[Path]) -> Iterator[Path]:
    """`paths` in order, each folder replaced by the images below it (PNG, JPEG and WebP by
    their names; hidden files and folders left out), sorted; files, missing paths and folders
    without images as given (`info` says why a path cannot be read)."""
    suffixes = {f".{ext}" for ext in EXTENSIONS}
    for path in paths:
        path = Path(path)
        if not path.is_dir():
            yield path
            continue
        found = []
        for root, dirs, files in os.walk(path):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            found += [
                Path(root) / name
                for name in files
                if not name.startswith(".") and Path(name).suffix.lower() in suffixes
            ]
        yield from sorted(found) if found else [path]  # an empty folder: `info` says so


def info(paths: Iterable[Path]) -> list[InfoResult]:
    """The generation record of each file, in order (a folder: the images below it), with
    stealth info read from its pixels; a file that cannot be read gets an error message
    instead and the others are still read."""
    results = []
    for path in expand(paths):
        if path.is_dir():
            results.append(InfoResult(path, error="no PNG, JPEG or WebP images in this folder"))
            continue
        try:
            data = read_bytes(path)
            chunks = chunks_from_bytes(data)
        except ImageError as error:
            results.append(InfoResult(path, error=str(error)))
        except (PngFormatError, UnsupportedImageError) as error:
            results.append(InfoResult(path, error=str(error)))
        else:
            stealth, problem = (None, None) if sniff(data) == "JPEG" else _pixels_stealth(data)
            record = parse_generation(chunks, stealth=stealth)
            if problem:
                record.problems.append(problem)
            pixels = _upright_size(image_dimensions(data), chunks)
            results.append(InfoResult(path, sniff(data) or "WebP", record, chunks, pixels=pixels))
    return results
