"""Upscale images with a super-resolution model, blended with a plain bicubic resize.

Batch-first: every function takes N x C x H x W float32 tensors in [0, 1] on the model's device
and returns float32 tensors there, so the CPU and the GPU run the same code and nothing goes
back to the host between stages.

What it guarantees:
- The plain resize is PIL's bicubic, the one InvokeAI's `Image.resize` blends with (Keys' cubic
  with a = -0.5), not OpenCV's (a = -0.75). torch's `interpolate(mode="bicubic",
  antialias=True)` is a port of PIL's separable filter (same kernel, and the same widened
  support when shrinking), while `antialias=False` uses a = -0.75. PIL resamples horizontally
  first and clips that intermediate image to the pixel range before the vertical pass, which
  matters at hard edges where bicubic overshoots; `resize_bicubic` does the same two passes
  with the same clip, so on 8-bit images it agrees with PIL within 1/255 (PIL also rounds its
  intermediate to 8 bits; here it stays exact, so 16-bit inputs keep their precision).
- Tiles: each tile sees TILE_PAD pixels of its neighbours and only its own area is kept, so a
  tiled result equals the whole-image result wherever the model's reach fits in the padding.
- A reduced-precision (fp16/bf16) output that is not finite is computed again in fp32 for
  that image, when a fp32 fallback model is given.
- Out of memory at one tile size is retried with halved tiles, down to MIN_TILE, before the
  error is raised.
"""

from __future__ import annotations

import math
from typing import Protocol

import torch
import torch.nn.functional as F

TILE_PAD = 10  # context each tile borrows from its neighbours, so seams do not show
MIN_TILE = 64  # smaller tiles cost more in padding than they save in memory
TILE_MULTIPLE = 32


class UpscaleModel(Protocol):
    """What these functions need of a super-resolution model: a spandrel
    `ImageModelDescriptor` is one (it pads to its own size requirements), and tests pass
    small stand-ins."""

    @property
    def scale(self) -> int: ...

    @property
    def dtype(self) -> torch.dtype: ...

    def __call__(self, image: torch.Tensor) -> torch.Tensor: ...


