"""Pick the torch device(s) and the settings that follow from them: `--device` parsing (one
device or a comma-separated list, one GPU stage each), tiles and batch sizes from memory."""

from __future__ import annotations

import re

import torch

from facefix.errors import SetupError


def resolve_device(name: str = "auto") -> torch.device:
    """auto: CUDA if present, else Apple MPS, else CPU. An explicit device must exist."""
    name = name.strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "mps":
        if not torch.backends.mps.is_available():
            raise SetupError(
                "--device mps: Apple MPS is not available on this machine; use --device cpu"
            )
        return torch.device("mps")
    match = re.fullmatch(r"cuda(?::(\d+))?", name)
    if match:
        if not torch.cuda.is_available():
            raise SetupError(
                f"--device {name}: no CUDA GPU is available here; use --device cpu or auto"
            )
        index = int(match.group(1) or 0)
        if index >= torch.cuda.device_count():
            raise SetupError(
                f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) present"
            )
        return torch.device("cuda", index)
    raise SetupError(f"--device {name!r}: expected auto, cpu, cuda, cuda:N or mps")


DEVICE_SYNTAX = "auto, cpu, cuda, cuda:N or mps, or a comma-separated list such as cuda:0,cuda:1"
_ONE_DEVICE = re.compile(r"auto|cpu|mps|cuda(?::\d+)?")


def parse_devices(text: str) -> list[str]:
    """The device names of a --device value, checked for syntax only (no torch query): one of
    auto, cpu, mps, cuda, cuda:N, or several of them joined by commas (auto only alone)."""
    names = [part.strip().lower() for part in text.split(",")]
    for name in names:
        if not _ONE_DEVICE.fullmatch(name):
            raise SetupError(f"--device {text!r}: expected {DEVICE_SYNTAX}")
    if len(names) > 1 and "auto" in names:
        raise SetupError(f"--device {text!r}: auto cannot be part of a list")
    return names


def resolve_devices(text: str = "auto") -> list[torch.device]:
    """Every device a --device value names, each checked to exist. `cuda` (and `auto` on a
    machine with CUDA) means every visible GPU, so a multi-GPU machine gets one GPU stage per
    GPU; list them (`cuda:0,cuda:1`) or set CUDA_VISIBLE_DEVICES to use fewer."""
    devices: list[torch.device] = []
    for name in parse_devices(text):
        if name in ("auto", "cuda") and torch.cuda.is_available():
            devices.extend(torch.device("cuda", i) for i in range(torch.cuda.device_count()))
        else:
            devices.append(resolve_device(name))
    return devices


def default_batch_size(device: torch.device, size: tuple[int, int], scale: int) -> int:
    """Images per GPU pass when --batch-size is not given: 1 off CUDA (a CPU gains nothing from
    batching); on CUDA, as many as fit in half of the free memory at an estimated 3 KiB per
    output pixel (three 64-channel fp32 feature maps of the upscaler at output resolution, the
    largest live set), at most 16. E.g. 512x512 inputs at x2 on an H100 with 79 GiB free: 13;
    at x4: 3. A first estimate, to be tuned by measurement on the GPU."""
    if device.type != "cuda":
        return 1
    free, _total = torch.cuda.mem_get_info(device)
    width, height = size
    per_image = width * height * scale * scale * 3 * 1024
    return max(1, min(16, int(free * 0.5 // per_image)))


def default_tile(device: torch.device) -> int:
    """Tile size for upscaling when --tile is not given: whole images where memory is plentiful
    (CPU RAM, large GPUs), tiles on smaller GPUs so big inputs do not run out of memory."""
    if device.type == "cuda":
        total = torch.cuda.get_device_properties(device).total_memory
        return 0 if total >= 20 * 2**30 else 512
    if device.type == "mps":
        return 512
    return 0


def make_deterministic() -> None:
    # Same input, options, weights and device must give the same bytes.
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
