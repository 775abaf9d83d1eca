"""Generation metadata: what the input carries, and what the output carries on.

Reading: `parse_generation` turns the text chunks (tEXt, zTXt, iTXt) and EXIF of an image into
one `GenerationRecord`, whichever tool wrote them: InvokeAI 1.x/2.x (`Dream`, `sd-metadata`),
InvokeAI 3+ (`invokeai_metadata`), AUTOMATIC1111 / Forge / SD.Next (`parameters`, or EXIF
UserComment in JPEG and WebP), ComfyUI (`prompt`, `workflow`), NovelAI and Fooocus. It never
raises on bad input: whatever cannot be understood is listed in `problems`, and the raw text is
kept in `raw`.

Writing: `output_chunks` carries every metadata chunk of the input into the output unchanged,
byte for byte, with two deliberate exceptions that record what facefix did in the tool's own
format:

- InvokeAI's `sd-metadata` JSON gets one `image.postprocessing` entry per operation, in InvokeAI
  2.x's form. The chunk is necessarily re-serialized; key order, separators and ASCII escaping
  follow the original, so `json.loads` of old and new differ only in that list.
- AUTOMATIC1111's `parameters` stays as it is and gets a sibling `postprocessing` chunk in that
  tool's extras-tab style. If the input already has one (an image post-processed before), that
  chunk keeps its text and the new operations are appended as a new line, so the history reads
  top to bottom, oldest first.

Last comes facefix's own iTXt record; records from earlier runs stay before it, in order.
"""

from __future__ import annotations

import contextlib
import json
import re
import shlex
import struct
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import piexif

from facefix.io.pngchunks import (
    Chunk,
    PngFormatError,
    carried_chunks,
    decode_text_chunk,
    exif_chunk,
    iccp_chunk,
    is_png,
    itxt_chunk,
    parse_chunks,
    text_chunk,
    ztxt_chunk,
)
from facefix.record import Operation

FACEFIX_KEY = "facefix"
XMP_KEY = "XML:com.adobe.xmp"  # the iTXt keyword the XMP spec assigns to PNG

JPEG_SIGNATURE = b"\xff\xd8\xff"
_EXIF_HEADER = b"Exif\x00\x00"
_XMP_HEADER = b"http://ns.adobe.com/xap/1.0/\x00"
_ICC_HEADER = b"ICC_PROFILE\x00"

# EXIF UserComment starts with an 8-byte character-code prefix (EXIF 2.3, table 9).
_USER_COMMENT_ASCII = b"ASCII\x00\x00\x00"
_USER_COMMENT_UNICODE = b"UNICODE\x00"
_USER_COMMENT_JIS = b"JIS\x00\x00\x00\x00\x00"
_USER_COMMENT_UNDEFINED = b"\x00" * 8


class UnsupportedImageError(ValueError):
    """The bytes are not a PNG, JPEG or WebP file."""


# --- the common record ---------------------------------------------------------------------


@dataclass
class GenerationRecord:
    """The settings an image was generated with, as far as its metadata tells."""

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
    # Post-processing the generating tool recorded (its own entries, in its own form), oldest first.
    postprocessing: list[dict] = field(default_factory=list)
    facefix: list[dict] = field(default_factory=list)  # facefix's own records, oldest first
    sources: list[str] = field(default_factory=list)  # the keywords the settings were read from
    problems: list[str] = field(default_factory=list)  # what could not be read, and why
    # Every text entry by keyword; a repeated keyword gets " (2)", " (3)"... appended.
    raw: dict[str, str] = field(default_factory=dict)

    @property
    def has_generation_metadata(self) -> bool:
        return self.tool is not None

    def to_dict(self, *, include_raw: bool = False) -> dict[str, Any]:
        data = asdict(self)
        if not include_raw:
            del data["raw"]
        return data


@dataclass(frozen=True)
class _TextEntry:
    keyword: str
    text: str


def parse_generation(chunks: list[Chunk]) -> GenerationRecord:
    """The generation settings found in `chunks` (PNG chunks, or those `read_chunks` made from a
    JPEG or WebP). Never raises: unreadable parts are skipped and named in `problems`."""
    record = GenerationRecord()
    entries: list[_TextEntry] = []
    exif_blobs: list[bytes] = []
    for chunk in chunks:
        if chunk.type == b"eXIf":
            exif_blobs.append(chunk.data)
            continue
        entry, problem = _decode_text(chunk)
        if problem:
            record.problems.append(problem)
        if entry is not None:
            entries.append(entry)

    for entry in entries:
        key, n = entry.keyword, 2
        while key in record.raw:
            key, n = f"{entry.keyword} ({n})", n + 1
        record.raw[key] = entry.text

    first: dict[str, str] = {}
    for entry in entries:
        first.setdefault(entry.keyword, entry.text)

    exif_comment = None
    for blob in exif_blobs:
        comment, problem = exif_user_comment(blob)
        if problem:
            record.problems.append(f"eXIf: {problem}")
        if comment and exif_comment is None:
            exif_comment = comment
            record.raw.setdefault("EXIF UserComment", comment)

    for entry in entries:
        if entry.keyword == FACEFIX_KEY:
            parsed = _load_json(entry.text, FACEFIX_KEY, record)
            if isinstance(parsed, dict):
                record.facefix.append(parsed)

    for reader in _READERS:
        try:
            reader(record, first, exif_comment)
        except Exception as error:  # a reader's bug must not cost the file its record
            record.problems.append(f"{reader.__name__.strip('_')}: {type(error).__name__}: {error}")
        if record.tool is not None:
            break
    return record


