"""InvokeAI: 3.x and later (`invokeai_metadata`, `invokeai_graph`), and 1.x/2.x (`Dream`, the
`sd-metadata` JSON), with the post-processing entries facefix appends to `sd-metadata`.

`Dream` is a command line as InvokeAI's own formatter writes it: a quoted prompt, then
switches, packed (`-s50 -W512 -Ak_lms`) or spaced (`-s 50`). A line that starts with a command
(`!fix "path" ...`, `!mask`) has a file path where a prompt would be, so it gives no prompt.
`sd-metadata` holds one `image` object (2.x) or, in 1.x (v1.15), an `images` list with one
entry per seed: facefix reads and extends the entry whose seed is the file's.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Sequence
from typing import Any

from facefix_cli.metadata.generation import Generation, as_int, fill
from facefix_cli.metadata.tools.base import Extension, Texts, ToolFormat, json_object
from facefix_cli.operations import Operation

# Switches of InvokeAI 1.x/2.x's prompt syntax (ldm/dream/args.py) that facefix reads.
_DREAM_SWITCHES = {
    "-s": "steps",
    "--steps": "steps",
    "-S": "seed",
    "--seed": "seed",
    "-W": "width",
    "--width": "width",
    "-H": "height",
    "--height": "height",
    "-C": "cfg",
    "--cfg_scale": "cfg",
    "-A": "sampler",
    "-m": "sampler",
    "--sampler": "sampler",
    "--model": "model",
}
_SWITCH = re.compile(r"^--?[A-Za-z]")
_SHLEX_LIMIT = 64 * 1024  # shlex is slow per character; longer lines are split on spaces


def detect(texts: Texts) -> bool:
    return any(k in texts for k in ("invokeai_metadata", "invokeai_graph", "sd-metadata", "Dream"))


def read(texts: Texts, record: Generation) -> None:
    record.tool = "InvokeAI"
    if "invokeai_metadata" in texts or "invokeai_graph" in texts:
        _read_invokeai3(texts, record)
        return
    dream = parse_dream(texts["Dream"], record.problems) if "Dream" in texts else {}
    if "sd-metadata" in texts:
        meta = texts.json("sd-metadata")
        if isinstance(meta, dict):
            record.sources.append("sd-metadata")
            _read_sd_metadata(record, meta, as_int(dream.get("seed")))
        elif meta is not None:  # JSON, but not an object (unparsable JSON is reported already)
            record.problems.append("sd-metadata: not a JSON object; kept as raw text")
    if "Dream" in texts:
        record.sources.append("Dream")
        fill(record, **dream)
    if record.tool_version is None:
        record.tool_version = "1.x/2.x"


def _read_invokeai3(texts: Texts, record: Generation) -> None:
    if "invokeai_metadata" not in texts:
        record.problems.append("invokeai_metadata: missing; only the graph is present")
        return
    meta = texts.json("invokeai_metadata")
    if not isinstance(meta, dict):
        return
    record.sources.append("invokeai_metadata")
    model = meta.get("model")
    if isinstance(model, dict):
        model = model.get("name") or model.get("model_name")
    fill(
        record,
        tool_version=meta.get("app_version"),
        prompt=meta.get("positive_prompt"),
        negative_prompt=meta.get("negative_prompt"),
        seed=meta.get("seed"),
        steps=meta.get("steps"),
        sampler=meta.get("scheduler"),
        cfg=meta.get("cfg_scale"),
        width=meta.get("width"),
        height=meta.get("height"),
        model=model,
    )


def _image_entry(meta: dict, seed: int | None) -> dict | None:
    """The settings object: `image` (2.x), or the `images` entry with the file's seed (1.x)."""
    image = meta.get("image")
    if isinstance(image, dict):
        return image
    images = [i for i in meta.get("images") or [] if isinstance(i, dict)]
    for entry in images:
        if seed is not None and as_int(entry.get("seed")) == seed:
            return entry
    return images[0] if images else None


def _read_sd_metadata(record: Generation, meta: dict, seed: int | None) -> None:
    image = _image_entry(meta, seed)
    if image is None:
        record.problems.append("sd-metadata: no `image` object with the settings")
        image = {}
    prompt = image.get("prompt")
    if isinstance(prompt, list):  # [{"prompt": ..., "weight": ...}], weighted blends
        parts = [p for p in prompt if isinstance(p, dict) and isinstance(p.get("prompt"), str)]
        if len(parts) == 1:
            prompt = parts[0]["prompt"]
        elif parts:
            prompt = " ".join(f"{p['prompt']}:{p.get('weight', 1)}" for p in parts)
        else:
            prompt = None
    fill(
        record,
        tool_version=meta.get("app_version"),
        prompt=prompt,
        negative_prompt=_bracketed(prompt),
        seed=image.get("seed"),
        steps=image.get("steps"),
        sampler=image.get("sampler"),
        cfg=image.get("cfg_scale"),
        width=image.get("width"),
        height=image.get("height"),
        model=meta.get("model_weights") or meta.get("model_id") or _hash_label(meta),
    )
    history = image.get("postprocessing")
    if isinstance(history, list):
        record.postprocessing.extend(
            entry if isinstance(entry, dict) else {"value": entry} for entry in history
        )


