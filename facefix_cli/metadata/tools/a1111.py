"""AUTOMATIC1111 and its forks (Forge, Forge Classic/Neo, reForge, SD.Next), and the A1111-style
text of Civitai and of ComfyUI saver nodes (comfy-image-saver stamps `Version: ComfyUI`): the
`parameters` infotext, and the `postprocessing` chunk facefix adds.

The infotext grammar (A1111's `parse_generation_parameters`): prompt lines, an optional
`Negative prompt:` line (and its continuation lines), then one settings line of
`Key: value` pairs separated by commas, where a value holding a comma or colon is JSON-quoted.
A settings line needs at least three pairs; text without one is not an A1111 record.
The settings line is read by a single left-to-right scan (no backtracking regex), so a
50 MB line costs linear time.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from facefix_cli.metadata.generation import Generation, Pass, as_float, as_int, fill
from facefix_cli.metadata.tools.base import Extension, Texts, ToolFormat, looks_like_json
from facefix_cli.operations import Operation

_SIZE = re.compile(r"\s*(\d+)\s*[xX]\s*(\d+)\s*")
_QUOTED = re.compile(r'"(?:\\.|[^\\"])*"')
_NEGATIVE = "Negative prompt:"
# Settings-line keys read into `Generation`'s own fields; every other key lands in `settings`.
_READ_KEYS = frozenset(
    {"Steps", "Sampler", "CFG scale", "CFG Scale", "Seed", "Size", "Model", "Version"}
    | {"Schedule type", "VAE"}
)


def _is_key_char(ch: str) -> bool:
    return ch.isalnum() or ch in "_ -/"


def a1111_settings(line: str) -> dict[str, str]:
    """The `Key: value, Key: "quoted, value"` pairs of one A1111 settings line, in order:
    what A1111's `\\s*(\\w[\\w \\-/]+):\\s*("(?:\\\\.|[^\\\\"])+"|[^,]*)(?:,|$)` finds, in one pass."""
    settings: dict[str, str] = {}
    pos, end = 0, len(line)
    unclosed_from = end + 1  # no closing quote exists after this position
    while pos < end:
        colon = line.find(":", pos)
        if colon < 0:
            break
        start = colon
        while start > pos and _is_key_char(line[start - 1]):
            start -= 1
        while start < colon and not (line[start].isalnum() or line[start] == "_"):
            start += 1  # a key starts with a word character
        key = line[start:colon]
        if len(key) < 2:
            pos = colon + 1
            continue
        value_start = colon + 1
        while value_start < end and line[value_start].isspace():
            value_start += 1
        value: str | None = None
        if value_start < end and line[value_start] == '"' and value_start < unclosed_from:
            match = _QUOTED.match(line, value_start)
            if match is None:
                unclosed_from = value_start
            elif match.end() == end or line[match.end()] == ",":
                value = match.group()
                with contextlib.suppress(json.JSONDecodeError):
                    value = str(json.loads(value))
                pos = match.end() + 1
        if value is None:
            comma = line.find(",", value_start)
            comma = end if comma < 0 else comma
            value = line[value_start:comma].strip()
            pos = comma + 1
        settings[key.strip()] = value
    return settings


def parse_a1111_parameters(text: str) -> tuple[str, str | None, dict[str, str]]:
    """(prompt, negative prompt or None, settings) from an A1111 `parameters` text.

    The settings are the last line when it holds at least three `Key: value` pairs, which is how
    A1111 itself tells a settings line from a prompt line that happens to contain a colon.
    """
    *lines, last = text.strip().split("\n")
    settings = a1111_settings(last)
    if len(settings) < 3:
        lines.append(last)
        settings = {}
    prompt: list[str] = []
    negative: list[str] | None = None
    target = prompt
    for line in lines:
        line = line.strip()
        if line.startswith(_NEGATIVE):
            negative = target = []
            line = line[len(_NEGATIVE) :].strip()
        target.append(line)
    return "\n".join(prompt), (None if negative is None else "\n".join(negative)), settings


