"""Seeded random-weight checkpoints in the exact file layouts of the released models.

They load through facefix's real loaders (spandrel, facexlib); random weights restore nothing,
so tests assert shapes, placement, maths, determinism and metadata, never image quality.
"""

from __future__ import annotations

from pathlib import Path

import torch

GROWTH = 32  # RRDB dense-block growth channels in Real-ESRGAN


def realesrgan_state_dict(
    scale: int,
    num_block: int = 23,
    num_feat: int = 64,
    *,
    output_gain: float = 1.0,
) -> dict:
    """basicsr's RRDBNet keys, as in RealESRGAN_x{2,4}plus.pth; x2 takes 12 input channels
    because it pixel-unshuffles its input by 2 first. Weights are N(0, gain^2 / fan_in), the
    dense-block convs damped by 0.1. Each residual-in-residual block still passes its input on
    grown by ~1.2 (x + 0.2 * x), so with 23 blocks activations reach ~2e4 (near fp16's
    65504) and the raw output spans hundreds, clipped to 0 and 1 in most pixels. The precision
    tests use 2 blocks (activations up to ~300) and `output_gain` (conv_last) 0.004, so the
    raw output spans about [-0.4, 1.6] like a trained model's picture."""
    in_channels = 12 if scale == 2 else 3
    generator = torch.Generator().manual_seed(1000 + scale)

    def conv(name: str, out_ch: int, in_ch: int, gain: float = 0.1) -> None:
        state[f"{name}.weight"] = (
            torch.randn(out_ch, in_ch, 3, 3, generator=generator) * gain / (in_ch**0.5)
        )
        state[f"{name}.bias"] = torch.zeros(out_ch)

    state: dict[str, torch.Tensor] = {}
    conv("conv_first", num_feat, in_channels, gain=1.0)
    for block in range(num_block):
        for rdb in (1, 2, 3):
            for index in range(1, 6):
                in_ch = num_feat + (index - 1) * GROWTH
                out_ch = num_feat if index == 5 else GROWTH
                conv(f"body.{block}.rdb{rdb}.conv{index}", out_ch, in_ch)
    for name in ("conv_body", "conv_up1", "conv_up2", "conv_hr"):
        conv(name, num_feat, num_feat, gain=1.0)
    conv("conv_last", 3, num_feat, gain=output_gain)
    # Bias the output to mid-grey so random weights give visible, unsaturated pictures.
    state["conv_last.bias"] = torch.full((3,), 0.5)
    return state


def gfpgan_state_dict(seed: int = 14) -> dict:
    from spandrel.architectures.GFPGAN import GFPGAN

    torch.manual_seed(seed)
    model = GFPGAN(
        out_size=512,
        num_style_feat=512,
        channel_multiplier=2,
        decoder_load_path=None,
        fix_decoder=False,
        num_mlp=8,
        input_is_latent=True,
        different_w=True,
        narrow=1,
        sft_half=True,
    )
    return model.state_dict()


def codeformer_state_dict(seed: int = 7) -> dict:
    from spandrel_extra_arches.architectures.CodeFormer import CodeFormer

    torch.manual_seed(seed)
    model = CodeFormer(
        dim_embd=512,
        n_head=8,
        n_layers=9,
        codebook_size=1024,
        latent_size=256,
        connect_list=["32", "64", "128", "256"],
        fix_modules=["quantize", "generator"],
    )
    return model.state_dict()


def restoreformer_state_dict(seed: int = 11) -> dict:
    """RestoreFormer's keys (GFPGAN's restoreformer_arch, as in RestoreFormer.pth), at a small
    width so a 512 crop runs in seconds: 32 base channels (GroupNorm needs 32), a 64-entry
    codebook. spandrel reads the widths from the tensors."""
    from spandrel.architectures.RestoreFormer import RestoreFormer

    torch.manual_seed(seed)
    model = RestoreFormer(
        n_embed=64, embed_dim=32, ch=32, ch_mult=(1, 1, 2, 2, 2, 4), z_channels=32
    )
    return model.state_dict()


def save_restoreformer_plus_plus(path: Path, seed: int = 12) -> Path:
    """RestoreFormer++'s release layout (wzhouxiff/RestoreFormerPlusPlus): a Lightning
    checkpoint whose `state_dict` holds the VQVAE's keys under `vqvae.`; the keys below it
    are RestoreFormer's (RestoreFormer++ differs in head count and multi-scale inputs)."""
    state = {f"vqvae.{k}": v for k, v in restoreformer_state_dict(seed).items()}
    torch.save({"state_dict": state}, path)
    return path


