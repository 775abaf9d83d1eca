"""`Generation`: what made an image (prompt, seed, sampler...), as every tool reader fills it in,
and the value coercion the readers share.

Readers only ever fill fields that are still empty (`fill`), so the first source read wins and
no reader can overwrite what a more specific one found. Coercion never raises: a value of the
wrong type is simply not taken.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from facefix_cli.operations import Operation


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

    def describe(self) -> str:
        """The pass in one line: `seed 1, steps 20, sampler Euler a, CFG 7, size 1024x1024`."""
        parts = [
            f"{label} {value}"
            for label, value in (
                ("seed", self.seed),
                ("steps", self.steps),
                ("sampler", self.sampler),
                ("CFG", f"{self.cfg:g}" if self.cfg is not None else None),
                ("size", _size(self.width, self.height)),
                ("model", self.model),
            )
            if value is not None
        ]
        return ", ".join(parts) or "no settings recorded"


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
    scheduler: str | None = None  # the noise schedule (A1111's `Schedule type`, ComfyUI's)
    vae: str | None = None  # a VAE other than the model's own
    loras: list[str] = field(default_factory=list)  # `name (strength)`, in graph order
    # Every further key of the tool's settings, in its own words and order (A1111's `Model
    # hash`, `Lora hashes`, `Denoising strength`...): what recreating the image may need.
    settings: dict[str, str] = field(default_factory=dict)
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

    @property
    def tool_text(self) -> str | None:
        """The tool and its version as people write them: `ComfyUI`, `AUTOMATIC1111 v1.10.1`,
        `Fooocus v2.5.5` (a version that already names the tool is not prefixed again)."""
        if self.tool is None:
            return None
        if not self.tool_version:
            return self.tool
        if self.tool_version.startswith(self.tool):
            return self.tool_version
        return f"{self.tool} {self.tool_version}"

    def rows(self, pixels: tuple[int, int] | None = None) -> list[tuple[str, str]]:
        """The one rendering of the generation settings, as (label, text) rows, empty fields
        left out: what `facefix info` shows and what the report's cards show. `pixels`, the
        image's own width and height, is shown beside the generation size when it differs (an
        upscaled output)."""
        rows: list[tuple[str, str]] = []
        if self.tool is not None:
            rows.append(("Tool", self.tool_text or self.tool))
        generated = _size(self.width, self.height)
        shown = _size(*pixels) if pixels is not None else None
        if shown is not None and generated is not None and shown != generated:
            size: str | None = f"{shown} (generated at {generated})"
        else:
            size = shown or generated
        cfg = f"{self.cfg:g}" if self.cfg is not None else None
        for label, value in (
            ("Prompt", self.prompt),
            ("Negative prompt", self.negative_prompt),
            ("Seed", self.seed),
            ("Steps", self.steps),
            ("Sampler", self.sampler),
            ("Scheduler", self.scheduler),
            ("CFG scale", cfg),
            ("Size", size),
            ("Model", self.model),
            ("VAE", self.vae),
            ("LoRAs", "\n".join(self.loras)),
        ):
            if value not in (None, ""):
                rows.append((label, str(value)))
        rows.extend((key, value) for key, value in self.settings.items())
        if self.passes:
            rows.append(("Further passes", "\n".join(p.describe() for p in self.passes)))
        if self.stealth:
            rows.append(("Hidden in pixels", self.stealth))
        return rows

    def history_rows(self) -> list[tuple[str, str]]:
        """What was done to the image since, and where the record came from, as rows."""
        rows: list[tuple[str, str]] = []
        if self.postprocessing:
            history = "\n".join(_describe_entry(entry) for entry in self.postprocessing)
            rows.append(("Post-processing", history))
        if self.facefix:
            rows.append(
                ("facefix runs", "\n".join(describe_facefix_record(r) for r in self.facefix))
            )
        if self.sources:
            rows.append(("Read from", ", ".join(self.sources)))
        if self.problems:
            rows.append(("Problems", "\n".join(self.problems)))
        return rows

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, without the raw texts (`info --raw --json` lists those per chunk)."""
        data = asdict(self)
        del data["raw"]
        return data


def _size(width: int | None, height: int | None) -> str | None:
    return f"{width}x{height}" if width and height else None


def _describe_entry(entry: dict) -> str:
    return ", ".join(f"{key}: {value}" for key, value in entry.items())


def describe_facefix_record(record: dict) -> str:
    """One line per facefix run: its version, then each operation as `Operation.describe`
    words it (an operation that does not parse is shown as its JSON)."""
    version = record.get("facefix_version") or record.get("version")
    operations = record.get("operations")
    if not isinstance(operations, list):
        return json.dumps(record, sort_keys=True)
    described = []
    for operation in operations:
        if not isinstance(operation, dict):
            continue
        try:
            described.append(Operation.from_json(operation).describe())
        except (TypeError, ValueError, KeyError, AttributeError):
            described.append(json.dumps(operation, sort_keys=True))
    prefix = f"facefix {version}: " if version else ""
    return prefix + ("; ".join(described) or "no operations")


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