def tool_name(settings: dict[str, str], texts: Texts) -> str:
    """Which member of the A1111 family wrote a settings line."""
    version = settings.get("Version", "")
    if "sd.next" in (settings.get("App", "").lower(), version.lower()[:7]):
        return "SD.Next"
    # Forge stamps f<forge>v<a1111> (reForge too); Forge Classic and Neo write their names.
    if re.match(r"f\d", version) or version.lower().startswith(("neo", "classic")):
        return "Forge"
    if "fooocus_scheme" in texts or version.lower().startswith("fooocus"):
        return "Fooocus"
    if "Civitai resources" in settings or "Civitai metadata" in settings:
        return "Civitai"
    if version.strip().lower() == "comfyui":  # comfy-image-saver's infotext, no graph beside it
        return "ComfyUI"
    return "AUTOMATIC1111"


def _is_a1111_text(text: str | None) -> bool:
    if text is None or not text.strip() or looks_like_json(text):
        return False
    _prompt, negative, settings = parse_a1111_parameters(text)
    return bool(settings) or negative is not None


def detect(texts: Texts) -> bool:
    return _is_a1111_text(texts.get("parameters"))


def read(texts: Texts, record: Generation) -> None:
    prompt, negative, settings = parse_a1111_parameters(texts["parameters"])
    record.tool = tool_name(settings, texts)
    record.sources.append("parameters")
    width = height = None
    if match := _SIZE.fullmatch(settings.get("Size", "")):
        width, height = match.groups()
    version = settings.get("Version")
    fill(
        record,
        # `Version: ComfyUI` names the tool, not a version of it
        tool_version=None if version and version.strip() == record.tool else version,
        prompt=prompt,
        negative_prompt=negative,
        seed=settings.get("Seed"),
        steps=settings.get("Steps"),
        sampler=settings.get("Sampler"),
        cfg=settings.get("CFG scale") or settings.get("CFG Scale"),  # the latter: comfy-image-saver
        width=width,
        height=height,
        model=settings.get("Model"),
        scheduler=settings.get("Schedule type"),
        vae=settings.get("VAE"),
    )
    # Every other key is kept in its own words (`Model hash`, `Lora hashes`, `Clip skip`...).
    for key, value in settings.items():
        if key not in _READ_KEYS:
            record.settings.setdefault(key, value)
    hires = _hires_pass(settings, record)
    if hires is not None:
        record.passes.append(hires)


def history(texts: Texts) -> list[dict]:
    """The extras-tab record, one entry per line, oldest first."""
    for key in ("postprocessing", "extras"):  # A1111 writes the same text under both keys
        if key in texts:
            return [
                a1111_settings(line) or {"text": line}
                for line in texts[key].splitlines()
                if line.strip()
            ]
    return []


def _hires_pass(settings: dict[str, str], record: Generation) -> Pass | None:
    """A1111's hires fix as a second pass: its own steps, sampler and the upscaled size."""
    if not any(key.startswith("Hires ") for key in settings):
        return None
    hires = Pass()
    if match := _SIZE.fullmatch(settings.get("Hires resize", "")):
        fill(hires, width=match.group(1), height=match.group(2))
    scale = as_float(settings.get("Hires upscale"))
    if scale and record.width and record.height:
        fill(hires, width=round(record.width * scale), height=round(record.height * scale))
    fill(
        hires,
        seed=record.seed,
        steps=as_int(settings.get("Hires steps")) or record.steps,
        sampler=settings.get("Hires sampler") or record.sampler,
        cfg=settings.get("Hires CFG Scale") or record.cfg,
        model=settings.get("Hires checkpoint"),
    )
    return hires


def from_payload(text: str) -> dict[str, str] | None:
    """A UserComment or stealth payload is the `parameters` text itself (A1111 writes it so)."""
    return {"parameters": text}


