"""Read one input image into float arrays, with its raw metadata chunks and digest."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from facefix.errors import ImageError, UnsupportedImageError
from facefix.io.hashing import sha256_bytes
from facefix.io.pngchunks import Chunk, PngFormatError
from facefix.metadata import chunks_from_bytes


@dataclass(frozen=True)
class SourceImage:
    path: Path
    rgb: np.ndarray  # float32, H x W x 3, [0, 1]
    alpha: np.ndarray | None  # float32, H x W, [0, 1]; None when the input has no alpha
    bit_depth: int  # 8 or 16: the output is written at the same depth
    chunks: list[Chunk]  # the input's raw PNG chunks (or PNG chunks made from JPEG/WebP metadata)
    sha256: str  # of the input file's bytes

    @property
    def size(self) -> tuple[int, int]:
        return self.rgb.shape[1], self.rgb.shape[0]


def read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ImageError("file vanished before it could be read") from None
    except IsADirectoryError:
        raise ImageError("is a folder, not an image") from None
    except PermissionError:
        raise ImageError("permission denied") from None
    except OSError as exc:
        raise ImageError(f"cannot read: {exc.strerror or exc}") from None


def decode_pixels(data: bytes) -> tuple[np.ndarray, np.ndarray | None, int]:
    """(rgb, alpha, bit_depth) from encoded bytes; greyscale and palette become RGB."""
    array = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if array is None or array.size == 0:
        raise ImageError("cannot decode the image data (corrupt or unsupported)")
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


def read_image(path: Path) -> SourceImage:
    """Decode `path`; every problem becomes an ImageError with a one-line reason."""
    data = read_bytes(path)
    try:
        chunks = chunks_from_bytes(data)  # also rejects anything not PNG, JPEG or WebP
    except (PngFormatError, UnsupportedImageError) as exc:
        raise ImageError(str(exc)) from None
    rgb, alpha, bit_depth = decode_pixels(data)
    return SourceImage(path, rgb, alpha, bit_depth, chunks, sha256_bytes(data))
