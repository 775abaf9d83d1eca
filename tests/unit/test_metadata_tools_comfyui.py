"""metadata.tools.comfyui: ComfyUI API graphs and workflows, links followed through custom samplers."""

from __future__ import annotations

import json

import pytest
from metadata_support import (
    COMFY_PROMPT,
    COMFY_WORKFLOW,
    chunks_of,
)

from facefix_cli.io.pngchunks import (
    text_chunk,
)
from facefix_cli.metadata import (
    parse_generation,
)


def assert_comfy_castle(record) -> None:
    assert record.tool == "ComfyUI"
    assert (record.prompt, record.negative_prompt) == ("a castle on a hill", "blurry")
    assert (record.seed, record.steps, record.cfg, record.sampler) == (
        156680208700286,
        20,
        8.0,
        "euler",
    )
    assert (record.width, record.height, record.model) == (512, 768, "v1-5.safetensors")


def test_comfyui_api_graph():
    chunks = chunks_of(
        text_chunk("prompt", json.dumps(COMFY_PROMPT)),
        text_chunk("workflow", json.dumps(COMFY_WORKFLOW)),
    )
    record = parse_generation(chunks)
    assert_comfy_castle(record)
    assert record.sources == ["prompt", "workflow"]


def test_comfyui_workflow_only():
    record = parse_generation(chunks_of(text_chunk("workflow", json.dumps(COMFY_WORKFLOW))))
    assert_comfy_castle(record)


def test_comfyui_custom_sampler_graph_follows_links():
    graph = {
        "13": {
            "class_type": "SamplerCustomAdvanced",
            "inputs": {
                "noise": ["25", 0],
                "guider": ["22", 0],
                "sampler": ["16", 0],
                "sigmas": ["17", 0],
                "latent_image": ["27", 0],
            },
        },
        "25": {"class_type": "RandomNoise", "inputs": {"noise_seed": 42}},
        "22": {
            "class_type": "CFGGuider",
            "inputs": {"cfg": 3.5, "model": ["30", 0], "positive": ["26", 0], "negative": ["7", 0]},
        },
        "26": {"class_type": "FluxGuidance", "inputs": {"guidance": 3.5, "conditioning": ["6", 0]}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a red fox", "clip": ["11", 0]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["11", 0]}},
        "16": {"class_type": "KSamplerSelect", "inputs": {"sampler_name": "euler"}},
        "17": {"class_type": "BasicScheduler", "inputs": {"steps": 25, "model": ["30", 0]}},
        "27": {"class_type": "EmptySD3LatentImage", "inputs": {"width": 1024, "height": 768}},
        "30": {"class_type": "UNETLoader", "inputs": {"unet_name": "flux1-dev.safetensors"}},
    }
    record = parse_generation(chunks_of(text_chunk("prompt", json.dumps(graph))))
    assert record.tool == "ComfyUI"
    assert record.prompt == "a red fox"
    assert record.negative_prompt is None  # empty text
    assert (record.seed, record.steps, record.cfg, record.sampler) == (42, 25, 3.5, "euler")
    assert (record.width, record.height, record.model) == (1024, 768, "flux1-dev.safetensors")


def comfy_pair_graph(pair: dict) -> dict:
    return {
        "3": {
            "class_type": "KSampler",
            "inputs": {
                "seed": 1,
                "steps": 20,
                "cfg": 7.0,
                "sampler_name": "euler",
                "positive": ["9", 0],
                "negative": ["9", 1],
                "latent_image": ["5", 0],
            },
        },
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 512}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a cat"}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry"}},
        "8": {
            "class_type": "ConditioningSetTimestepRange",
            "inputs": {"conditioning": ["6", 0], "start": 0.0, "end": 1.0},
        },
        "9": pair,
    }


@pytest.mark.parametrize(
    "pair",
    [
        # the negative text is nearer than the positive one: a walk that follows both inputs of
        # the pair node for either output found "blurry" as the prompt
        {
            "class_type": "ControlNetApplyAdvanced",
            "inputs": {"positive": ["8", 0], "negative": ["7", 0], "strength": 1.0},
        },
        # lora-hooks graphs: the pair's prompts come in on positive_NEW / negative_NEW
        {
            "class_type": "PairConditioningSetProperties",
            "inputs": {"positive_NEW": ["8", 0], "negative_NEW": ["7", 0], "strength": 1.0},
        },
    ],
    ids=["controlnet", "pair_conditioning"],
)
def test_comfyui_pair_node_is_walked_by_the_output_the_link_leaves(pair):
    record = parse_generation(chunks_of(text_chunk("prompt", json.dumps(comfy_pair_graph(pair)))))
    assert (record.prompt, record.negative_prompt) == ("a cat", "blurry")


def test_comfyui_malformed_json_is_kept_raw():
    chunks = chunks_of(text_chunk("prompt", '{"3": {"class_type": '), text_chunk("workflow", "{]"))
    record = parse_generation(chunks)
    assert record.tool == "ComfyUI"
    assert record.raw["prompt"] == '{"3": {"class_type": '
    assert {p.split(":")[0] for p in record.problems} >= {"prompt", "workflow"}


def test_plain_text_prompt_chunk_is_not_taken_for_comfyui():
    record = parse_generation(chunks_of(text_chunk("prompt", "a plain prompt")))
    assert record.tool is None
    assert record.problems == []


def test_comfyui_scheduler_vae_and_loras_are_read():
    """Finding 8 (#30): ComfyUI's scheduler, VAE and LoRAs were not shown."""
    graph = json.loads(json.dumps(COMFY_PROMPT))
    graph["10"]["inputs"]["strength_model"] = 0.7
    graph["11"] = {
        "class_type": "LoraLoaderModelOnly",
        "inputs": {"lora_name": "style.safetensors", "strength_model": 1.0, "model": ["10", 0]},
    }
    graph["12"] = {"class_type": "VAELoader", "inputs": {"vae_name": "sdxl_vae.safetensors"}}
    graph["8"]["inputs"]["vae"] = ["12", 0]
    record = parse_generation(chunks_of(text_chunk("prompt", json.dumps(graph))))
    assert_comfy_castle(record)
    assert record.scheduler == "normal"
    assert record.vae == "sdxl_vae.safetensors"
    assert record.loras == ["detail.safetensors (0.7)", "style.safetensors (1)"]
    rows = dict(record.rows())
    assert (rows["Scheduler"], rows["VAE"]) == ("normal", "sdxl_vae.safetensors")
    assert rows["LoRAs"] == "detail.safetensors (0.7)\nstyle.safetensors (1)"
    assert record.to_dict()["loras"] == record.loras
