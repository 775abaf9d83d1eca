"""Generation metadata: what the input carries, and what the output carries on.

Reading: `parse_generation` turns the text chunks (tEXt, zTXt, iTXt), EXIF and any stealth
payload of an image into one `Generation`, whichever tool wrote them; `info` does so for
files (`metadata.info`). Writing: `output_chunks` carries every metadata chunk of the input into the output byte
for byte, except where a tool's own format records what facefix did (InvokeAI's
`sd-metadata` post-processing list, A1111's `postprocessing` chunk); facefix's own iTXt record
comes last.

Layout: `containers/` (PNG text, EXIF, JPEG/WebP segments, stealth pixels: where metadata
sits), `tools/` (one module per tool: detection, reading, write-back; registered in
`tools.TOOLS`), `read.py` and `carry.py` (the dispatch over that table). The `info` display is
the CLI's (`facefix_cli.cli.console.info`).
"""

from __future__ import annotations

from facefix_cli.errors import PngFormatError, UnsupportedImageError
from facefix_cli.metadata.carry import (
    XMP_KEY,
    chunks_for_foreign_image,
    chunks_from_bytes,
    embedded_metadata,
    output_chunks,
)
from facefix_cli.metadata.containers.exif import decode_user_comment
from facefix_cli.metadata.containers.stealth import (
    StealthPayload,
    embed_alpha,
    find_stealth,
    stealth_in_pixels,
    stealth_written_back,
)
from facefix_cli.metadata.generation import Generation, Pass
from facefix_cli.metadata.info import InfoResult, info
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
