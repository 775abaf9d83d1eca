"""NovelAI: PNG text chunks `Description` (the prompt in older files), `Software` ("NovelAI"),
`Source` (the model), `Comment` (JSON settings); in WebP, the same entries as one JSON object
in the EXIF UserComment; in the stealth alpha payload, the same JSON object gzip-compressed.
"""

from __future__ import annotations

import json

from facefix_cli.metadata.generation import Generation, fill
from facefix_cli.metadata.tools.base import Texts, ToolFormat, json_object, looks_like_json

_NOVELAI_KEYS = {"uc", "request_type", "noise_schedule"}


def detect(texts: Texts) -> bool:
    if (texts.get("Software") or "").startswith("NovelAI"):
        return True
    comment = texts.json("Comment") if "Source" in texts and "Comment" in texts else None
    return isinstance(comment, dict) and bool(_NOVELAI_KEYS & comment.keys())


def read(texts: Texts, record: Generation) -> None:
    record.tool = "NovelAI"
    record.sources.extend(k for k in ("Description", "Comment") if k in texts)
    comment = texts.json("Comment") if "Comment" in texts else None
    if (
        "Comment" in texts
        and not isinstance(comment, dict)
        and not looks_like_json(texts["Comment"])
    ):
        record.problems.append("Comment: not JSON; only the prompt could be read")
    comment = comment if isinstance(comment, dict) else {}
    prompt = comment.get("prompt")
    v4_prompt = comment.get("v4_prompt")
    if not prompt and isinstance(v4_prompt, dict):
        caption = v4_prompt.get("caption")
        prompt = caption.get("base_caption") if isinstance(caption, dict) else None
    source = texts.get("Source")
    fill(
        record,
        prompt=prompt or texts.get("Description"),
        negative_prompt=comment.get("uc"),
        seed=comment.get("seed"),
        steps=comment.get("steps"),
        sampler=comment.get("sampler"),
        cfg=comment.get("scale"),
        width=comment.get("width"),
        height=comment.get("height"),
        model=source,
    )


def from_payload(text: str) -> dict[str, str] | None:
    """NovelAI's payload: a JSON object of its PNG text entries (Comment, Software, ...)."""
    data = json_object(text)
    if data is None or "Comment" not in data:
        return None
    if not (str(data.get("Software", "")).startswith("NovelAI") or "Source" in data):
        return None
    return {
        key: value if isinstance(value, str) else json.dumps(value)
        for key, value in data.items()
        if isinstance(key, str)
    }


FORMAT = ToolFormat(
    name="NovelAI",
    keywords=("Description", "Software", "Source", "Comment"),
    detect=detect,
    read=read,
    from_payload=from_payload,
)
