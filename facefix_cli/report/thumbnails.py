"""Small images for the HTML report, made with Pillow.

Guarantees: every thumbnail this module encodes fits `max_side` on its longest side and
`MAX_BYTES` in size (quality, then size, is lowered until it does); it is WebP (JPEG where
Pillow was built without WebP) and keeps alpha where WebP can. A "before" is the original
plainly resized (bicubic) to the same display size as the "after", from the same region, so the
two line up pixel for pixel on the page.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageOps, features

COMPARE_SIDE = 640  # the before/after of a whole image: the longest side, in pixels
FACE_SIDE = 192  # each face crop, before and after
MAX_BYTES = 200_000  # "a few hundred KB per image at most", with room to spare
FACE_MARGIN = 0.25  # a face crop shows this fraction of the box's size around it

FORMAT = "webp" if features.check("webp") else "jpeg"
EXTENSION = {"webp": ".webp", "jpeg": ".jpg"}[FORMAT]
_QUALITIES = (80, 65, 50, 35, 20)
_JPEG_BACKGROUND = (128, 128, 128)  # JPEG has no alpha: transparent areas become mid grey

Box = tuple[float, float, float, float]


def load(data: bytes) -> Image.Image:
    """An 8-bit RGB or RGBA image from encoded bytes (PNG of any depth, JPEG, WebP). Raises
    OSError (Pillow's UnidentifiedImageError included) when the bytes are not an image."""
    image: Image.Image = Image.open(io.BytesIO(data))
    image.load()
    # As a viewer shows it, as `fix` reads it: an original photo stored sideways is turned
    # upright (its output already is) so before and after line up.
    image = ImageOps.exif_transpose(image)
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16-bit greyscale: keep the top 8 bits
        grey = np.asarray(image, dtype=np.uint32) >> 8
        image = Image.fromarray(grey.astype(np.uint8), "L")
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (
        image.mode == "P" and "transparency" in image.info
    )
    return image.convert("RGBA" if has_alpha else "RGB")


def fit(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    """`size` scaled so its longest side is `max_side` (up or down), at least 1x1."""
    width, height = size
    factor = max_side / max(width, height)
    return max(1, round(width * factor)), max(1, round(height * factor))


def fit_within(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    """`size`, scaled down only, so its longest side is at most `max_side`."""
    return size if max(size) <= max_side else fit(size, max_side)


def resized(image: Image.Image, size: tuple[int, int], box: Box | None = None) -> Image.Image:
    """`box` of `image` (all of it by default) resized to `size` with a bicubic filter."""
    return image.resize(size, Image.Resampling.BICUBIC, box=box, reducing_gap=3.0)


def face_box(box: Sequence[float], image_size: tuple[int, int], margin: float = FACE_MARGIN) -> Box:
    """A face's box grown by `margin` on every side and clipped to the image."""
    x0, y0, x1, y1 = (float(v) for v in box)
    width, height = image_size
    grow_x, grow_y = (x1 - x0) * margin, (y1 - y0) * margin
    left, top = max(0.0, x0 - grow_x), max(0.0, y0 - grow_y)
    right, bottom = min(float(width), x1 + grow_x), min(float(height), y1 + grow_y)
    if right - left < 1 or bottom - top < 1:
        raise ValueError(f"face box {list(box)} lies outside the {width}x{height} image")
    return left, top, right, bottom


def scale_box(box: Box, from_size: tuple[int, int], to_size: tuple[int, int]) -> Box:
    """The same region of an image of `to_size` (an original) as `box` of `from_size`."""
    sx, sy = to_size[0] / from_size[0], to_size[1] / from_size[1]
    return box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy


def encode(image: Image.Image, max_bytes: int = MAX_BYTES) -> bytes:
    """The thumbnail file's bytes: the best quality that fits `max_bytes`, halving the size
    only if even the lowest quality does not."""
    if FORMAT == "jpeg" and image.mode == "RGBA":
        flat = Image.new("RGB", image.size, _JPEG_BACKGROUND)
        flat.paste(image, mask=image.getchannel("A"))
        image = flat
    buffer = io.BytesIO()
    while True:
        for quality in _QUALITIES:
            buffer = io.BytesIO()
            if FORMAT == "webp":
                image.save(
                    buffer, "WEBP", quality=quality, method=0
                )  # 4x faster than 4, ~same size
            else:
                image.save(buffer, "JPEG", quality=quality, optimize=True)
            if buffer.tell() <= max_bytes:
                return buffer.getvalue()
        if max(image.size) <= 16:
            return buffer.getvalue()  # a 16 px image that does not fit cannot be made to
        image = image.resize(
            (max(1, image.width // 2), max(1, image.height // 2)), Image.Resampling.BICUBIC
        )
