"""ComfyUI: the API graph (`prompt`) and the UI workflow (`workflow`), in PNG text chunks or in
a JPEG's or WebP's EXIF: labelled IFD0 text tags, as ComfyUI's WebP saver writes them (Model =
`prompt:{json}`, Make = `workflow:{json}`) and saver nodes such as Save Image Extended
(ImageDescription = `Workflow: {json}`, Make = `Prompt: {json}`), any label case and spacing;
or the UserComment, as a JSON envelope (`{"prompt": {...}, "workflow": {...}}`, SaveImage+),
a bare API graph or a labelled text. A labelled value is taken only when the rest is a JSON
graph of the label's kind. A JPEG or WebP's graphs become the `prompt` and `workflow` text
chunks that ComfyUI's PNG loader reads.

The graph is followed, not searched: from the output node (SaveImage and the like) back along
its inputs to the sampler that produced the image, then along that sampler's latent input to
the passes before it. The first pass (whose latent starts from an empty latent) is the base
pass: its seed, steps, sampler, CFG, size, prompts and model are the record's; later passes
(hires fix, refiner) are listed with their own settings. Samplers are KSampler,
KSamplerAdvanced, SamplerCustom and SamplerCustomAdvanced (with its guider, noise, sampler and
sigmas nodes); values reached through links (primitive, reroute and string nodes) are followed.
Node ids are strings and never assumed numeric. Every walk visits each node at most once.
"""

from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import Callable
from typing import Any, TypeGuard

from facefix_cli.metadata.containers.exif import ExifTags
from facefix_cli.metadata.generation import Generation, Pass, as_float, fill
from facefix_cli.metadata.tools.base import Texts, ToolFormat, json_object, looks_like_json

_SAMPLERS = {"KSampler", "KSamplerAdvanced", "SamplerCustom", "SamplerCustomAdvanced"}
_TEXT_KEYS = ("text", "text_g", "prompt", "string", "value", "text_l", "t5xxl", "clip_l")
_CONDITIONING_KEYS = (
    "conditioning",
    "conditioning_1",
    "conditioning_2",
    "conditioning_to",
    "conditioning_from",
    "positive",
    "negative",
    "positive_NEW",  # PairConditioningSetProperties(AndCombine): hooked region prompts
    "negative_NEW",
)
# Inputs that are not the latent image's path: never followed when looking for earlier passes.
_NOT_LATENT = {"positive", "negative", "model", "clip", "vae", "guider", "sigmas", "sampler"}
_NOT_LATENT |= {"noise", "control_net", "clip_vision", "conditioning"}
_LATENT_FIRST = ("latent_image", "samples", "latent", "pixels", "image", "images")
_MODEL_KEYS = ("ckpt_name", "unet_name", "model_name", "model_path")
_MAX_NODES = 10_000  # a graph larger than this is not walked


def _is_link(value: Any) -> TypeGuard[list[Any]]:
    return (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], (str, int))
        and isinstance(value[1], int)
    )


