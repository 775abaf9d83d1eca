"""Read one input image into float arrays, with its raw metadata chunks and digest.

Which chunks a file holds is metadata's business (a PNG's own, or those made from a JPEG's or
WebP's EXIF and XMP): the caller hands `read_image` the function that finds them
(`pipeline.file.read_job` passes `metadata.chunks_from_bytes`), so this floor imports nothing
above it.

Guarantees: every problem with the file is an ImageError with a one-line reason (decoder
messages included, never printed); an image whose header declares more pixels than the limit is
refused before any pixel memory is allocated.
Decoder messages are caught through `io.stderr` (see there for what a program that logs from
other threads meanwhile must call first)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from facefix_cli.errors import AnimatedImage, ImageError, UnsupportedImageError
from facefix_cli.io.files import read_file
from facefix_cli.io.hashing import sha256_bytes
from facefix_cli.io.header import DEFAULT_MAX_PIXELS, animation_frames, image_dimensions
from facefix_cli.io.orientation import orientation, turn_upright, upright
from facefix_cli.io.pngchunks import Chunk, PngFormatError
from facefix_cli.io.stderr import decoder_messages

# A file's bytes to its metadata chunks; PngFormatError or UnsupportedImageError for bytes that
# are no image it reads (`metadata.chunks_from_bytes`).
ChunkReader = Callable[[bytes], list[Chunk]]


@dataclass(frozen=True)
class SourceImage:
    path: Path
    rgb: np.ndarray  # float32, H x W x 3, [0, 1]
    alpha: np.ndarray | None  # float32, H x W, [0, 1]; None when the input has no alpha
    bit_depth: int  # 8 or 16: the output is written at the same depth
    chunks: list[Chunk]  # the input's raw PNG chunks (or PNG chunks made from JPEG/WebP metadata)
    sha256: str  # of the input file's bytes
    # the file read, as opened (its permission bits and owner are the output's); None when
    # the image did not come from a file
    file_stat: os.stat_result | None = None

    @property
    def size(self) -> tuple[int, int]:
        return self.rgb.shape[1], self.rgb.shape[0]


def decode_pixels(data: bytes) -> tuple[np.ndarray, np.ndarray | None, int]:
    """(rgb, alpha, bit_depth) from encoded bytes; greyscale and palette become RGB."""
    array = None
    error = ""
    with decoder_messages() as messages:
        try:
            array = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        except cv2.error as exc:  # OpenCV's own limits and decoder failures
            error = str(exc).strip().splitlines()[-1] if str(exc).strip() else "cv2.error"
    if array is None or array.size == 0:
        said = next((m for m in messages if "error" in m.lower()), messages[0] if messages else "")
        detail = said or error
        raise ImageError(
            "cannot decode the image data (corrupt or unsupported)"
            + (f": {detail}" if detail else "")
        )
    if array.dtype == np.uint16:
        bit_depth, scale = 16, 65535.0
    elif array.dtype == np.uint8:
        bit_depth, scale = 8, 255.0
    else:
        raise ImageError(f"unsupported sample type {array.dtype}")
    pixels = array.astype(np.float32) / scale
    if pixels.ndim == 2:
        return np.repeat(pixels[:, :, None], 3, axis=2), None, bit_depth
    channels = pixels.shape[2]
    if channels == 1:
        return np.repeat(pixels, 3, axis=2), None, bit_depth
    if channels == 2:  # grey + alpha
        return np.repeat(pixels[:, :, :1], 3, axis=2), pixels[:, :, 1].copy(), bit_depth
    rgb = np.ascontiguousarray(pixels[:, :, 2::-1])  # OpenCV gives BGR(A)
    alpha = pixels[:, :, 3].copy() if channels == 4 else None
    return rgb, alpha, bit_depth


def check_size(data: bytes, max_pixels: int) -> None:
    """Refuse an image whose header declares more than `max_pixels`, before decoding it."""
    dimensions = image_dimensions(data)
    if dimensions is None:
        return  # no recognisable header: the decoder reports the file as corrupt
    width, height = dimensions
    if width == 0 or height == 0:
        raise ImageError(f"the header declares an empty image ({width}x{height})")
    if max_pixels and width * height > max_pixels:
        raise ImageError(
            f"{width}x{height} is {width * height / 1e6:.0f} megapixels, over the "
            f"--max-pixels limit of {max_pixels / 1e6:.0f} megapixels"
        )


def read_image(
    path: Path,
    chunks_of: ChunkReader,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    *,
    inode: int | None = None,
) -> SourceImage:
    """Decode `path`, with the metadata chunks `chunks_of` finds in its bytes, turned upright
    by its EXIF Orientation (the chunks then say 1); every problem becomes an ImageError with a
    one-line reason. Images whose header declares more than `max_pixels` (0: no limit) are
    refused before decoding, and animations (AnimatedImage) before decoding their first frame.
    The file is opened as `io.files.read_file` says (`inode`: the one the walk saw; another
    file is refused)."""
    data, file_stat = read_file(path, inode)
    try:
        chunks = chunks_of(data)  # also rejects anything it does not read
    except (PngFormatError, UnsupportedImageError) as exc:
        raise ImageError(str(exc)) from None
    check_size(data, max_pixels)
    frames = animation_frames(data)
    if frames is not None:
        raise AnimatedImage(f"animated image ({frames} frames); facefix fixes still images")
    rgb, alpha, bit_depth = decode_pixels(data)
    rgb, alpha, chunks = _upright(rgb, alpha, chunks)
    return SourceImage(path, rgb, alpha, bit_depth, chunks, sha256_bytes(data), file_stat)


def _upright(
    rgb: np.ndarray, alpha: np.ndarray | None, chunks: list[Chunk]
) -> tuple[np.ndarray, np.ndarray | None, list[Chunk]]:
    """The pixels as a viewer shows them (EXIF Orientation applied: faces are found upright),
    and the chunks with Orientation set to 1 to match. Decoders leave the tag to the viewer."""
    for index, chunk in enumerate(chunks):
        if chunk.type == b"eXIf" and (value := orientation(chunk.data)) != 1:
            rgb = np.ascontiguousarray(turn_upright(rgb, value))
            if alpha is not None:
                alpha = np.ascontiguousarray(turn_upright(alpha, value))
            fixed = Chunk(b"eXIf", upright(chunk.data))
            return rgb, alpha, [*chunks[:index], fixed, *chunks[index + 1 :]]
    return rgb, alpha, chunks
