"""The output formats: one table that the writer, the names, the walk, claims, the sweep, the
report and `info` all read, so a format is added in one place (in the shape of black's
`WriteBack`: a choice the user makes once, each consumer asks the table what it means).

Each `OutputFormat` says its file suffix (`.fixed.png`, `.fixed.webp` for WebP lossy or
lossless, `.fixed.jpg`, `.fixed.avif`), its encoder (`encode(pixels, carried, options) -> bytes`, pure: no files), and
how it carries metadata (`carrier`): PNG as chunks (`io.pngchunks`, byte for byte as today),
the others embedded (`Embedded`: an ICC profile, an EXIF block, an XMP packet) the way the
tools that read those formats look for them (`metadata.carry.embedded_metadata` fills it).

`--format same` (`FormatChoice`) writes each output in its input's format, which the walk
decides from the input's extension, before reading anything.

Light by design: the CLI and the walk import this module at start, so the encoders' own
imports (Pillow, OpenCV, numpy) happen in `io.encode` when a file is first encoded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import Enum
from typing import Literal

from facefix_cli.io.encode import (
    EncodeOptions,
    OutputPixels,
    encode_avif,
    encode_jpeg,
    encode_png,
    encode_webp,
    encode_webp_lossless,
)

FormatChoice = Literal["png", "webp", "webp-lossless", "jpeg", "avif", "same"]
FORMAT_CHOICES: tuple[FormatChoice, ...] = ("png", "webp", "webp-lossless", "jpeg", "avif", "same")
OUTPUT_MARK = ".fixed"  # every output's name ends in `.fixed` + the format's extension
Carrier = Literal["png chunks", "embedded"]
# pixels, what `carrier` says (PNG chunks or `encode.Embedded`), options -> the file's bytes
Encoder = Callable[[OutputPixels, object, EncodeOptions], bytes]


@dataclass(frozen=True)
class FormatSpec:
    name: str  # as `--format` spells it
    extension: str  # without the dot: "png", "webp", "jpg", "avif"
    carrier: Carrier
    lossy: bool
    keeps_alpha: bool
    default_quality: int | None  # None: lossless
    bit_depths: tuple[int, ...]  # what it stores; 16-bit pixels become 8-bit where 16 is absent
    pillow_feature: str | None  # Pillow's `features.check` name, where Pillow encodes it
    encode: Encoder  # pure: no files


class OutputFormat(Enum):
    """One output format. The value is the `--format` spelling."""

    PNG = "png"
    WEBP = "webp"
    WEBP_LOSSLESS = "webp-lossless"
    JPEG = "jpeg"
    AVIF = "avif"

    @property
    def spec(self) -> FormatSpec:
        return _SPECS[self]

    @property
    def suffix(self) -> str:
        """`.fixed.png`, `.fixed.webp`, `.fixed.jpg`, `.fixed.avif`."""
        return f"{OUTPUT_MARK}.{self.spec.extension}"

    @property
    def carrier(self) -> Carrier:
        return self.spec.carrier

    def quality(self, asked: int | None) -> int | None:
        """The quality this format encodes at: `asked`, or its default; None when lossless."""
        if not self.spec.lossy:
            return None
        return asked if asked is not None else self.spec.default_quality

    def available(self) -> bool:
        """Whether this Python's Pillow can encode it (PNG always can: OpenCV writes it)."""
        feature = self.spec.pillow_feature
        if feature is None:
            return True
        from PIL import features

        return bool(features.check(feature))

    def encode(self, pixels: OutputPixels, carried: object, options: EncodeOptions) -> bytes:
        """The file's bytes: `pixels` with `carried` (PNG chunks or `Embedded`, by `carrier`),
        at `options.quality` or this format's default."""
        return self.spec.encode(
            pixels, carried, replace(options, quality=self.quality(options.quality))
        )

    @classmethod
    def for_source(cls, choice: FormatChoice, source_name: str) -> OutputFormat:
        """The format of the output of `source_name` when the user chose `choice`: `same` is
        the input's own format by its extension (PNG for one facefix does not write)."""
        if choice != "same":
            return cls(choice)
        extension = source_name.rpartition(".")[2].lower()
        return _BY_EXTENSION.get(extension, cls.PNG)


_SPECS: dict[OutputFormat, FormatSpec] = {
    OutputFormat.PNG: FormatSpec(
        "png", "png", "png chunks", False, True, None, (8, 16), None, encode_png
    ),
    # WebP at 90: 5-7 % of the PNG's bytes on real renders (benchmarks/bench_formats.py).
    OutputFormat.WEBP: FormatSpec(
        "webp", "webp", "embedded", True, True, 90, (8,), "webp", encode_webp
    ),
    # Lossless WebP: the pixels PNG keeps (8-bit), in fewer bytes; the same `.fixed.webp` name.
    OutputFormat.WEBP_LOSSLESS: FormatSpec(
        "webp-lossless", "webp", "embedded", False, True, None, (8,), "webp", encode_webp_lossless
    ),
    # JPEG at 95 (Pillow's 4:2:0 chroma): 17-18 % of the PNG's bytes; no alpha.
    OutputFormat.JPEG: FormatSpec(
        "jpeg", "jpg", "embedded", True, False, 95, (8,), "jpg", encode_jpeg
    ),
    OutputFormat.AVIF: FormatSpec(
        "avif", "avif", "embedded", True, True, 80, (8,), "avif", encode_avif
    ),
}
_BY_EXTENSION = {
    "png": OutputFormat.PNG,
    "webp": OutputFormat.WEBP,
    "jpg": OutputFormat.JPEG,
    "jpeg": OutputFormat.JPEG,
    "avif": OutputFormat.AVIF,
}
# Every name an output of any format ends with, lower case: never taken as an input.
OUTPUT_SUFFIXES: tuple[str, ...] = tuple(dict.fromkeys(f.suffix for f in OutputFormat)) + (
    f"{OUTPUT_MARK}.jpeg",
)


def is_output_name(name: str) -> bool:
    """Whether `name` is a facefix output's name, whatever its format (case-insensitive)."""
    return name.lower().endswith(OUTPUT_SUFFIXES)


def output_suffix_of(name: str) -> str | None:
    """The output suffix `name` ends with, as it is spelt in `name`; None for other names."""
    lower = name.lower()
    for suffix in OUTPUT_SUFFIXES:
        if lower.endswith(suffix):
            return name[-len(suffix) :]
    return None


def check_quality(quality: int | None) -> str | None:
    """What is wrong with `--quality`, or None."""
    if quality is not None and not 1 <= quality <= 100:
        return f"--quality must be 1 to 100, not {quality}"
    return None
