"""Fooocus and RuinedFooocus: JSON in the `parameters` chunk. Fooocus marks it with a
`fooocus_scheme` chunk (in JPEG/WebP: the EXIF MakerNote, with UserComment and Software, all in
IFD0); RuinedFooocus with `"software": "RuinedFooocus"`. Fooocus's "a1111" scheme is A1111 text,
read by the A1111 module and named Fooocus there.
"""

from __future__ import annotations

import re
from typing import Any

from facefix_cli.metadata.containers.exif import MAKER_NOTE, ExifTags
from facefix_cli.metadata.generation import Generation, fill
from facefix_cli.metadata.tools.base import Texts, ToolFormat

_FOOOCUS_KEYS = {"full_prompt", "guidance_scale", "base_model", "performance"}


def _data(texts: Texts) -> dict | None:
    data = texts.json("parameters") if "parameters" in texts else None
    return data if isinstance(data, dict) else None


def _is_ruined(data: dict) -> bool:
    return str(data.get("software", "")).startswith("RuinedFooocus")


def detect(texts: Texts) -> bool:
    data = _data(texts)
    if data is None:
        return False
    return "fooocus_scheme" in texts or _is_ruined(data) or bool(_FOOOCUS_KEYS & data.keys())


def _resolution(value: Any) -> list[str | None]:
    if isinstance(value, str):  # "(1152, 896)"
        numbers = re.findall(r"\d+", value)
        if len(numbers) == 2:
            return list(numbers)
    return [None, None]


def read(texts: Texts, record: Generation) -> None:
    data = _data(texts) or {}
    record.sources.append("parameters")
    if _is_ruined(data):
        record.tool = "RuinedFooocus"
        fill(
            record,
            prompt=data.get("Prompt"),
            negative_prompt=data.get("Negative"),
            seed=data.get("seed"),
            steps=data.get("steps"),
            sampler=data.get("sampler_name"),
            cfg=data.get("cfg"),
            width=data.get("width"),
            height=data.get("height"),
            model=data.get("base_model_name"),
        )
        return
    record.tool = "Fooocus"
    width, height = _resolution(data.get("resolution"))
    fill(
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


def from_exif(tags: ExifTags) -> dict[str, str]:
    """Fooocus names its metadata scheme in the EXIF MakerNote ("fooocus" or "a1111")."""
    scheme = tags.text(MAKER_NOTE)
    return {"fooocus_scheme": scheme} if scheme in ("fooocus", "a1111") else {}


FORMAT = ToolFormat(
    name="Fooocus",
    keywords=("parameters", "fooocus_scheme"),
    detect=detect,
    read=read,
    from_exif=from_exif,
)