def summary(record: GenerationRecord) -> str:
    """A short phrase for log lines, e.g. "AUTOMATIC1111, seed 1234"."""
    if record.tool is None:
        return "no generation metadata"
    text = record.tool
    if record.seed is not None:
        text += f", seed {record.seed}"
    return text


# --- text chunk decoding -------------------------------------------------------------------


def _decode_text(chunk: Chunk) -> tuple[_TextEntry | None, str | None]:
    """(entry, problem) for a text chunk; (None, None) for other chunks."""
    if chunk.type not in (b"tEXt", b"zTXt", b"iTXt"):
        return None, None
    kind = chunk.type.decode("ascii")
    keyword_bytes, sep, rest = chunk.data.partition(b"\x00")
    keyword = keyword_bytes.decode("latin-1")
    if not sep:
        return None, f"{kind} chunk {keyword[:40]!r}: no keyword separator, not readable"
    try:
        if chunk.type == b"tEXt":
            return _TextEntry(keyword, _decode_latin1_text(rest)), None
        if chunk.type == b"zTXt":
            return _TextEntry(keyword, _decode_latin1_text(zlib.decompress(rest[1:]))), None
        compressed = rest[0]
        _language, _, rest = rest[2:].partition(b"\x00")
        _translated, _, body = rest.partition(b"\x00")
        if compressed:
            body = zlib.decompress(body)
        try:
            return _TextEntry(keyword, body.decode("utf-8")), None
        except UnicodeDecodeError:
            problem = f"iTXt {keyword!r}: text is not valid UTF-8 (bad bytes shown as \ufffd)"
            return _TextEntry(keyword, body.decode("utf-8", errors="replace")), problem
    except (zlib.error, IndexError):
        return None, f"{kind} {keyword!r}: truncated or corrupt, not readable"


def _decode_latin1_text(body: bytes) -> str:
    """tEXt/zTXt are Latin-1 by the PNG spec, but some writers put UTF-8 there; text that is
    valid UTF-8 with non-ASCII bytes is almost never intended Latin-1, so read it as UTF-8."""
    if body.isascii():
        return body.decode("ascii")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return body.decode("latin-1")


def _load_json(text: str, keyword: str, record: GenerationRecord) -> Any:
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError) as error:
        record.problems.append(f"{keyword}: not valid JSON ({error}); kept as raw text")
        return None


# --- value coercion --------------------------------------------------------------------------


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
        return int(number) if number.is_integer() else None
    return None


def _as_float(value: Any) -> float | None:
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