class TinyFaceNet(torch.nn.Module):
    """A random-weight restorer in the ONNX face-model convention: 1 x 3 x S x S in [-1, 1]
    out, the same in; with `fidelity`, a second input (CodeFormer's w) scales the features."""

    def __init__(self, seed: int = 21, fidelity: bool = False) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.takes_fidelity = fidelity
        self.head = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.tail = torch.nn.Conv2d(8, 3, 3, padding=1)

    def forward(self, x: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        features = torch.relu(self.head(x))
        if weight is not None:
            features = features * (0.5 + weight.float().reshape(()))
        return torch.tanh(self.tail(features) + x)


def export_onnx_restorer(
    path: Path,
    size: int,
    *,
    fidelity_dtype: torch.dtype | None = None,
    batch: int | None = 1,
    seed: int = 21,
) -> TinyFaceNet:
    """Export a TinyFaceNet to `path` as the community's ONNX restorers are laid out (a fixed
    1 x 3 x S x S input unless `batch` is None, then the batch is dynamic); with
    `fidelity_dtype`, a second scalar input of that type. Returns the torch module."""
    import warnings

    model = TinyFaceNet(seed, fidelity=fidelity_dtype is not None).eval()
    args: tuple = (torch.zeros(1, 3, size, size),)
    names = ["input"]
    if fidelity_dtype is not None:
        args += (torch.tensor(0.5, dtype=fidelity_dtype),)
        names.append("weight")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            args,
            str(path),
            input_names=names,
            output_names=["output"],
            dynamic_axes=None if batch else {"input": {0: "n"}, "output": {0: "n"}},
            dynamo=False,
        )
    return model


def retinaface_state_dict(network_name: str, seed: int = 3, *, finds_faces: bool = True) -> dict:
    """RetinaFace weights; with finds_faces=False the class head is biased so every anchor scores
    'background', giving a detector that runs the real code and reports no faces (random weights
    otherwise report hundreds, which would make every end-to-end test restore hundreds of faces)."""
    import warnings

    from facexlib.detection.retinaface import RetinaFace

    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = RetinaFace(network_name=network_name, half=False, device="cpu")
    state = net.state_dict()
    if not finds_faces:
        # Zero weights make the class logits constant, whatever the picture: background wins.
        for key in [k for k in state if k.startswith("ClassHead.")]:
            state[key] = torch.zeros_like(state[key])
            if key.endswith(".bias"):
                state[key][0::2] = 10.0  # channels are (background, face) per anchor
                state[key][1::2] = -10.0
    # The released files were saved from DataParallel: every key starts with "module.".
    return {f"module.{k}": v for k, v in state.items()}


def parsenet_state_dict(seed: int = 5) -> dict:
    from facexlib.parsing.parsenet import ParseNet

    torch.manual_seed(seed)
    return ParseNet(in_size=512, out_size=512, parsing_ch=19).state_dict()


def save_params_ema(state: dict, path: Path) -> Path:
    """GFPGAN, Real-ESRGAN and CodeFormer releases wrap the weights as {"params_ema": ...}."""
    torch.save({"params_ema": state}, path)
    return path


def save_bare(state: dict, path: Path) -> Path:
    """facexlib's releases are bare state dicts."""
    torch.save(state, path)
    return path


BUILDERS = {
    "RealESRGAN_x2plus.pth": lambda p: save_params_ema(realesrgan_state_dict(2), p),
    "RealESRGAN_x4plus.pth": lambda p: save_params_ema(realesrgan_state_dict(4), p),
    "GFPGANv1.4.pth": lambda p: save_params_ema(gfpgan_state_dict(14), p),
    "GFPGANv1.3.pth": lambda p: save_params_ema(gfpgan_state_dict(13), p),
    "codeformer.pth": lambda p: save_params_ema(codeformer_state_dict(), p),
    "detection_Resnet50_Final.pth": lambda p: save_bare(
        retinaface_state_dict("resnet50", finds_faces=False), p
    ),
    "detection_mobilenet0.25_Final.pth": lambda p: save_bare(
        retinaface_state_dict("mobile0.25", finds_faces=False), p
    ),
    "parsing_parsenet.pth": lambda p: save_bare(parsenet_state_dict(), p),
}


LIGHT_FILES = (
    "RealESRGAN_x2plus.pth",
    "RealESRGAN_x4plus.pth",
    "detection_Resnet50_Final.pth",
    "detection_mobilenet0.25_Final.pth",
    "parsing_parsenet.pth",
)


def build(file_name: str, folder: Path) -> Path:
    path = folder / file_name
    if not path.exists():
        BUILDERS[file_name](path)
    return path