class Graph:
    """An API-format graph: node id -> {"class_type", "inputs"}."""

    def __init__(self, nodes: dict) -> None:
        self.nodes = {
            str(node_id): node
            for node_id, node in nodes.items()
            if isinstance(node, dict) and isinstance(node.get("inputs"), dict)
        }

    def inputs(self, node_id: str) -> dict:
        node = self.nodes.get(node_id)
        return node["inputs"] if node is not None else {}

    def kind(self, node_id: str) -> str:
        node = self.nodes.get(node_id)
        return str(node.get("class_type", "")) if node is not None else ""

    def is_sampler(self, node_id: str) -> bool:
        inputs = self.inputs(node_id)
        if self.kind(node_id) in _SAMPLERS:
            return True
        # Custom samplers: a latent in, and prompts or a guider (KSamplerSelect has neither).
        return "latent_image" in inputs and ("positive" in inputs or "guider" in inputs)

    def value(
        self, start: Any, keys: tuple[str, ...], through: tuple[str, ...], accept: Callable
    ) -> Any:
        """The first acceptable literal under one of `keys`, breadth first from `start` (a node
        id or a link) along links held by `keys` and `through`.

        A node that takes both a positive and a negative conditioning and gives them back as a
        pair (ControlNetApplyAdvanced, PairConditioningSetProperties...) is walked by the output
        the link leaves from: output 0 only along its positive inputs, output 1 only along its
        negative ones, so the negative prompt is not found by a walk for the positive."""
        first = (str(start[0]), start[1]) if _is_link(start) else (str(start), None)
        queue: deque[tuple[str, int | None]] = deque([first])
        seen: set[tuple[str, int | None]] = set()
        while queue:
            node_id, slot = queue.popleft()
            if (node_id, slot) in seen or node_id not in self.nodes:
                continue
            seen.add((node_id, slot))
            if "ZeroOut" in self.kind(node_id):
                continue  # zeroed conditioning carries no text, whatever feeds it
            inputs = self.inputs(node_id)
            for key in keys:
                value = inputs.get(key)
                if _is_link(value):
                    queue.append((str(value[0]), value[1]))
                elif value is not None and accept(value):
                    return value
            links = [k for k in through if _is_link(inputs.get(k))]
            sides = {side for side in ("positive", "negative") for k in links if k.startswith(side)}
            if len(sides) == 2 and slot in (0, 1):
                side = "positive" if slot == 0 else "negative"
                links = [k for k in links if k.startswith(side)]
            queue.extend((str(inputs[k][0]), inputs[k][1]) for k in links)
        return None

    def upstream_samplers(self, start: str, keys: Callable[[str], bool]) -> list[str]:
        """The nearest samplers reached from `start`'s inputs whose names pass `keys`,
        breadth first, without walking past a sampler."""
        found: list[str] = []
        queue, seen = deque([start]), {start}
        while queue:
            node_id = queue.popleft()
            for name, value in self.inputs(node_id).items():
                if not (_is_link(value) and keys(name)):
                    continue
                source = str(value[0])
                if source in seen:
                    continue
                seen.add(source)
                if self.is_sampler(source):
                    found.append(source)
                else:
                    queue.append(source)
        return found

    def size(self, node_id: str, seen: set[str] | None = None) -> tuple[float, float] | None:
        """The pixel size a latent or image node carries: its own width and height, scaled by
        an upscale node's factor, or else that of its latent/image input."""
        seen = set() if seen is None else seen
        if node_id in seen or node_id not in self.nodes:
            return None
        seen.add(node_id)
        inputs = self.inputs(node_id)
        width = self.value(node_id, ("width",), (), _is_number)
        height = self.value(node_id, ("height",), (), _is_number)
        if width and height and not self.is_sampler(node_id):
            return float(width), float(height)
        names = [k for k in _LATENT_FIRST if k in inputs]
        names += [k for k in inputs if k not in _LATENT_FIRST and k not in _NOT_LATENT]
        for name in names:
            if _is_link(inputs[name]):
                size = self.size(str(inputs[name][0]), seen)
                if size is not None:
                    scale = as_float(inputs.get("scale_by")) or 1.0
                    return size[0] * scale, size[1] * scale
        return None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_name(value: Any) -> bool:
    return isinstance(value, str)


def _passes(graph: Graph) -> list[str]:
    """The sampler ids of the passes that made the output, base pass first."""
    outputs = [
        node_id
        for node_id in graph.nodes
        if any(word in graph.kind(node_id) for word in ("Save", "Preview"))
    ]
    final = None
    for output in sorted(outputs):
        samplers = graph.upstream_samplers(output, lambda _name: True)
        if samplers:
            final = samplers[0]
            break
    if final is None:  # no output node: the sampler no other sampler builds on
        samplers = [n for n in graph.nodes if graph.is_sampler(n)]
        earlier = {
            s for n in samplers for s in graph.upstream_samplers(n, lambda k: k not in _NOT_LATENT)
        }
        last = [n for n in samplers if n not in earlier]
        if not last:
            return []
        final = last[0]
    chain = [final]
    while len(chain) < 64:
        before = graph.upstream_samplers(chain[-1], lambda k: k not in _NOT_LATENT)
        before = [s for s in before if s not in chain]
        if not before:
            break
        chain.append(before[0])
    return chain[::-1]


