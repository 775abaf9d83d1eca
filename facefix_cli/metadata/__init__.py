"""Generation metadata: what the input carries, and what the output carries on.

Reading: `parse_generation` turns the text chunks (tEXt, zTXt, iTXt), EXIF and any stealth
payload of an image into one `Generation`, whichever tool wrote them; `info` does so for
files. Writing: `output_chunks` carries every metadata chunk of the input into the output byte
for byte, except where a tool's own format records what facefix did (InvokeAI's
`sd-metadata` post-processing list, A1111's `postprocessing` chunk); facefix's own iTXt record
comes last.

Layout: `containers/` (PNG text, EXIF, JPEG/WebP segments, stealth pixels: where metadata
sits), `tools/` (one module per tool: detection, reading, write-back; registered in
`tools.TOOLS`), `read.py` and `carry.py` (the dispatch over that table). The `info` display is
the CLI's (`facefix_cli.cli.console.info`).
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from facefix_cli.errors import ImageError, PngFormatError, UnsupportedImageError
from facefix_cli.io.files import read_bytes
from facefix_cli.io.formats import sniff
from facefix_cli.io.pngchunks import Chunk
from facefix_cli.metadata.carry import (
    XMP_KEY,
    chunks_for_foreign_image,
    chunks_from_bytes,
    embedded_metadata,
    output_chunks,
)
from facefix_cli.metadata.containers.exif import decode_user_comment
from facefix_cli.metadata.containers.stealth import (
    SIGNATURE_BITS,
    StealthPayload,
    embed_alpha,
    has_signature,
    read_stealth,
)
from facefix_cli.metadata.generation import Generation, Pass
from facefix_cli.metadata.read import FACEFIX_KEY, parse_generation
from facefix_cli.metadata.tools.a1111 import (
    a1111_postprocessing_text,
    a1111_settings,
    parse_a1111_parameters,
)
from facefix_cli.metadata.tools.invokeai import extend_sd_metadata

__all__ = [
    "FACEFIX_KEY",
    "XMP_KEY",
    "Generation",
    "InfoResult",
    "Pass",
    "PngFormatError",
    "StealthPayload",
    "UnsupportedImageError",
    "a1111_postprocessing_text",
    "a1111_settings",
    "chunks_for_foreign_image",
    "chunks_from_bytes",
    "decode_user_comment",
    "embed_alpha",
    "embedded_metadata",
    "extend_sd_metadata",
    "find_stealth",
    "stealth_in_pixels",
    "stealth_written_back",
    "info",
    "output_chunks",
    "parse_a1111_parameters",
    "parse_generation",
]


def find_stealth(
    rgb: np.ndarray | None, alpha: np.ndarray | None
) -> tuple[StealthPayload | None, str | None]:
    """(payload, problem) of settings hidden in 8-bit pixels (uint8 arrays: `rgb` H x W x 3,
    `alpha` H x W). Other sample types never carry them: (None, None)."""
    return read_stealth(rgb, alpha)


def stealth_in_pixels(
    rgb: np.ndarray, alpha: np.ndarray | None, bit_depth: int
) -> StealthPayload | None:
    """The stealth payload of decoded float pixels in [0, 1] (as `io.read` gives them); only
    8-bit images carry one. A damaged payload is ignored here (`info` reports it)."""
    if bit_depth != 8:
        return None
    columns = -(-SIGNATURE_BITS // rgb.shape[0])  # the columns that hold the signature

    def quantized(pixels: np.ndarray) -> np.ndarray:
        return np.clip(np.rint(pixels * 255), 0, 255).astype(np.uint8)

    # Test the signature's few columns first: most images carry nothing, and quantizing the
    # whole image for nothing would cost about as much as decoding it.
    if alpha is not None and has_signature(None, quantized(alpha[:, :columns])):
        found, _problem = read_stealth(None, quantized(alpha))
        if found is not None:
            return found
    if has_signature(quantized(rgb[:, :columns]), None):
        return read_stealth(quantized(rgb), None)[0]
    return None


def stealth_written_back(
    alpha: np.ndarray | None, stealth: StealthPayload | None, bit_depth: int
) -> np.ndarray | None:
    """`alpha` (float, [0, 1]) of the output with an alpha-channel stealth payload written
    back the same way at the new size, so the tools that read it still find it; `alpha`
    unchanged when there is nothing to write or it does not fit. An RGB-channel payload is
    never written back: it would change the colours facefix just computed."""
    if alpha is None or stealth is None or stealth.channel != "alpha" or bit_depth != 8:
        return alpha
    written = embed_alpha(np.clip(np.rint(alpha * 255), 0, 255).astype(np.uint8), stealth)
    return alpha if written is None else written.astype(np.float32) / 255.0


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

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: path, format and record, or path and error."""
        if self.record is None:
            return {"path": str(self.path), "error": self.error}
        return {"path": str(self.path), "format": self.format, "record": self.record.to_dict()}


def info(paths: Iterable[Path]) -> list[InfoResult]:
    """The generation record of each file, in order, with stealth info read from its pixels;
    a file that cannot be read gets an error message instead and the others are still read."""
    results = []
    for path in paths:
        path = Path(path)
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
            results.append(InfoResult(path, sniff(data) or "WebP", record, chunks))
    return results
