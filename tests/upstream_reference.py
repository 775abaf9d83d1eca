"""A small numeric reference of upstream Real-ESRGAN, independent of facefix and spandrel, for
the trained-weights tests: basicsr's RRDBNet and Real-ESRGAN's SRVGGNetCompact written out
from their papers' code (same keys, so checkpoints load with strict=True), and
`RealESRGANer.enhance`'s path for tile=0, pre_pad=0, half=False, outscale = the net's scale on
an 8-bit RGB image: /255 to float32, the net, clamp to [0, 1], x255, round, uint8.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def _lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2)


class ResidualDenseBlock(nn.Module):
    def __init__(self, num_feat: int = 64, num_grow_ch: int = 32) -> None:
        super().__init__()
        for index in range(1, 6):
            in_ch = num_feat + (index - 1) * num_grow_ch
            out_ch = num_feat if index == 5 else num_grow_ch
            setattr(self, f"conv{index}", nn.Conv2d(in_ch, out_ch, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for index in range(1, 5):
            features.append(_lrelu(getattr(self, f"conv{index}")(torch.cat(features, 1))))
        return self.conv5(torch.cat(features, 1)) * 0.2 + x


class RRDB(nn.Module):
    def __init__(self, num_feat: int, num_grow_ch: int = 32) -> None:
        super().__init__()
        self.rdb1 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb2 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb3 = ResidualDenseBlock(num_feat, num_grow_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rdb3(self.rdb2(self.rdb1(x))) * 0.2 + x


class RRDBNet(nn.Module):
    """basicsr.archs.rrdbnet_arch.RRDBNet for scale 4 (no pixel unshuffle)."""

    scale = 4

    def __init__(self, num_block: int = 23, num_feat: int = 64, num_grow_ch: int = 32) -> None:
        super().__init__()
        self.conv_first = nn.Conv2d(3, num_feat, 3, 1, 1)
        self.body = nn.Sequential(*(RRDB(num_feat, num_grow_ch) for _ in range(num_block)))
        self.conv_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(num_feat, 3, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.conv_first(x)
        feat = feat + self.conv_body(self.body(feat))
        feat = _lrelu(self.conv_up1(F.interpolate(feat, scale_factor=2, mode="nearest")))
        feat = _lrelu(self.conv_up2(F.interpolate(feat, scale_factor=2, mode="nearest")))
        return self.conv_last(_lrelu(self.conv_hr(feat)))


class SRVGGNetCompact(nn.Module):
    """realesrgan.archs.srvgg_arch.SRVGGNetCompact with PReLU activations."""

    def __init__(self, num_feat: int = 64, num_conv: int = 16, upscale: int = 4) -> None:
        super().__init__()
        self.scale = upscale
        layers: list[nn.Module] = [nn.Conv2d(3, num_feat, 3, 1, 1), nn.PReLU(num_feat)]
        for _ in range(num_conv):
            layers += [nn.Conv2d(num_feat, num_feat, 3, 1, 1), nn.PReLU(num_feat)]
        layers.append(nn.Conv2d(num_feat, 3 * upscale * upscale, 3, 1, 1))
        self.body = nn.ModuleList(layers)
        self.upsampler = nn.PixelShuffle(upscale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        for layer in self.body:
            out = layer(out)
        base = F.interpolate(x, scale_factor=self.scale, mode="nearest")
        return self.upsampler(out) + base


def load_strict(net: nn.Module, state: dict[str, torch.Tensor]) -> nn.Module:
    net.load_state_dict(state, strict=True)
    return net.eval()


@torch.inference_mode()
def enhance(net: nn.Module, rgb8: np.ndarray) -> np.ndarray:
    """RealESRGANer(tile=0, pre_pad=0, half=False).enhance(img, outscale=scale) on an 8-bit RGB
    H x W x 3 array (upstream reads BGR and flips to RGB before the net, then back: the same
    pixels), giving the 8-bit RGB output."""
    image = torch.from_numpy(rgb8.astype(np.float32) / 255.0).permute(2, 0, 1)[None]
    output = net(image).clamp_(0, 1)[0].permute(1, 2, 0).numpy()
    return (output * 255.0).round().astype(np.uint8)