@torch.inference_mode()
def resize_bicubic(images: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """PIL-compatible bicubic resize of N x C x H x W images in [0, 1] (see the module notes)."""
    if images.shape[-1] != width:
        images = F.interpolate(
            images,
            size=(images.shape[-2], width),
            mode="bicubic",
            antialias=True,
            align_corners=False,
        ).clamp_(0.0, 1.0)
    if images.shape[-2] != height:
        images = F.interpolate(
            images, size=(height, width), mode="bicubic", antialias=True, align_corners=False
        ).clamp_(0.0, 1.0)
    return images


def bytes_per_pixel(scale: int, element_size: int = 4) -> int:
    """Peak working memory of an RRDBNet-sized upscaler per input pixel. Measured on the CPU
    for Real-ESRGAN (x4plus ~13 KB, x2plus ~3.5-4 KB per pixel in fp32): the feature maps at
    the output resolution dominate, so it grows with scale squared."""
    return (scale * scale * 208 + 256) * element_size


def choose_tile(
    height: int,
    width: int,
    *,
    scale: int,
    batch: int,
    budget_bytes: int,
    element_size: int = 4,
) -> int:
    """0 (whole images) when a batch of `batch` images fits in `budget_bytes`, else the largest
    tile side (a multiple of TILE_MULTIPLE, at least MIN_TILE) whose padded tiles fit."""
    per_pixel = bytes_per_pixel(scale, element_size) * max(batch, 1)
    if height * width * per_pixel <= budget_bytes:
        return 0
    side = math.isqrt(max(budget_bytes, 0) // per_pixel) - 2 * TILE_PAD
    return max(side // TILE_MULTIPLE * TILE_MULTIPLE, MIN_TILE)


def smaller_tiles(tile: int, height: int, width: int) -> list[int]:
    """The tile sides to retry with after running out of memory at `tile` (0 = whole image):
    halvings down to MIN_TILE."""
    side = tile if 0 < tile < max(height, width) else max(height, width)
    sides = []
    while side // 2 >= MIN_TILE:
        side //= 2
        sides.append(side)
    return sides


def run_model(model: UpscaleModel, tensor: torch.Tensor) -> torch.Tensor:
    """`model` (a spandrel descriptor) on `tensor`, in the model's own dtype. The descriptor pads
    inputs to its size requirements (RealESRGAN_x2plus needs sides that are multiples of 4) and
    crops the output back itself; padding here as well gave byte-identical outputs, so it went."""
    return model(tensor.to(model.dtype))


@torch.inference_mode()
def super_resolve(images: torch.Tensor, model: UpscaleModel, *, tile: int = 0) -> torch.Tensor:
    """The model's raw float32 output (not clamped) for N x 3 x H x W images, whole or in
    tiles of `tile` pixels."""
    count, _, height, width = images.shape
    scale = model.scale
    if tile <= 0 or (height <= tile and width <= tile):
        return run_model(model, images).float()
    output = torch.empty(
        (count, 3, height * scale, width * scale), dtype=torch.float32, device=images.device
    )
    for top in range(0, height, tile):
        for left in range(0, width, tile):
            bottom, right = min(top + tile, height), min(left + tile, width)
            # Each tile sees TILE_PAD pixels of its neighbours; only its own area is kept.
            in_top, in_left = max(top - TILE_PAD, 0), max(left - TILE_PAD, 0)
            in_bottom, in_right = min(bottom + TILE_PAD, height), min(right + TILE_PAD, width)
            result = run_model(model, images[:, :, in_top:in_bottom, in_left:in_right])
            off_y, off_x = (top - in_top) * scale, (left - in_left) * scale
            output[:, :, top * scale : bottom * scale, left * scale : right * scale] = result[
                :, :, off_y : off_y + (bottom - top) * scale, off_x : off_x + (right - left) * scale
            ]
    return output


@torch.inference_mode()
def super_resolve_fitting(
    images: torch.Tensor, model: UpscaleModel, *, tile: int = 0
) -> torch.Tensor:
    """`super_resolve`, retried with smaller tiles while the device runs out of memory."""
    height, width = images.shape[2:]
    sides = [tile, *smaller_tiles(tile, height, width)]
    for side in sides:
        try:
            return super_resolve(images, model, tile=side)
        except torch.OutOfMemoryError:
            if side == sides[-1]:
                raise
        # Outside the except block, so the failed attempt's tensors are already released.
        if images.device.type == "cuda":
            torch.cuda.empty_cache()
    raise AssertionError("unreachable")  # pragma: no cover


@torch.inference_mode()
def super_resolve_checked(
    images: torch.Tensor,
    model: UpscaleModel,
    *,
    tile: int = 0,
    fallback: UpscaleModel | None = None,
) -> torch.Tensor:
    """`super_resolve_fitting`, clamped to [0, 1]; images whose output is not finite (fp16
    overflow) are computed again with `fallback` (the fp32 model) when one is given."""
    output = super_resolve_fitting(images, model, tile=tile)
    if fallback is not None:
        broken = ~torch.isfinite(output).flatten(1).all(dim=1)
        if bool(broken.any()):
            output[broken] = super_resolve_fitting(images[broken], fallback, tile=tile)
    return output.clamp_(0.0, 1.0)


@torch.inference_mode()
def blend(model_output: torch.Tensor, plain: torch.Tensor, strength: float) -> torch.Tensor:
    """strength * model_output + (1 - strength) * plain, exact at both ends. Written into
    `model_output` (a fresh tensor here), so a big batch needs no third full-size buffer."""
    if strength >= 1.0:
        return model_output
    if strength <= 0.0:
        return plain
    return model_output.mul_(strength).add_(plain, alpha=1.0 - strength)


@torch.inference_mode()
def upscale(
    images: torch.Tensor,
    model: UpscaleModel,
    *,
    strength: float,
    tile: int = 0,
    fallback: UpscaleModel | None = None,
) -> torch.Tensor:
    """Upscale N x 3 x H x W images by the model's scale; below strength 1 blend with a
    bicubic resize of the input (InvokeAI's maths: out = strength * esrgan + (1 - strength)
    * resized, the resize clipped like the 8-bit image InvokeAI blends with)."""
    height, width = images.shape[2:]
    out_h, out_w = height * model.scale, width * model.scale
    if strength <= 0.0:
        return resize_bicubic(images, out_h, out_w)
    enhanced = super_resolve_checked(images, model, tile=tile, fallback=fallback)
    if strength >= 1.0:
        return enhanced
    # The resize after the model, not before: it is not held through the model's tiles (a
    # full-size copy, 192 MiB for a 4096 px output).
    return blend(enhanced, resize_bicubic(images, out_h, out_w), strength)


def upscale_alpha(alpha: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Alpha (N x 1 x H x W) is resized plainly, never hallucinated by a model trained on
    photographs."""
    return resize_bicubic(alpha, height, width)