def _conditioning(graph: Graph, sampler: str, name: str) -> str | None:
    inputs = graph.inputs(sampler)
    link = inputs.get(name)
    if not _is_link(link) and _is_link(inputs.get("guider")):
        guider = graph.inputs(str(inputs["guider"][0]))
        link = guider.get(name)
        if not _is_link(link) and name == "positive":
            link = guider.get("conditioning")  # BasicGuider: one conditioning, no negative
    if not _is_link(link):
        return None
    # An empty text node is no prompt at all.
    return graph.value(link, _TEXT_KEYS, _CONDITIONING_KEYS, lambda v: _is_name(v) and v != "")


def _settings(graph: Graph, sampler: str) -> dict[str, Any]:
    seed_keys = ("seed", "noise_seed", "value", "int", "number")
    size = graph.size(sampler)
    cfg = graph.value(sampler, ("cfg",), ("guider",), _is_number)
    return {
        "seed": graph.value(sampler, seed_keys, ("noise",), _is_number),
        "steps": graph.value(sampler, ("steps",), ("sigmas",), _is_number),
        "cfg": cfg,
        "sampler": graph.value(sampler, ("sampler_name",), ("sampler",), _is_name),
        "width": round(size[0]) if size else None,
        "height": round(size[1]) if size else None,
        "model": graph.value(sampler, _MODEL_KEYS, ("model", "guider"), _is_name),
    }


def _vae(graph: Graph) -> str | None:
    """The VAE a loader node names; None when the checkpoint's own VAE decodes."""
    for node_id in graph.nodes:
        if "VAELoader" in graph.kind(node_id):
            name = graph.inputs(node_id).get("vae_name")
            if _is_name(name) and name:
                return name
    return None


def _loras(graph: Graph) -> list[str]:
    """Every LoRA a loader node applies, as `name (strength)`, in the graph's order."""
    found = []
    for node_id in graph.nodes:
        inputs = graph.inputs(node_id)
        name = inputs.get("lora_name")
        if not (_is_name(name) and name):
            continue
        strength = inputs.get("strength_model", inputs.get("strength"))
        found.append(f"{name} ({strength:g})" if _is_number(strength) else name)
    return found


def read_graph(record: Generation, nodes: dict) -> None:
    graph = Graph(nodes)
    if len(graph.nodes) > _MAX_NODES:
        record.problems.append(f"prompt: a graph of more than {_MAX_NODES} nodes is not read")
        return
    chain = _passes(graph)
    if not chain:
        record.problems.append("prompt: no sampler node found in the ComfyUI graph")
        return
    base, *later = chain
    fill(
        record,
        prompt=_conditioning(graph, base, "positive"),
        negative_prompt=_conditioning(graph, base, "negative"),
        scheduler=graph.value(base, ("scheduler",), ("sigmas",), _is_name),
        vae=_vae(graph),
        **_settings(graph, base),
    )
    if not record.loras:
        record.loras = _loras(graph)
    for sampler in later:
        step = Pass(node=sampler)
        fill(step, **_settings(graph, sampler))
        record.passes.append(step)


def _read_workflow(record: Generation, workflow: dict) -> None:
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
            fill(record, seed=values[0], steps=values[2], cfg=values[3], sampler=values[4])
        elif node.get("type") == "KSamplerAdvanced" and len(values) >= 6:
            fill(record, seed=values[1], steps=values[3], cfg=values[4], sampler=values[5])
        else:
            continue
        fill(
            record,
            prompt=linked_text(node, "positive"),
            negative_prompt=linked_text(node, "negative"),
        )
        break
    for node in nodes.values():
        values = widgets(node)
        if node.get("type") == "CheckpointLoaderSimple" and values:
            fill(record, model=values[0])
        elif node.get("type") == "EmptyLatentImage" and len(values) >= 2:
            fill(record, width=values[0], height=values[1])


