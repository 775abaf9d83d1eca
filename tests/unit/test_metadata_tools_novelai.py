"""metadata.tools.novelai: NovelAI's Comment JSON."""

from __future__ import annotations

import json

from metadata_support import (
    chunks_of,
)

from facefix_cli.io.pngchunks import (
    text_chunk,
)
from facefix_cli.metadata import (
    parse_generation,
)


def test_novelai_record():
    comment = {
        "prompt": "1girl, smiling, cherry blossoms",
        "steps": 28,
        "height": 1216,
        "width": 832,
        "scale": 5.0,
        "uncond_scale": 1.0,
        "seed": 123456789,
        "sampler": "k_euler_ancestral",
        "uc": "lowres, bad anatomy",
        "request_type": "PromptGenerateRequest",
        "some_future_key": {"nested": [1, 2]},
    }
    chunks = chunks_of(
        text_chunk("Title", "NovelAI generated image"),
        text_chunk("Description", "1girl, smiling, cherry blossoms"),
        text_chunk("Software", "NovelAI"),
        text_chunk("Source", "Stable Diffusion XL C1E1DE52"),
        text_chunk("Comment", json.dumps(comment)),
    )
    record = parse_generation(chunks)
    # The model is `Source`; it is not a version of NovelAI (that printed the name twice).
    assert (record.tool, record.tool_version) == ("NovelAI", None)
    assert (record.prompt, record.negative_prompt) == (comment["prompt"], comment["uc"])
    assert (record.seed, record.steps, record.cfg) == (123456789, 28, 5.0)
    assert (record.sampler, record.width, record.height) == ("k_euler_ancestral", 832, 1216)
    assert record.problems == []


def test_novelai_with_malformed_comment_still_has_its_prompt():
    chunks = chunks_of(
        text_chunk("Description", "a cat"),
        text_chunk("Software", "NovelAI"),
        text_chunk("Comment", '{"steps": 28,'),
    )
    record = parse_generation(chunks)
    assert (record.tool, record.prompt) == ("NovelAI", "a cat")
    assert any(p.startswith("Comment: not valid JSON") for p in record.problems)
