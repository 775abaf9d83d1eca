"""`Generation`: what made an image (prompt, seed, sampler...), as every tool reader fills it in,
and the value coercion the readers share.

Readers only ever fill fields that are still empty (`fill`), so the first source read wins and
no reader can overwrite what a more specific one found. Coercion never raises: a value of the
wrong type is simply not taken.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Pass:
    """One further sampling pass (hires fix, refiner) after the base pass, with its settings."""

    seed: int | None = None
    steps: int | None = None
    sampler: str | None = None
    cfg: float | None = None
    width: int | None = None
    height: int | None = None
    model: str | None = None
    node: str | None = None  # the ComfyUI node id of the pass's sampler


@dataclass
class Generation:
    """The settings an image was generated with, as far as its metadata tells. Seed, steps,
    sampler, CFG and size are the base pass's; further passes are listed in `passes`."""

    tool: str | None = None  # e.g. "AUTOMATIC1111", "InvokeAI", "ComfyUI"; None: no metadata
    tool_version: str | None = None
    prompt: str | None = None
    negative_prompt: str | None = None
    seed: int | None = None
    steps: int | None = None
    sampler: str | None = None
    cfg: float | None = None
    width: int | None = None
    height: int | None = None
    model: str | None = None
    passes: list[Pass] = field(default_factory=list)
    # Post-processing the generating tool recorded (its own entries, in its own form), oldest first.
    postprocessing: list[dict] = field(default_factory=list)
    facefix: list[dict] = field(default_factory=list)  # facefix's own records, oldest first
    sources: list[str] = field(default_factory=list)  # the keywords the settings were read from
    # Where hidden ("stealth") settings were found in the pixels, e.g. "stealth_pngcomp in the
    # alpha channel"; None when there were none. The pipeline logs it and carries the text on.
    stealth: str | None = None
    problems: list[str] = field(default_factory=list)  # what could not be read, and why
    # Every text entry by keyword; a repeated keyword gets " (2)", " (3)"... appended.
    raw: dict[str, str] = field(default_factory=dict)

    @property
    def has_generation_metadata(self) -> bool:
        return self.tool is not None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, without the raw texts (`info --raw --json` lists those per chunk)."""
        data = asdict(self)
        del data["raw"]
        return data


def as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if text.lstrip("-").isdigit():  # exact, also past 2**53 (Fooocus writes seeds as text)
            return int(text)
        try:
            number = float(text)
        except ValueError:
            return None
        return int(number) if number.is_integer() else None
    return None


def as_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def as_str(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return None


def as_text(value: Any) -> str | None:
    """A prompt: any string, the empty one included (an empty negative prompt is recorded)."""
    return value if isinstance(value, str) else None


_COERCE = {
    "seed": as_int,
    "steps": as_int,
    "width": as_int,
    "height": as_int,
    "cfg": as_float,
    "prompt": as_text,
    "negative_prompt": as_text,
}


def fill(target: Generation | Pass, **values: Any) -> None:
    """Set the fields of `target` still empty; the first source read wins."""
    for name, value in values.items():
        value = _COERCE.get(name, as_str)(value)
        if value is not None and getattr(target, name) is None:
            setattr(target, name, value)