def is_graph(value: Any) -> TypeGuard[dict[str, Any]]:
    return isinstance(value, dict) and any(
        isinstance(node, dict) and "class_type" in node for node in value.values()
    )


def _is_workflow(value: Any) -> TypeGuard[dict[str, Any]]:
    return isinstance(value, dict) and isinstance(value.get("nodes"), list)


def detect(texts: Texts) -> bool:
    if "workflow" in texts:
        return True
    return "prompt" in texts and looks_like_json(texts["prompt"])


def read(texts: Texts, record: Generation) -> None:
    record.tool = "ComfyUI"
    graph = texts.json("prompt") if "prompt" in texts else None
    workflow = texts.json("workflow") if "workflow" in texts else None
    wrong_graph = graph is not None and not is_graph(graph)
    wrong_workflow = workflow is not None and not _is_workflow(workflow)
    if wrong_graph or wrong_workflow:
        record.problems.append("prompt/workflow: JSON, but not a ComfyUI graph")
    if is_graph(graph):
        record.sources.append("prompt")
        read_graph(record, graph)
    if _is_workflow(workflow):
        record.sources.append("workflow")
        _read_workflow(record, workflow)


# `prompt:{...}`, `Workflow: {...}`: a label, a colon, then the JSON.
_LABEL = re.compile(r"\s*(prompt|workflow)\s*:\s*", re.IGNORECASE)
_KINDS = {"prompt": ("an API graph", is_graph), "workflow": ("a UI workflow", _is_workflow)}
_TAG_NAMES = {0x010D: "DocumentName", 0x010E: "ImageDescription", 0x010F: "Make", 0x0110: "Model"}


def _labelled(text: str) -> tuple[str, str, Any] | None:
    """(keyword, JSON text, parsed JSON object or None) of a labelled text; None when the text
    has no `prompt`/`workflow` label followed by JSON."""
    match = _LABEL.match(text)
    if match is None or not looks_like_json(text[match.end() :]):
        return None
    rest = text[match.end() :]
    return match.group(1).lower(), rest, json_object(rest)


def from_exif(tags: ExifTags) -> dict[str, str]:
    """The graphs in labelled IFD0 text tags (Model first, then Make, ImageDescription and the
    tags below: ComfyUI's own saver puts further `key:{json}` entries there). A label whose
    rest is not a graph of its kind is a problem, and not taken."""
    found: dict[str, str] = {}
    for tag, text in sorted(tags.ifd0_texts().items(), reverse=True):
        labelled = _labelled(text)
        if labelled is None:
            continue
        keyword, rest, value = labelled
        if _KINDS[keyword][1](value):
            found.setdefault(keyword, rest)
        elif value != {}:  # Save Image Extended writes `Workflow: {}` when there is none
            name = _TAG_NAMES.get(tag, f"tag 0x{tag:04X}")
            tags.problems.append(
                f"EXIF {name}: labelled {keyword!r}, but the rest is not {_KINDS[keyword][0]} "
                "in JSON; not read"
            )
    return found


def from_payload(text: str) -> dict[str, str] | None:
    """A UserComment holding ComfyUI's graphs: JSON {"prompt": {...}, "workflow": {...}} (as
    SaveImage+ writes it), a bare API graph, or a labelled `Prompt: {json}` text."""
    labelled = _labelled(text)
    if labelled is not None:
        keyword, rest, value = labelled
        return {keyword: rest} if _KINDS[keyword][1](value) else None
    data = json_object(text)
    if data is None or "extraMetadata" in data:
        return None  # Civitai's generator: its own module reads it
    found = {}
    for key, check in (("prompt", is_graph), ("workflow", _is_workflow)):
        value = data.get(key)
        if isinstance(value, str) and looks_like_json(value):
            found[key] = value
        elif check(value):
            found[key] = json.dumps(value)
    if not found and is_graph(data):
        found["prompt"] = text
    return found or None


FORMAT = ToolFormat(
    name="ComfyUI",
    keywords=("prompt", "workflow"),
    detect=detect,
    read=read,
    from_payload=from_payload,
    from_exif=from_exif,
)
