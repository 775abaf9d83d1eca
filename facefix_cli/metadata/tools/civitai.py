"""Civitai's on-site generator: JSON (in the EXIF UserComment of its JPEGs, hence `parameters`
once carried into a PNG) holding a ComfyUI API graph plus `extraMetadata`, a JSON string (or
object) with `prompt`, `negativePrompt`, `steps`, `cfgScale`, `sampler`, `seed`, `width`,
`height`. Its A1111-style text (with `Civitai resources:`) is read by the A1111 module.

No real Civitai file was available; the layout follows public metadata readers' descriptions
and the tests use synthetic samples (see tests/fixtures/metadata/MANIFEST.md).
"""

from __future__ import annotations

from typing import Any

from facefix_cli.metadata.generation import Generation, fill
from facefix_cli.metadata.tools.base import Texts, ToolFormat, json_object
from facefix_cli.metadata.tools.comfyui import read_graph

_KEYWORDS = ("parameters", "prompt")


def _data(texts: Texts) -> tuple[str, dict] | None:
    for keyword in _KEYWORDS:
        data = texts.json(keyword) if keyword in texts else None
        if isinstance(data, dict) and "extraMetadata" in data:
            return keyword, data
    return None


def detect(texts: Texts) -> bool:
    return _data(texts) is not None


def _extra(data: dict) -> dict[str, Any]:
    extra = data.get("extraMetadata")
    if isinstance(extra, str):
        extra = json_object(extra)
    return extra if isinstance(extra, dict) else {}


def read(texts: Texts, record: Generation) -> None:
    found = _data(texts)
    assert found is not None  # detect() said so
    keyword, data = found
    record.tool = "Civitai"
    record.sources.append(keyword)
    extra = _extra(data)
    fill(
        record,
        prompt=extra.get("prompt"),
        negative_prompt=extra.get("negativePrompt"),
        seed=extra.get("seed"),
        steps=extra.get("steps"),
        sampler=extra.get("sampler"),
        cfg=extra.get("cfgScale"),
        width=extra.get("width"),
        height=extra.get("height"),
    )
    graph = {k: v for k, v in data.items() if isinstance(v, dict) and "class_type" in v}
    if graph:
        read_graph(record, graph)  # fills what extraMetadata left out (model, size...)


FORMAT = ToolFormat(name="Civitai", keywords=_KEYWORDS, detect=detect, read=read)
