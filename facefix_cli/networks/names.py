"""`--device` syntax, checked without torch (the CLI's option checks and a run with nothing
to do must not import it)."""

from __future__ import annotations

import re

from facefix_cli.errors import SetupError

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
