"""SwarmUI: JSON in the `parameters` chunk (the same keyword as A1111), under the root key
`sui_image_params`, with lowercase keys (`cfgscale`, `negativeprompt`) and values that may be
strings."""

from __future__ import annotations

from facefix_cli.metadata.generation import Generation, fill
from facefix_cli.metadata.tools.base import Texts, ToolFormat


def detect(texts: Texts) -> bool:
    data = texts.json("parameters") if "parameters" in texts else None
    return isinstance(data, dict) and "sui_image_params" in data


def read(texts: Texts, record: Generation) -> None:
    data = texts.json("parameters")
    params = data.get("sui_image_params") if isinstance(data, dict) else None
    params = params if isinstance(params, dict) else {}
    record.tool = "SwarmUI"
    record.sources.append("parameters")
    fill(
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


FORMAT = ToolFormat(name="SwarmUI", keywords=("parameters",), detect=detect, read=read)
