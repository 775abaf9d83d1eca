"""Upscale an image with a super-resolution model, blended with a plain bicubic resize."""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch
import torch.nn.functional as F

TILE_PAD = 10  # context each tile borrows from its neighbours, so seams do not show


def resize_bicubic(pixels: np.ndarray, width: int, height: int) -> np.ndarray:
    return cv2.resize(pixels, (width, height), interpolation=cv2.INTER_CUBIC)


def to_tensor(rgb: np.ndarray, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))[None].to(device, dtype)


def to_array(tensor: torch.Tensor) -> np.ndarray:
    return tensor[0].float().clamp_(0, 1).permute(1, 2, 0).cpu().numpy()


def _pad_amount(size: int, minimum: int, multiple_of: int) -> int:
    target = max(size, minimum)
    return math.ceil(target / multiple_of) * multiple_of - size


def run_padded(model, tensor: torch.Tensor) -> torch.Tensor:
    """Run `model` (a spandrel descriptor) on a tensor padded to the model's size requirements
    (RealESRGAN_x2plus, for one, needs sides that are multiples of 4), cropped back after."""
    requirements = model.size_requirements
    height, width = tensor.shape[2:]
    pad_h = _pad_amount(height, requirements.minimum, requirements.multiple_of)
    pad_w = _pad_amount(width, requirements.minimum, requirements.multiple_of)
    if requirements.square:
        side = max(height + pad_h, width + pad_w)
        pad_h, pad_w = side - height, side - width
    if pad_h or pad_w:
        mode = "reflect" if pad_h < height and pad_w < width else "replicate"
        tensor = F.pad(tensor, (0, pad_w, 0, pad_h), mode=mode)
    output = model(tensor)
    return output[:, :, : height * model.scale, : width * model.scale]


@torch.inference_mode()
def super_resolve(
    rgb: np.ndarray, model, *, device: torch.device, tile: int = 0, half: bool = False
) -> np.ndarray:
    """The model's output for a float RGB image, whole or in tiles of `tile` pixels."""
    dtype = torch.float16 if half and model.supports_half else torch.float32
    image = to_tensor(rgb, device, dtype)
    height, width = rgb.shape[:2]
    scale = model.scale
    if tile <= 0 or (height <= tile and width <= tile):
        return to_array(run_padded(model, image))
    output = torch.empty((1, 3, height * scale, width * scale), dtype=torch.float32, device=device)
    for top in range(0, height, tile):
        for left in range(0, width, tile):
            bottom, right = min(top + tile, height), min(left + tile, width)
            # Each tile sees TILE_PAD pixels of its neighbours; only its own area is kept.
            in_top, in_left = max(top - TILE_PAD, 0), max(left - TILE_PAD, 0)
            in_bottom, in_right = min(bottom + TILE_PAD, height), min(right + TILE_PAD, width)
            result = run_padded(model, image[:, :, in_top:in_bottom, in_left:in_right])
            off_y, off_x = (top - in_top) * scale, (left - in_left) * scale
            output[:, :, top * scale : bottom * scale, left * scale : right * scale] = result[
                :, :, off_y : off_y + (bottom - top) * scale, off_x : off_x + (right - left) * scale
            ].float()
    return to_array(output)


def blend(model_output: np.ndarray, plain: np.ndarray, strength: float) -> np.ndarray:
    """strength * model_output + (1 - strength) * plain, exact at both ends."""
    if strength >= 1.0:
        return model_output
    if strength <= 0.0:
        return plain
    return strength * model_output + (1.0 - strength) * plain


def upscale(
    rgb: np.ndarray,
    model,
    *,
    strength: float,
    device: torch.device,
    tile: int = 0,
    half: bool = False,
) -> np.ndarray:
    """Upscale by the model's scale; below strength 1 blend with a bicubic resize of the input
    (InvokeAI's maths: out = strength * esrgan + (1 - strength) * resized)."""
    height, width = rgb.shape[:2]
    out_w, out_h = width * model.scale, height * model.scale
    # Clipped like the 8-bit resize InvokeAI blends with: bicubic overshoots at hard edges.
    plain = np.clip(resize_bicubic(rgb, out_w, out_h), 0.0, 1.0) if strength < 1.0 else None
    if strength <= 0.0:
        return plain
    enhanced = super_resolve(rgb, model, device=device, tile=tile, half=half)
    return blend(enhanced, plain, strength) if plain is not None else enhanced


def upscale_alpha(alpha: np.ndarray, width: int, height: int) -> np.ndarray:
    """Alpha is resized plainly, never hallucinated by a model trained on photographs."""
    return np.clip(resize_bicubic(alpha, width, height), 0.0, 1.0)
