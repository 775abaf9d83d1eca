"""metadata.tools.invokeai: InvokeAI 2 (sd-metadata, dream) and 3+ records."""

from __future__ import annotations

import json

import pytest
from metadata_support import (
    DREAM,
    SD_METADATA,
    chunks_of,
)

from facefix_cli.io.pngchunks import (
    text_chunk,
)
from facefix_cli.metadata import (
    parse_generation,
)


def test_invokeai2_record():
    chunks = chunks_of(
        text_chunk("Dream", DREAM), text_chunk("sd-metadata", json.dumps(SD_METADATA))
    )
    record = parse_generation(chunks)
    assert (record.tool, record.tool_version) == ("InvokeAI", "2.2.5")
    assert record.prompt == "a knight in armour [blurry, lowres]"
    assert record.negative_prompt == "blurry, lowres"
    assert (record.seed, record.steps, record.cfg, record.sampler) == (42, 30, 7.5, "k_euler_a")
    assert (record.width, record.height, record.model) == (512, 640, "stable-diffusion-1.5")
    assert record.sources == ["sd-metadata", "Dream"]


def test_invokeai_dream_alone():
    record = parse_generation(chunks_of(text_chunk("Dream", "banana sushi -s 50 -S 7 -W 640")))
    assert (record.tool, record.prompt, record.steps, record.seed) == (
        "InvokeAI",
        "banana sushi",
        50,
        7,
    )
    assert record.width == 640


def test_malformed_sd_metadata_keeps_raw_and_falls_back_to_dream():
    broken = '{"image": {"seed": 42, "steps": '
    chunks = chunks_of(text_chunk("Dream", DREAM), text_chunk("sd-metadata", broken))
    record = parse_generation(chunks)
    assert record.raw["sd-metadata"] == broken
    assert any(p.startswith("sd-metadata: not valid JSON") for p in record.problems)
    assert record.seed == 42  # from Dream
    assert record.prompt == "a knight in armour [blurry, lowres]"


def test_dream_with_unbalanced_quotes_is_a_problem():
    record = parse_generation(chunks_of(text_chunk("Dream", '"open quote -s 20 -S 3')))
    assert record.steps == 20 and record.seed == 3
    assert any("unbalanced quotes" in p for p in record.problems)


@pytest.mark.parametrize(
    "model",
    [
        {
            "key": "k1",
            "hash": "blake3:00",
            "name": "Juggernaut XL v9",
            "base": "sdxl",
            "type": "main",
        },
        {"model_name": "Juggernaut XL v9", "base_model": "sdxl", "model_type": "main"},
    ],
    ids=["invokeai4", "invokeai3"],
)
def test_invokeai3_record(model):
    metadata = {
        "generation_mode": "txt2img",
        "positive_prompt": "a lighthouse at dusk",
        "negative_prompt": "fog",
        "width": 768,
        "height": 512,
        "seed": 2024,
        "cfg_scale": 6.0,
        "steps": 30,
        "scheduler": "dpmpp_2m_k",
        "model": model,
        "app_version": "4.2.9",
    }
    graph = {"id": "g1", "nodes": {"n1": {"type": "noise", "seed": 2024}}, "edges": []}
    chunks = chunks_of(
        text_chunk("invokeai_metadata", json.dumps(metadata)),
        text_chunk("invokeai_graph", json.dumps(graph)),
    )
    record = parse_generation(chunks)
    assert (record.tool, record.tool_version) == ("InvokeAI", "4.2.9")
    assert (record.prompt, record.negative_prompt) == ("a lighthouse at dusk", "fog")
    assert (record.seed, record.steps, record.cfg, record.sampler) == (2024, 30, 6.0, "dpmpp_2m_k")
    assert (record.width, record.height, record.model) == (768, 512, "Juggernaut XL v9")
    assert json.loads(record.raw["invokeai_graph"]) == graph
