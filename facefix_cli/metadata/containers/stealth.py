"""Settings hidden in the pixels ("stealth PNG info"), as A1111/Forge extensions and NovelAI
write them: a signature, a 32-bit big-endian bit count, then the payload, one bit per sample in
the least significant bits, most significant bit first, pixels walked column by column (x outer,
y inner).

- `stealth_pnginfo` / `stealth_pngcomp`: in the alpha channel, payload plain / gzip.
- `stealth_rgbinfo` / `stealth_rgbcomp`: in R, G and B (three bits a pixel), plain / gzip.

Only the columns the header and payload need are looked at, and a gzip payload inflates to at
most `TEXT_INFLATE_LIMIT`, so a hostile image costs no more than its pixels already did.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from facefix_cli.io.pngchunks import TEXT_INFLATE_LIMIT

ALPHA_SIGNATURES = {"stealth_pnginfo": False, "stealth_pngcomp": True}  # name: compressed
RGB_SIGNATURES = {"stealth_rgbinfo": False, "stealth_rgbcomp": True}
SIGNATURE_BITS = 15 * 8
_LENGTH_BITS = 32


@dataclass(frozen=True)
class StealthPayload:
    signature: str  # e.g. "stealth_pngcomp"
    channel: str  # "alpha" or "rgb"
    payload: bytes  # as stored in the pixels (still gzip-compressed for *comp)
    text: str  # the decoded text

    @property
    def description(self) -> str:
        where = "alpha channel" if self.channel == "alpha" else "RGB low bits"
        return f"{self.signature} in the {where}"


def _bits(samples: np.ndarray, per_pixel: int, count: int) -> np.ndarray | None:
    """The first `count` low bits of `samples` (H x W [x C]) in column-major pixel order."""
    height = samples.shape[0]
    columns = -(-count // (height * per_pixel))
    if columns > samples.shape[1]:
        return None
    part = samples[:, :columns]
    flat = part.transpose(1, 0, 2).reshape(-1) if part.ndim == 3 else part.T.reshape(-1)
    return (flat[:count] & 1).astype(np.uint8)


def _read(samples: np.ndarray, per_pixel: int, signatures: dict[str, bool], channel: str):
    header = _bits(samples, per_pixel, SIGNATURE_BITS + _LENGTH_BITS)
    if header is None:
        return None, None
    signature = np.packbits(header[:SIGNATURE_BITS]).tobytes().decode("latin-1")
    if signature not in signatures:
        return None, None
    length = int.from_bytes(np.packbits(header[SIGNATURE_BITS:]).tobytes(), "big")
    total = SIGNATURE_BITS + _LENGTH_BITS + length
    available = samples.shape[0] * samples.shape[1] * per_pixel
    if length % 8 or total > available or length // 8 > TEXT_INFLATE_LIMIT:
        return None, f"{signature}: its length field ({length} bits) does not fit the image"
    bits = _bits(samples, per_pixel, total)
    assert bits is not None  # total fits the image, checked above
    payload = np.packbits(bits[SIGNATURE_BITS + _LENGTH_BITS :]).tobytes()
    body = payload
    if signatures[signature]:
        decompressor = zlib.decompressobj(wbits=31)  # gzip
        try:
            body = decompressor.decompress(payload, TEXT_INFLATE_LIMIT)
        except zlib.error:
            return None, f"{signature}: the gzip payload is corrupt"
        if decompressor.unconsumed_tail:
            return None, f"{signature}: inflates past {TEXT_INFLATE_LIMIT >> 20} MiB; not read"
    text = body.decode("utf-8", errors="replace")
    return StealthPayload(signature, channel, payload, text), None


def has_signature(rgb: np.ndarray | None, alpha: np.ndarray | None) -> bool:
    """Whether 8-bit pixels start with a stealth signature: a cheap test that needs only the
    first columns (`SIGNATURE_BITS / height` of them), so callers can pass just those."""
    for samples, per_pixel, signatures in ((alpha, 1, ALPHA_SIGNATURES), (rgb, 3, RGB_SIGNATURES)):
        if samples is None or samples.dtype != np.uint8:
            continue
        bits = _bits(samples, per_pixel, SIGNATURE_BITS)
        if bits is not None and np.packbits(bits).tobytes().decode("latin-1") in signatures:
            return True
    return False


def read_stealth(
    rgb: np.ndarray | None, alpha: np.ndarray | None
) -> tuple[StealthPayload | None, str | None]:
    """(payload, problem) from 8-bit pixels: `alpha` H x W, `rgb` H x W x 3 (uint8). The alpha
    channel is tried first, as the tools do; (None, None) when neither carries a signature."""
    if alpha is not None and alpha.dtype == np.uint8:
        found, problem = _read(alpha, 1, ALPHA_SIGNATURES, "alpha")
        if found or problem:
            return found, problem
    if rgb is not None and rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3:
        return _read(rgb, 3, RGB_SIGNATURES, "rgb")
    return None, None


def embed_alpha(alpha: np.ndarray, found: StealthPayload) -> np.ndarray | None:
    """`alpha` (uint8 H x W) with `found`'s signature, length and payload written into its low
    bits the same way, from the first pixel on; the other pixels are unchanged. None when the
    payload does not fit the image."""
    data = found.signature.encode("latin-1") + (len(found.payload) * 8).to_bytes(4, "big")
    bits = np.unpackbits(np.frombuffer(data + found.payload, np.uint8))
    height, width = alpha.shape
    if bits.size > height * width:
        return None
    column_major = alpha.T.copy().reshape(-1)
    column_major[: bits.size] = (column_major[: bits.size] & 0xFE) | bits
    return np.ascontiguousarray(column_major.reshape(width, height).T)


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