def _bracketed(prompt: Any) -> str | None:
    """InvokeAI 1.x/2.x writes the negative prompt inside the prompt, in [square brackets]."""
    if not isinstance(prompt, str):
        return None
    return ", ".join(re.findall(r"\[([^\[\]]*)\]", prompt)) or None


def _hash_label(meta: dict) -> str | None:
    model_hash = meta.get("model_hash")
    return f"hash {model_hash[:10]}" if isinstance(model_hash, str) and model_hash else None


def parse_dream(command: str, problems: list[str]) -> dict[str, str]:
    """The settings of a `Dream` line: prompt, negative prompt and the switches facefix reads."""
    tokens: list[str]
    if len(command) > _SHLEX_LIMIT:
        tokens = command.split()
    else:
        try:
            tokens = shlex.split(command)
        except ValueError:
            problems.append("Dream: unbalanced quotes; split on spaces instead")
            tokens = command.split()
    is_command = bool(tokens) and tokens[0].startswith("!")
    i = 1 if is_command else 0
    prompt_tokens: list[str] = []
    while i < len(tokens) and not _SWITCH.match(tokens[i]):
        prompt_tokens.append(tokens[i])
        i += 1
    values: dict[str, str] = {}
    while i < len(tokens):
        token = tokens[i]
        i += 1
        if not _SWITCH.match(token):
            continue  # a further value of a switch that takes several (--embiggen 3 .75 .25)
        name, value = token, None
        if token.startswith("--") and "=" in token:
            name, value = token.split("=", 1)
        elif not token.startswith("--") and len(token) > 2:
            name, value = token[:2], token[2:]  # packed: -s50, -Ak_lms
        field = _DREAM_SWITCHES.get(name)
        if value is None and i < len(tokens) and not _SWITCH.match(tokens[i]):
            value = tokens[i]
            i += 1
        if field and value is not None:
            values.setdefault(field, value)
    if not is_command:  # a command's quoted argument is a file path, not a prompt
        prompt = " ".join(prompt_tokens) or None
        if prompt is not None:
            values["prompt"] = prompt
            negative = _bracketed(prompt)
            if negative:
                values["negative_prompt"] = negative
    return values


def invokeai_postprocessing_entries(operations: Sequence[Operation]) -> list[dict]:
    """InvokeAI 2.x's post-processing entries for facefix's operations: only the keys InvokeAI
    itself writes (type, scale, strength, fidelity)."""
    keys = {
        "esrgan": ("scale", "strength"),
        "gfpgan": ("strength",),
        "codeformer": ("strength", "fidelity"),
    }
    entries = []
    for operation in operations:
        kind = operation.type
        if kind in keys:
            entry: dict[str, Any] = {"type": kind}
            fields = operation.to_json()
            entry |= {k: fields[k] for k in keys[kind] if k in fields}
            entries.append(entry)
    return entries


def extend_sd_metadata(
    text: str, operations: Sequence[Operation], seed: int | None = None
) -> str | None:
    """`sd-metadata` JSON with facefix's operations appended to the image entry's
    `postprocessing` (`image`, or the `images` entry with `seed`), written in the original's
    style; None when it cannot be extended safely (malformed JSON, no image entry, a
    `postprocessing` that is neither a list nor null, or nothing to add)."""
    entries = invokeai_postprocessing_entries(operations)
    if not entries:
        return None
    meta = json_object(text)
    image = _image_entry(meta, seed) if meta is not None else None
    if image is None:
        return None
    history = image.get("postprocessing")
    if history is None:
        image["postprocessing"] = entries
    elif isinstance(history, list):
        history.extend(entries)
    else:
        return None
    return json.dumps(meta, **_json_style(text))


def _json_style(text: str) -> dict[str, Any]:
    """json.dumps options that reproduce how `text` was written (InvokeAI uses the defaults)."""
    stripped = text.strip()
    indent = None
    if stripped.startswith("{\n"):
        second_line = stripped.split("\n", 2)[1]
        indent = len(second_line) - len(second_line.lstrip(" ")) or None
    key_sep = ": " if '": ' in stripped else ":"
    item_sep = "," if indent is not None or key_sep == ":" else ", "
    return {
        "ensure_ascii": text.isascii(),
        "indent": indent,
        "separators": (item_sep, key_sep),
    }


def extend(texts: Texts, operations: Sequence[Operation]) -> Extension:
    extension = Extension()
    if "sd-metadata" in texts:
        seed = None
        if "Dream" in texts:
            seed = as_int(parse_dream(texts["Dream"], []).get("seed"))
        new_text = extend_sd_metadata(texts["sd-metadata"], operations, seed)
        if new_text is not None:
            extension.rewrite["sd-metadata"] = new_text
    return extension


FORMAT = ToolFormat(
    name="InvokeAI",
    keywords=("invokeai_metadata", "invokeai_graph", "sd-metadata", "Dream"),
    detect=detect,
    read=read,
    extend=extend,
)
