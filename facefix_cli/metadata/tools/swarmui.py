"""SwarmUI: JSON in the `parameters` chunk (the same keyword as A1111), under the root key
`sui_image_params`, with lowercase keys (`cfgscale`, `negativeprompt`) and values that may be
strings; in a JPEG or WebP, the same JSON in the UserComment or, as StableSwarmUI wrote it, in
EXIF Model.

SwarmUI renders through a ComfyUI backend, and its PNGs may also carry the ComfyUI `prompt`
graph that made them. `sui_image_params` makes the file SwarmUI's whatever else it carries: its
settings are what the user typed, so they are the record's; the graph is read as a further
record, its passes after the base pass (a refiner or upscale pass) listed in `passes`. Both
chunks are carried unchanged.
"""

from __future__ import annotations

from facefix_cli.metadata.containers.exif import ExifTags
from facefix_cli.metadata.generation import Generation, fill
from facefix_cli.metadata.tools.base import Texts, ToolFormat, json_object
from facefix_cli.metadata.tools.comfyui import is_graph, read_graph

_MODEL = 0x0110


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
        # StableSwarmUI (before "sampler") named the sampler by backend
        sampler=params.get("sampler")
        or params.get("comfyuisampler")
        or params.get("autowebuisampler"),
        cfg=params.get("cfgscale"),
        width=params.get("width"),
        height=params.get("height"),
        model=params.get("model"),
    )
    graph = texts.json("prompt") if "prompt" in texts else None
    if is_graph(graph):
        record.sources.append("prompt")
        from_graph = Generation()
        read_graph(from_graph, graph)
        record.passes.extend(from_graph.passes)
        record.problems.extend(from_graph.problems)


def from_exif(tags: ExifTags) -> dict[str, str]:
    """StableSwarmUI's JPEG/WebP: the `parameters` JSON in EXIF Model."""
    text = tags.ifd0_texts().get(_MODEL)
    data = json_object(text) if text is not None else None
    return {"parameters": text} if text is not None and data and "sui_image_params" in data else {}


FORMAT = ToolFormat(
    name="SwarmUI",
    keywords=("parameters",),
    detect=detect,
    read=read,
    from_exif=from_exif,
)
