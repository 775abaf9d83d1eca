"""Pick the torch device and the settings that follow from it."""

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