def extend(texts: Texts, operations: Sequence[Operation]) -> Extension:
    """A1111's extras record: a new `postprocessing` chunk after `parameters`, or one more line
    in an existing one, so the history reads top to bottom, oldest first. A JSON `parameters`
    is another tool's (Fooocus, SwarmUI), which has no A1111 extras record."""
    extension = Extension()
    line = a1111_postprocessing_text(operations)
    if not line:
        return extension
    existing = texts.get("postprocessing")
    if existing is not None:
        separator = "" if existing.endswith("\n") else "\n"
        extension.rewrite["postprocessing"] = existing + separator + line
    elif "parameters" in texts and not looks_like_json(texts["parameters"]):
        extension.add_after.append(("parameters", "postprocessing", line))
    return extension


def a1111_postprocessing_text(operations: Sequence[Operation]) -> str:
    """facefix's operations as AUTOMATIC1111's extras tab records them, e.g.
    `Postprocess upscale by: 2, Postprocess upscaler: R-ESRGAN 2x+, GFPGAN visibility: 0.8`."""
    parts: list[tuple[str, Any]] = []
    for operation in operations:
        kind = operation.type
        if kind == "esrgan":
            parts.append(("Postprocess upscale by", _a1111_number(operation.scale)))
            parts.append(("Postprocess upscaler", a1111_upscaler_name(operation.model)))
        elif kind == "gfpgan":
            parts.append(("GFPGAN visibility", _a1111_number(operation.strength)))
        elif kind == "codeformer":
            parts.append(("CodeFormer visibility", _a1111_number(operation.strength)))
            # CodeFormer's fidelity w is what A1111 calls weight (0 = strongest effect).
            parts.append(("CodeFormer weight", _a1111_number(operation.fidelity)))
        elif kind == "restorer":
            # A1111 names a face restorer's visibility after the restorer ("GFPGAN
            # visibility"); a model it does not ship goes by its architecture, or, for an ONNX
            # file, its file stem (as A1111 names custom upscalers).
            parts.append(
                (f"{a1111_restorer_name(operation)} visibility", _a1111_number(operation.strength))
            )
    return ", ".join(f"{key}: {_a1111_quote(value)}" for key, value in parts if value is not None)


# A1111's display names for the Real-ESRGAN models it ships, by weight file stem.
_A1111_UPSCALER_NAMES = {
    "RealESRGAN_x4plus": "R-ESRGAN 4x+",
    "RealESRGAN_x4plus_anime_6B": "R-ESRGAN 4x+ Anime6B",
    "RealESRGAN_x2plus": "R-ESRGAN 2x+",
    "realesr-general-x4v3": "R-ESRGAN General 4xV3",
    "realesr-general-wdn-x4v3": "R-ESRGAN General WDN 4xV3",
    "realesr-animevideov3": "R-ESRGAN AnimeVideo",
}


def a1111_restorer_name(operation: Operation) -> str:
    """The name in A1111's `<name> visibility` for a --restorer model that is neither GFPGAN
    nor CodeFormer: `RestoreFormer`, or `GPEN-BFR-512` for GPEN-BFR-512.onnx."""
    if operation.architecture and operation.architecture != "ONNX":
        return operation.architecture
    return Path(operation.model).stem if operation.model else "Face restoration"


def a1111_upscaler_name(model: str | None) -> str | None:
    """A1111's name for an upscaler weight file; custom models go by file stem, as in A1111."""
    if not model:
        return None
    stem = Path(model).stem
    return _A1111_UPSCALER_NAMES.get(stem, stem)


def _a1111_number(value: Any) -> int | float | None:
    number = as_float(value)
    if number is None:
        return None
    return int(number) if number.is_integer() else round(number, 3)


def _a1111_quote(value: Any) -> str:
    """A1111 quotes a value (as JSON) only when it holds a comma, colon or newline."""
    text = str(value)
    if any(c in text for c in ",:\n"):
        return json.dumps(text, ensure_ascii=False)
    return text


FORMAT = ToolFormat(
    name="AUTOMATIC1111",
    keywords=("parameters", "postprocessing", "extras"),
    detect=detect,
    read=read,
    from_payload=from_payload,
    extend=extend,
    history=history,
)