def _as_str(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return None


def _fill(record: GenerationRecord, **values: Any) -> None:
    """Set the fields still empty; the first source read wins."""
    coerce = {"seed": _as_int, "steps": _as_int, "width": _as_int, "height": _as_int}
    coerce |= {"cfg": _as_float}
    for name, value in values.items():
        value = coerce.get(name, _as_str)(value)
        if value is not None and getattr(record, name) is None:
            setattr(record, name, value)


# --- InvokeAI --------------------------------------------------------------------------------


def _read_invokeai3(record: GenerationRecord, text: dict[str, str], _exif: str | None) -> None:
    if "invokeai_metadata" not in text and "invokeai_graph" not in text:
        return
    record.tool = "InvokeAI"
    if "invokeai_metadata" not in text:
        record.problems.append("invokeai_metadata: missing; only the graph is present")
        return
    meta = _load_json(text["invokeai_metadata"], "invokeai_metadata", record)
    if not isinstance(meta, dict):
        return
    record.sources.append("invokeai_metadata")
    model = meta.get("model")
    if isinstance(model, dict):
        model = model.get("name") or model.get("model_name")
    _fill(
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


def _read_invokeai2(record: GenerationRecord, text: dict[str, str], _exif: str | None) -> None:
    if "sd-metadata" not in text and "Dream" not in text:
        return
    record.tool = "InvokeAI"
    if "sd-metadata" in text:
        meta = _load_json(text["sd-metadata"], "sd-metadata", record)
        if isinstance(meta, dict):
            record.sources.append("sd-metadata")
            _read_sd_metadata(record, meta)
    if "Dream" in text:
        record.sources.append("Dream")
        _read_dream(record, text["Dream"])
    if record.tool_version is None:
        record.tool_version = "1.x/2.x"


def _read_sd_metadata(record: GenerationRecord, meta: dict) -> None:
    image = meta.get("image")
    if not isinstance(image, dict):
        images = meta.get("images")  # the earliest releases wrote a list
        image = images[0] if isinstance(images, list) and images else None
    if not isinstance(image, dict):
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
    negative = None
    if isinstance(prompt, str):
        # InvokeAI 1.x/2.x writes the negative prompt inside the prompt, in [square brackets].
        negative = ", ".join(re.findall(r"\[([^\[\]]*)\]", prompt)) or None
    _fill(
        record,
        tool_version=meta.get("app_version"),
        prompt=prompt,
        negative_prompt=negative,
        seed=image.get("seed"),
        steps=image.get("steps"),
        sampler=image.get("sampler"),
        cfg=image.get("cfg_scale"),
        width=image.get("width"),
        height=image.get("height"),
        model=meta.get("model_weights")
        or meta.get("model_id")
        or _hash_label(meta.get("model_hash")),
    )
    history = image.get("postprocessing")
    if isinstance(history, list):
        record.postprocessing.extend(
            entry if isinstance(entry, dict) else {"value": entry} for entry in history
        )


def _hash_label(model_hash: Any) -> str | None:
    return f"hash {model_hash[:10]}" if isinstance(model_hash, str) and model_hash else None


_DREAM_OPTIONS = {
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


def _read_dream(record: GenerationRecord, command: str) -> None:
    """The `Dream` command line: a prompt (quoted or not), then `-s 50 -S 42 ...` options."""
    try:
        tokens = shlex.split(command)
    except ValueError:
        record.problems.append("Dream: unbalanced quotes; split on spaces instead")
        tokens = command.split()
    if tokens and tokens[0] == "!fix":
        tokens = tokens[1:]
    prompt_tokens: list[str] = []
    values: dict[str, str] = {}
    i = 0
    while i < len(tokens) and not re.match(r"^--?[A-Za-z]", tokens[i]):
        prompt_tokens.append(tokens[i])
        i += 1
    while i < len(tokens):
        name = _DREAM_OPTIONS.get(tokens[i])
        if name and i + 1 < len(tokens):
            values.setdefault(name, tokens[i + 1])
            i += 2
        else:
            i += 1
    prompt = " ".join(prompt_tokens) or None
    negative = ", ".join(re.findall(r"\[([^\[\]]*)\]", prompt)) if prompt else None
    _fill(record, prompt=prompt, negative_prompt=negative or None, **values)


# --- AUTOMATIC1111 and forks, Fooocus, SwarmUI ------------------------------------------------

# `Key: value` pairs of an A1111 settings line; values with commas or colons are JSON-quoted.
_A1111_SETTING = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])*"|[^,]*)(?:,|$)')
_SIZE = re.compile(r"^\s*(\d+)\s*[xX]\s*(\d+)\s*$")


def a1111_settings(line: str) -> dict[str, str]:
    """The `Key: value, Key: "quoted, value"` pairs of one A1111 settings line, in order."""
    settings: dict[str, str] = {}
    for key, value in _A1111_SETTING.findall(line):
        value = value.strip()
        if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
            with contextlib.suppress(json.JSONDecodeError):
                value = json.loads(value)
        settings[key.strip()] = str(value)
    return settings


def parse_a1111_parameters(text: str) -> tuple[str, str, dict[str, str]]:
    """(prompt, negative prompt, settings) from an A1111 `parameters` text.

    The settings are the last line when it holds at least three `Key: value` pairs, which is how
    A1111 itself tells a settings line from a prompt line that happens to contain a colon.
    """
    *lines, last = text.strip().split("\n")
    settings = a1111_settings(last)
    if len(settings) < 3:
        lines.append(last)
        settings = {}
    prompt: list[str] = []
    negative: list[str] = []
    target = prompt
    for line in lines:
        line = line.strip()
        if line.startswith("Negative prompt:"):
            target = negative
            line = line[len("Negative prompt:") :].strip()
        target.append(line)
    return "\n".join(prompt), "\n".join(negative), settings


def _a1111_tool(settings: dict[str, str]) -> str:
    version = settings.get("Version", "")
    if "sd.next" in (settings.get("App", "").lower(), version.lower()[:7]):
        return "SD.Next"
    if re.match(r"^f\d", version):  # Forge stamps versions like f2.0.1v1.10.1-...
        return "Forge"
    if version.lower().startswith("fooocus"):
        return "Fooocus"
    return "AUTOMATIC1111"


def _read_parameters(record: GenerationRecord, text: dict[str, str], exif: str | None) -> None:
    source, parameters = "parameters", text.get("parameters")
    if parameters is None and exif is not None:
        source, parameters = "EXIF UserComment", exif
    if parameters is None or not parameters.strip():
        return
    if parameters.lstrip().startswith("{"):
        _read_parameters_json(record, text, source, parameters)
        return
    prompt, negative, settings = parse_a1111_parameters(parameters)
    record.tool = "Fooocus" if "fooocus_scheme" in text else _a1111_tool(settings)
    record.sources.append(source)
    if not settings:
        record.problems.append(f"{source}: no settings line found; read as a prompt only")
    width = height = None
    if match := _SIZE.match(settings.get("Size", "")):
        width, height = match.groups()
    model = settings.get("Model")
    if model is None:
        model = _hash_label(settings.get("Model hash"))
    _fill(
        record,
        tool_version=settings.get("Version"),
        prompt=prompt,
        negative_prompt=negative,
        seed=settings.get("Seed"),
        steps=settings.get("Steps"),
        sampler=settings.get("Sampler"),
        cfg=settings.get("CFG scale"),
        width=width,
        height=height,
        model=model,
    )
    for key in ("postprocessing", "extras"):
        if key in text:
            record.postprocessing.extend(
                a1111_settings(line) or {"text": line}
                for line in text[key].splitlines()
                if line.strip()
            )
            break  # A1111 writes the same text under both keys


def _read_parameters_json(
    record: GenerationRecord, text: dict[str, str], source: str, parameters: str
) -> None:
    data = _load_json(parameters, source, record)
    if not isinstance(data, dict):
        return
    if "sui_image_params" in data:
        params = data["sui_image_params"] if isinstance(data["sui_image_params"], dict) else {}
        record.tool = "SwarmUI"
        record.sources.append(source)
        _fill(
            record,
            tool_version=params.get("swarm_version"),
            prompt=params.get("prompt"),
            negative_prompt=params.get("negativeprompt"),
            seed=params.get("seed"),
            steps=params.get("steps"),
            sampler=params.get("sampler"),
            cfg=params.get("cfgscale"),
            width=params.get("width"),
            height=params.get("height"),
            model=params.get("model"),
        )
        return
    fooocus_keys = {"full_prompt", "guidance_scale", "base_model", "performance"}
    if "fooocus_scheme" in text or fooocus_keys & data.keys():
        record.tool = "Fooocus"
        record.sources.append(source)
        width = height = None
        resolution = data.get("resolution")
        if isinstance(resolution, str):  # "(1152, 896)"
            numbers = re.findall(r"\d+", resolution)
            if len(numbers) == 2:
                width, height = numbers
        _fill(
            record,
            tool_version=data.get("version"),
            prompt=data.get("prompt"),
            negative_prompt=data.get("negative_prompt"),
            seed=data.get("seed"),
            steps=data.get("steps"),
            sampler=data.get("sampler"),
            cfg=data.get("guidance_scale"),
            width=width,
            height=height,
            model=data.get("base_model"),
        )
        return
    record.problems.append(f"{source}: JSON of a layout facefix does not know; kept as raw text")


# --- ComfyUI ---------------------------------------------------------------------------------

_COMFY_SAMPLERS = ("KSampler", "KSamplerAdvanced", "SamplerCustom", "SamplerCustomAdvanced")
_COMFY_TEXT_KEYS = ("text", "text_g", "prompt", "string", "value", "text_l")


def _read_comfyui(record: GenerationRecord, text: dict[str, str], _exif: str | None) -> None:
    if "prompt" not in text and "workflow" not in text:
        return
    if "workflow" not in text and not _looks_like_json(text["prompt"]):
        return  # a plain-text `prompt`, as some other tools write: not ComfyUI's
    graph = _load_json(text["prompt"], "prompt", record) if "prompt" in text else None
    workflow = _load_json(text["workflow"], "workflow", record) if "workflow" in text else None
    is_graph = isinstance(graph, dict) and any(
        isinstance(node, dict) and "class_type" in node for node in graph.values()
    )
    is_workflow = isinstance(workflow, dict) and isinstance(workflow.get("nodes"), list)
    if not (is_graph or is_workflow):
        if graph is not None or workflow is not None:
            record.problems.append("prompt/workflow: JSON, but not a ComfyUI graph")
        else:
            record.tool = "ComfyUI"  # ComfyUI's chunks are there, only unreadable
        return
    record.tool = "ComfyUI"
    if is_graph:
        record.sources.append("prompt")
        _read_comfy_graph(record, graph)
    if is_workflow:
        record.sources.append("workflow")
        _read_comfy_workflow(record, workflow)


def _looks_like_json(text: str) -> bool:
    return text.lstrip().startswith("{")


def _is_link(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[1], int)


def _comfy_lookup(
    graph: dict,
    start: Any,
    keys: tuple[str, ...],
    through: tuple[str, ...] = (),
    accept: Callable[[Any], bool] = lambda v: not isinstance(v, (dict, list)),
) -> Any:
    """The first acceptable literal under one of `keys`, searching from `start` (a node id or
    a link) breadth first along links held by `keys` and `through`."""
    queue = [str(start[0]) if _is_link(start) else str(start)]
    seen: set[str] = set()
    while queue and len(seen) < 64:
        node_id = queue.pop(0)
        if node_id in seen:
            continue
        seen.add(node_id)
        node = graph.get(node_id)
        inputs = node.get("inputs") if isinstance(node, dict) else None
        if not isinstance(inputs, dict):
            continue
        for key in keys:
            value = inputs.get(key)
            if _is_link(value):
                queue.append(str(value[0]))
            elif value is not None and accept(value):
                return value
        queue.extend(str(inputs[k][0]) for k in through if _is_link(inputs.get(k)))
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_name(value: Any) -> bool:
    return isinstance(value, str)


def _comfy_conditioning(graph: dict, sampler_id: str, name: str) -> str | None:
    node = graph[sampler_id]["inputs"]
    link = node.get(name)
    if not _is_link(link) and _is_link(node.get("guider")):
        guider = graph.get(str(node["guider"][0]), {})
        link = guider.get("inputs", {}).get(name) if isinstance(guider, dict) else None
    if not _is_link(link):
        return None
    through = ("conditioning", "conditioning_1", "conditioning_to", "conditioning_from", name)
    return _comfy_lookup(graph, link, _COMFY_TEXT_KEYS, through, _is_name)


def _read_comfy_graph(record: GenerationRecord, graph: dict) -> None:
    samplers = [
        node_id
        for node_id, node in graph.items()
        if isinstance(node, dict)
        and isinstance(node.get("inputs"), dict)
        and (node.get("class_type") in _COMFY_SAMPLERS or "KSampler" in str(node.get("class_type")))
    ]
    if not samplers:
        record.problems.append("prompt: no sampler node found in the ComfyUI graph")
        return
    # The first sampler by node id: in hires-fix graphs, the one that generated the image.
    sampler_id = min(samplers, key=lambda i: (not i.isdigit(), int(i) if i.isdigit() else 0, i))
    numbers, names = _is_number, _is_name
    seed_keys = ("seed", "noise_seed", "value", "int")
    _fill(
        record,
        prompt=_comfy_conditioning(graph, sampler_id, "positive"),
        negative_prompt=_comfy_conditioning(graph, sampler_id, "negative"),
        seed=_comfy_lookup(graph, sampler_id, seed_keys, ("noise",), numbers),
        steps=_comfy_lookup(graph, sampler_id, ("steps",), ("sigmas",), numbers),
        cfg=_comfy_lookup(graph, sampler_id, ("cfg",), ("guider",), numbers),
        sampler=_comfy_lookup(graph, sampler_id, ("sampler_name",), ("sampler",), names),
        width=_comfy_lookup(graph, sampler_id, ("width",), ("latent_image",), numbers),
        height=_comfy_lookup(graph, sampler_id, ("height",), ("latent_image",), numbers),
        model=_comfy_lookup(
            graph, sampler_id, ("ckpt_name", "unet_name", "model_name"), ("model", "guider"), names
        ),
    )


def _read_comfy_workflow(record: GenerationRecord, workflow: dict) -> None:
    """The UI-format workflow, read only for what the API-format `prompt` did not give:
    widget values by position, as ComfyUI's built-in nodes lay them out."""
    nodes = {n.get("id"): n for n in workflow["nodes"] if isinstance(n, dict)}
    links = {
        link[0]: link[1]
        for link in workflow.get("links") or []
        if isinstance(link, list) and len(link) >= 2
    }

    def widgets(node: dict) -> list:
        values = node.get("widgets_values")
        return values if isinstance(values, list) else []

    def linked_text(node: dict, name: str) -> str | None:
        for slot in node.get("inputs") or []:
            if isinstance(slot, dict) and slot.get("name") == name:
                source = nodes.get(links.get(slot.get("link")))
                values = widgets(source) if isinstance(source, dict) else []
                if values and isinstance(values[0], str):
                    return values[0]
        return None

    for node in nodes.values():
        values = widgets(node)
        if node.get("type") == "KSampler" and len(values) >= 5:
            _fill(record, seed=values[0], steps=values[2], cfg=values[3], sampler=values[4])
        elif node.get("type") == "KSamplerAdvanced" and len(values) >= 6:
            _fill(record, seed=values[1], steps=values[3], cfg=values[4], sampler=values[5])
        else:
            continue
        _fill(
            record,
            prompt=linked_text(node, "positive"),
            negative_prompt=linked_text(node, "negative"),
        )
        break
    for node in nodes.values():
        values = widgets(node)
        if node.get("type") == "CheckpointLoaderSimple" and values:
            _fill(record, model=values[0])
        elif node.get("type") == "EmptyLatentImage" and len(values) >= 2:
            _fill(record, width=values[0], height=values[1])


# --- NovelAI ---------------------------------------------------------------------------------


def _read_novelai(record: GenerationRecord, text: dict[str, str], _exif: str | None) -> None:
    is_novelai = text.get("Software", "").startswith("NovelAI")
    comment_text = text.get("Comment", "")
    if not is_novelai and not ("Source" in text and _looks_like_json(comment_text)):
        return
    comment = _load_json(comment_text, "Comment", record) if comment_text else None
    novelai_keys = {"uc", "request_type", "noise_schedule"}
    if not is_novelai and not (isinstance(comment, dict) and novelai_keys & comment.keys()):
        return
    record.tool = "NovelAI"
    record.sources.extend(k for k in ("Description", "Comment") if k in text)
    comment = comment if isinstance(comment, dict) else {}
    prompt = comment.get("prompt")
    negative = comment.get("uc")
    v4_prompt = comment.get("v4_prompt")
    if not prompt and isinstance(v4_prompt, dict):
        prompt = (v4_prompt.get("caption") or {}).get("base_caption")
    _fill(
        record,
        tool_version=text.get("Source"),
        prompt=prompt or text.get("Description"),
        negative_prompt=negative,
        seed=comment.get("seed"),
        steps=comment.get("steps"),
        sampler=comment.get("sampler"),
        cfg=comment.get("scale"),
        width=comment.get("width"),
        height=comment.get("height"),
        model=text.get("Source"),
    )


# Order matters where files carry several tools' chunks: the most specific reader goes first.
_READERS = (_read_invokeai3, _read_invokeai2, _read_novelai, _read_comfyui, _read_parameters)


# --- EXIF ------------------------------------------------------------------------------------


def exif_user_comment(exif: bytes) -> tuple[str | None, str | None]:
    """(text, problem) of the EXIF UserComment in `exif` (a TIFF structure, with or without a
    JPEG `Exif\\0\\0` header). No comment: (None, None)."""
    try:
        value = _exif_tag(exif, piexif.ExifIFD.UserComment)
    except ValueError as error:
        return None, str(error)
    if value is None:
        return None, None
    if isinstance(value, str):
        value = value.encode("latin-1", errors="replace")
    if not isinstance(value, bytes):
        return None, "EXIF UserComment has an unexpected type"
    return decode_user_comment(value)


def _exif_tag(exif: bytes, tag: int) -> Any:
    """One tag of the Exif IFD; ValueError if the EXIF cannot be read."""
    exif = exif.removeprefix(_EXIF_HEADER)
    # piexif.load treats bytes it does not recognise as a file name to open: check first.
    if not exif.startswith((b"II*\x00", b"MM\x00*")):
        raise ValueError("EXIF does not start with a TIFF header, not readable")
    try:
        return piexif.load(exif).get("Exif", {}).get(tag)
    except Exception as error:  # piexif raises many types on malformed EXIF
        raise ValueError(f"EXIF is unreadable ({type(error).__name__}: {error})") from error


def decode_user_comment(value: bytes) -> tuple[str | None, str | None]:
    """(text, problem) of a raw UserComment value: the 8-byte character-code prefix, then the
    text. UNICODE is UTF-16; A1111 writes it big-endian (piexif's choice) and other tools
    little-endian, so the byte order is taken from a BOM or from where the zero bytes fall."""
    prefix, body = value[:8], value[8:]
    problem = None
    if prefix == _USER_COMMENT_UNICODE:
        text, problem = _decode_utf16(body)
    elif prefix == _USER_COMMENT_ASCII:
        # Declared ASCII, yet tools routinely store UTF-8 here.
        text = _decode_latin1_text(body)
    elif prefix == _USER_COMMENT_JIS:
        text = body.decode("shift_jis", errors="replace")
    elif prefix == _USER_COMMENT_UNDEFINED:
        text = _decode_latin1_text(body)
    else:
        text = _decode_latin1_text(value)
        problem = "EXIF UserComment has no character-code prefix; read as UTF-8/Latin-1"
    text = text.rstrip("\x00")
    return (text or None), problem


def _decode_utf16(body: bytes) -> tuple[str, str | None]:
    problem = None
    if body.startswith((b"\xfe\xff", b"\xff\xfe")):
        encoding = "utf-16"  # the BOM decides
    else:
        zeros_even = body[0::2].count(0)
        zeros_odd = body[1::2].count(0)
        encoding = "utf-16-le" if zeros_odd > zeros_even else "utf-16-be"
    if len(body) % 2:
        body = body[:-1]
        problem = "EXIF UserComment (UNICODE) has an odd byte count; last byte dropped"
    try:
        return body.decode(encoding), problem
    except UnicodeDecodeError:
        bad = "EXIF UserComment (UNICODE) is not valid UTF-16; bad units shown as \ufffd"
        return body.decode(encoding, errors="replace"), bad


# --- JPEG and WebP input -----------------------------------------------------------------------


@dataclass
class _ForeignMetadata:
    exif: bytes | None = None
    xmp: bytes | None = None
    icc: bytes | None = None
    comments: list[bytes] = field(default_factory=list)


def chunks_for_foreign_image(data: bytes) -> list[Chunk]:
    """The PNG chunks that carry a JPEG's or WebP's metadata into a PNG output, in this order:
    iCCP (its ICC profile), eXIf (its EXIF, bytes unchanged), `parameters` (the EXIF
    UserComment, where A1111 and its forks put the generation settings), `fooocus_scheme`
    (Fooocus's EXIF MakerNote), the XMP packet as iTXt `XML:com.adobe.xmp`, and JPEG comments
    as tEXt `Comment`. Pixels are not touched here."""
    if data.startswith(JPEG_SIGNATURE):
        found = _jpeg_metadata(data)
    elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        found = _webp_metadata(data)
    else:
        raise UnsupportedImageError("not a PNG, JPEG or WebP file")
    chunks: list[Chunk] = []
    if found.icc:
        chunks.append(iccp_chunk(found.icc))
    if found.exif:
        chunks.append(exif_chunk(found.exif))
        comment, _problem = exif_user_comment(found.exif)
        if comment:
            chunks.append(text_chunk("parameters", comment))
        scheme = _fooocus_scheme(found.exif)
        if scheme:
            chunks.append(text_chunk("fooocus_scheme", scheme))
    if found.xmp:
        chunks.append(itxt_chunk(XMP_KEY, found.xmp.decode("utf-8", errors="replace")))
    for comment_bytes in found.comments:
        chunks.append(text_chunk("Comment", _decode_latin1_text(comment_bytes)))
    return chunks


def _fooocus_scheme(exif: bytes) -> str | None:
    """Fooocus names its metadata scheme in the EXIF MakerNote ("fooocus" or "a1111")."""
    try:
        note = _exif_tag(exif, piexif.ExifIFD.MakerNote)
    except ValueError:
        return None  # exif_user_comment reports unreadable EXIF already
    if isinstance(note, bytes) and note.rstrip(b"\x00") in (b"fooocus", b"a1111"):
        return note.rstrip(b"\x00").decode("ascii")
    return None


def _jpeg_metadata(data: bytes) -> _ForeignMetadata:
    found = _ForeignMetadata()
    icc_parts: dict[int, bytes] = {}
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            break  # not a marker: a damaged file; keep what was found so far
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:  # markers without a length
            pos += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image, start of scan: no metadata after this
            break
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        segment = data[pos + 4 : pos + 2 + length]
        pos += 2 + length
        if marker == 0xE1 and segment.startswith(_EXIF_HEADER) and found.exif is None:
            found.exif = segment[len(_EXIF_HEADER) :]
        elif marker == 0xE1 and segment.startswith(_XMP_HEADER) and found.xmp is None:
            found.xmp = segment[len(_XMP_HEADER) :]
        elif marker == 0xE2 and segment.startswith(_ICC_HEADER) and len(segment) > 14:
            icc_parts[segment[12]] = segment[14:]  # sequence number, count, then the data
        elif marker == 0xFE and segment:
            found.comments.append(segment)
    if icc_parts:
        found.icc = b"".join(icc_parts[n] for n in sorted(icc_parts))
    return found


def _webp_metadata(data: bytes) -> _ForeignMetadata:
    found = _ForeignMetadata()
    pos = 12
    while pos + 8 <= len(data):
        fourcc = data[pos : pos + 4]
        (size,) = struct.unpack("<I", data[pos + 4 : pos + 8])
        body = data[pos + 8 : pos + 8 + size]
        pos += 8 + size + (size & 1)  # chunks are padded to even length
        if fourcc == b"EXIF":
            found.exif = body.removeprefix(_EXIF_HEADER)
        elif fourcc == b"XMP ":
            found.xmp = body
        elif fourcc == b"ICCP":
            found.icc = body
    return found


def chunks_from_bytes(data: bytes) -> list[Chunk]:
    """A file's chunks by its signature: a PNG's own, or those made for a JPEG or WebP.
    Raises PngFormatError or UnsupportedImageError."""
    if is_png(data):
        return parse_chunks(data)
    return chunks_for_foreign_image(data)


def read_chunks(path: Path) -> list[Chunk]:
    """`chunks_from_bytes` of the file at `path`; OSError if it cannot be read."""
    return chunks_from_bytes(Path(path).read_bytes())


# --- what the output carries -------------------------------------------------------------------


def output_chunks(
    input_chunks: list[Chunk], operations: Sequence[Operation], record: dict
) -> list[Chunk]:
    """The metadata chunks of the output, in order: every carried input chunk unchanged, except
    that `sd-metadata` gets InvokeAI post-processing entries and an existing `postprocessing`
    gets a new line; a new A1111 `postprocessing` chunk right after `parameters` when there was
    none; then facefix's own iTXt record (after any earlier ones, so history reads in order)."""
    kept = carried_chunks(input_chunks)
    a1111_text = a1111_postprocessing_text(operations)
    decoded = [decode_text_chunk(chunk) for chunk in kept]
    texts = {entry[0]: entry[1] for entry in reversed(decoded) if entry}  # first one wins
    # A JSON `parameters` is Fooocus's or SwarmUI's, which have no A1111 extras record.
    add_postprocessing = (
        bool(a1111_text)
        and "postprocessing" not in texts
        and not _looks_like_json(texts.get("parameters", "{"))
    )
    out: list[Chunk] = []
    extended: set[str] = set()
    for chunk, entry in zip(kept, decoded, strict=True):
        keyword = entry[0] if entry else None
        if keyword == "sd-metadata" and keyword not in extended:
            new_text = extend_sd_metadata(entry[1], operations)
            if new_text is not None:
                chunk = _text_chunk_like(chunk, keyword, new_text)
                extended.add(keyword)
        elif keyword == "postprocessing" and a1111_text and keyword not in extended:
            separator = "" if entry[1].endswith("\n") else "\n"
            chunk = _text_chunk_like(chunk, keyword, entry[1] + separator + a1111_text)
            extended.add(keyword)
        out.append(chunk)
        if keyword == "parameters" and add_postprocessing and "postprocessing" not in extended:
            out.append(text_chunk("postprocessing", a1111_text))
            extended.add("postprocessing")
    record_json = json.dumps(record, sort_keys=True, separators=(",", ":"))
    return [*out, itxt_chunk(FACEFIX_KEY, record_json)]


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


def extend_sd_metadata(text: str, operations: Sequence[Operation]) -> str | None:
    """`sd-metadata` JSON with facefix's operations appended to `image.postprocessing`, written
    in the original's style; None when it cannot be extended safely (malformed JSON, no `image`
    object, a `postprocessing` that is neither a list nor null, or nothing to add)."""
    entries = invokeai_postprocessing_entries(operations)
    if not entries:
        return None
    try:
        meta = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return None
    image = meta.get("image") if isinstance(meta, dict) else None
    if not isinstance(image, dict):
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


def a1111_upscaler_name(model: str | None) -> str | None:
    """A1111's name for an upscaler weight file; custom models go by file stem, as in A1111."""
    if not model:
        return None
    stem = Path(model).stem
    return _A1111_UPSCALER_NAMES.get(stem, stem)


def _a1111_number(value: Any) -> int | float | None:
    number = _as_float(value)
    if number is None:
        return None
    return int(number) if number.is_integer() else round(number, 3)


def _a1111_quote(value: Any) -> str:
    """A1111 quotes a value (as JSON) only when it holds a comma, colon or newline."""
    text = str(value)
    if any(c in text for c in ",:\n"):
        return json.dumps(text, ensure_ascii=False)
    return text


def _text_chunk_like(original: Chunk, keyword: str, text: str) -> Chunk:
    """A text chunk for `text` of the same kind as `original`: same type where the text allows
    it, same compression, and for iTXt the same language tag and translated keyword."""
    if original.type == b"iTXt":
        rest = original.data.partition(b"\x00")[2]
        compressed = bool(rest[:1] == b"\x01")
        tags = rest[2:].split(b"\x00", 2)[:2]
        body = text.encode("utf-8")
        if compressed:
            body = zlib.compress(body)
        header = keyword.encode("latin-1") + b"\x00" + bytes([int(compressed), 0])
        return Chunk(b"iTXt", header + b"\x00".join(tags) + b"\x00" + body)
    try:
        if original.type == b"zTXt":
            return ztxt_chunk(keyword, text)
        return Chunk(b"tEXt", keyword.encode("latin-1") + b"\x00" + text.encode("latin-1"))
    except UnicodeEncodeError:
        return itxt_chunk(keyword, text, compressed=original.type == b"zTXt")


# --- facefix's own records ---------------------------------------------------------------------


def facefix_records(chunks: list[Chunk]) -> list[dict]:
    """Earlier facefix records in a file, oldest first; unreadable ones are skipped."""
    records = []
    for chunk in chunks:
        decoded = decode_text_chunk(chunk)
        if decoded and decoded[0] == FACEFIX_KEY:
            try:
                parsed = json.loads(decoded[1])
            except json.JSONDecodeError:
                continue
            if isinstance(parsed, dict):
                records.append(parsed)
    return records


def is_facefix_output(chunks: list[Chunk]) -> bool:
    return bool(facefix_records(chunks))


# --- `facefix info` ----------------------------------------------------------------------------


@dataclass
class InfoResult:
    """One file for `facefix info`: its record and chunks, or why it could not be read."""

    path: Path
    format: str | None = None  # "PNG", "JPEG" or "WebP"
    record: GenerationRecord | None = None
    # The PNG's own chunks; for JPEG and WebP, the PNG chunks `fix` would carry their metadata in.
    chunks: list[Chunk] = field(default_factory=list)
    error: str | None = None

    def to_dict(self, *, include_chunks: bool = False) -> dict[str, Any]:
        """JSON-ready: path and record (or error); with `include_chunks`, every chunk too,
        text chunks with their whole text."""
        if self.record is None:
            return {"path": str(self.path), "error": self.error}
        data: dict[str, Any] = {"path": str(self.path), "format": self.format}
        data["record"] = self.record.to_dict()
        if include_chunks:
            data["chunks"] = [asdict(row) for row in chunk_rows(self.chunks)]
        return data


def info(paths: Iterable[Path]) -> list[InfoResult]:
    """The generation record of each file, in order; a file that cannot be read gets an error
    message instead and the others are still read."""
    results = []
    for path in paths:
        path = Path(path)
        try:
            data = path.read_bytes()
            chunks = chunks_from_bytes(data)
        except FileNotFoundError:
            results.append(InfoResult(path, error="no such file"))
        except IsADirectoryError:
            results.append(InfoResult(path, error="is a directory"))
        except OSError as error:
            results.append(InfoResult(path, error=error.strerror or str(error)))
        except (PngFormatError, UnsupportedImageError) as error:
            results.append(InfoResult(path, error=str(error)))
        else:
            record = parse_generation(chunks)
            results.append(InfoResult(path, _image_format(data), record, chunks))
    return results


def _image_format(data: bytes) -> str:
    if is_png(data):
        return "PNG"
    return "JPEG" if data.startswith(JPEG_SIGNATURE) else "WebP"


def record_rows(record: GenerationRecord) -> list[tuple[str, str]]:
    """(label, text) pairs describing a record for display; empty fields are left out."""
    rows: list[tuple[str, str]] = []
    if record.tool is not None:
        tool = record.tool
        if record.tool_version:
            tool += f" {record.tool_version}"
        rows.append(("Tool", tool))
    size = f"{record.width}x{record.height}" if record.width and record.height else None
    cfg = f"{record.cfg:g}" if record.cfg is not None else None
    for label, value in (
        ("Prompt", record.prompt),
        ("Negative prompt", record.negative_prompt),
        ("Seed", record.seed),
        ("Steps", record.steps),
        ("Sampler", record.sampler),
        ("CFG scale", cfg),
        ("Size", size),
        ("Model", record.model),
    ):
        if value not in (None, ""):
            rows.append((label, str(value)))
    if record.postprocessing:
        history = "\n".join(_describe_entry(entry) for entry in record.postprocessing)
        rows.append(("Post-processing", history))
    if record.facefix:
        rows.append(("facefix runs", "\n".join(describe_facefix_record(r) for r in record.facefix)))
    if record.sources:
        rows.append(("Read from", ", ".join(record.sources)))
    if record.problems:
        rows.append(("Problems", "\n".join(record.problems)))
    return rows


def _describe_entry(entry: dict) -> str:
    return ", ".join(f"{key}: {value}" for key, value in entry.items())


def describe_facefix_record(record: dict) -> str:
    """One line per facefix run: version, then each operation with its settings."""
    version = record.get("facefix_version") or record.get("version")
    operations = record.get("operations")
    if not isinstance(operations, list):
        return json.dumps(record, sort_keys=True)
    described = []
    for operation in operations:
        if not isinstance(operation, dict):
            continue
        name = str(operation.get("type", "?"))
        if operation.get("version"):
            name += f" {operation['version']}"
        settings = [
            f"{key} {operation[key]}"
            for key in ("scale", "strength", "fidelity", "model")
            if operation.get(key) is not None
        ]
        described.append(f"{name} ({', '.join(settings)})")
    prefix = f"facefix {version}: " if version else ""
    return prefix + ("; ".join(described) or "no operations")


@dataclass
class ChunkRow:
    """One line of `facefix info --raw`."""

    type: str
    keyword: str  # empty for chunks that are not text
    length: int  # bytes of chunk data (summed over a run of IDAT chunks)
    preview: str  # the start of the text, or a short description of binary data
    count: int = 1  # how many chunks the row stands for (a run of IDAT is one row)
    text: str | None = None  # the whole text of a text chunk


def chunk_rows(chunks: list[Chunk], preview_chars: int = 60) -> list[ChunkRow]:
    """A row per chunk for `--raw`; consecutive IDAT chunks share one row."""
    rows: list[ChunkRow] = []
    for chunk in chunks:
        kind = chunk.type.decode("latin-1")
        if kind == "IDAT" and rows and rows[-1].type == "IDAT":
            rows[-1].count += 1
            rows[-1].length += len(chunk.data)
            rows[-1].preview = f"image data, {rows[-1].count} chunks"
            continue
        entry, problem = _decode_text(chunk)
        if entry:
            preview = entry.text
        elif problem:
            preview = problem
        elif kind == "IDAT":
            preview = "image data"
        elif kind == "IHDR" and len(chunk.data) == 13:
            width, height, depth, colour = struct.unpack(">IIBB", chunk.data[:10])
            preview = f"{width}x{height}, {depth}-bit, colour type {colour}"
        else:
            preview = chunk.data[:16].hex(" ")
        preview = preview.replace("\n", "\\n")
        if len(preview) > preview_chars:
            preview = preview[: preview_chars - 1] + "…"
        keyword = entry.keyword if entry else ""
        text = entry.text if entry else None
        rows.append(ChunkRow(kind, keyword, len(chunk.data), preview, text=text))
    return rows
