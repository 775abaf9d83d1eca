"""Generation metadata: reading every tool's format, and carrying it into the output intact."""

from __future__ import annotations

import io
import json
import struct
import zlib
from pathlib import Path

import piexif
import piexif.helper
import pytest
from conftest import INVOKEAI_FIXTURES
from PIL import Image, ImageCms

from facefix_cli.io.pngchunks import (
    Chunk,
    carried_chunks,
    decode_text_chunk,
    exif_chunk,
    iccp_chunk,
    itxt_chunk,
    parse_chunks,
    text_chunk,
    with_chunks,
    ztxt_chunk,
)
from facefix_cli.metadata import (
    FACEFIX_KEY,
    UnsupportedImageError,
    a1111_postprocessing_text,
    a1111_settings,
    chunks_for_foreign_image,
    chunks_from_bytes,
    decode_user_comment,
    extend_sd_metadata,
    info,
    output_chunks,
    parse_a1111_parameters,
    parse_generation,
)
from facefix_cli.operations import Operation

FIXTURES = INVOKEAI_FIXTURES

A1111_PARAMETERS = (
    "masterpiece, portrait of a woman, <lora:detail:0.6>\n"
    "soft light\n"
    "Negative prompt: blurry, lowres\n"
    "Steps: 28, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 6.5, Seed: 3141592653, "
    "Size: 512x768, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, "
    'Lora hashes: "detail: 1a2b3c, style: 4d5e6f", Version: v1.10.1'
)

OPS_GFPGAN = [
    Operation(
        type="esrgan", scale=2, strength=0.75, model="RealESRGAN_x2plus.pth", sha256="aa" * 32
    ),
    Operation(type="gfpgan", strength=0.8, model="GFPGANv1.4.pth", sha256="bb" * 32, version="1.4"),
]
OPS_CODEFORMER = [
    Operation(
        type="esrgan", scale=4, strength=1.0, model="4x-UltraSharp.safetensors", sha256="cc" * 32
    ),
    Operation(
        type="codeformer", strength=0.8, fidelity=0.5, model="codeformer.pth", sha256="dd" * 32
    ),
]


def facefix_record(operations: list[Operation], run: int = 1) -> dict:
    return {
        "facefix_version": "0.1.0",
        "operations": [operation.to_json() for operation in operations],
        "source": {"file": f"run{run}.png", "sha256": f"{run:02d}" * 32},
    }


def tiny_png(mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (4, 3), (10, 20, 30, 40)[: len(mode)]).save(buffer, "PNG")
    return buffer.getvalue()


def png_with(*chunks: Chunk) -> bytes:
    return with_chunks(tiny_png(), list(chunks))


def chunks_of(*chunks: Chunk) -> list[Chunk]:
    return parse_chunks(png_with(*chunks))


def read_chunks(path: Path) -> list[Chunk]:
    return chunks_from_bytes(Path(path).read_bytes())


def facefix_records(chunks: list[Chunk]) -> list[dict]:
    return parse_generation(chunks).facefix


def text_of(chunks: list[Chunk], keyword: str) -> list[str]:
    return [d[1] for c in chunks if (d := decode_text_chunk(c)) and d[0] == keyword]


def exif_with_comment(comment: bytes, **extra: bytes) -> bytes:
    """EXIF (with the JPEG `Exif\\0\\0` header) holding a raw UserComment value."""
    exif_ifd = {piexif.ExifIFD.UserComment: comment}
    if "maker_note" in extra:
        exif_ifd[piexif.ExifIFD.MakerNote] = extra["maker_note"]
    return piexif.dump({"0th": {}, "Exif": exif_ifd})


def encoded(fmt: str, **save_args) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 100, 50)).save(buffer, fmt, **save_args)
    return buffer.getvalue()


def assert_carried_unchanged(input_chunks: list[Chunk], output: list[Chunk], extended=()) -> None:
    """Every carried input chunk is in the output, byte-identical and in the same order,
    apart from text chunks whose keyword is in `extended`."""
    expected = [
        c
        for c in carried_chunks(input_chunks)
        if not ((d := decode_text_chunk(c)) and d[0] in extended)
    ]
    missing = [c for c in expected if c not in output]
    assert not missing, f"chunks lost or changed: {missing}"
    positions = [output.index(c) for c in expected]
    assert positions == sorted(positions)


# --- text chunk kinds ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda text: text_chunk("parameters", text),
        lambda text: ztxt_chunk("parameters", text),
        lambda text: itxt_chunk("parameters", text, compressed=True),
        lambda text: itxt_chunk("parameters", text, compressed=False),
    ],
    ids=["tEXt", "zTXt", "iTXt-compressed", "iTXt"],
)
def test_parameters_read_from_every_text_chunk_kind(make):
    chunk = make(A1111_PARAMETERS)
    record = parse_generation(chunks_of(chunk))
    assert record.tool == "AUTOMATIC1111"
    assert record.seed == 3141592653
    assert record.raw["parameters"] == A1111_PARAMETERS
    assert record.problems == []


def test_non_latin_text_goes_to_itxt_and_reads_back():
    prompt = "富士山の風景, Kraków café\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 5"
    chunk = text_chunk("parameters", prompt)
    assert chunk.type == b"iTXt"
    record = parse_generation(chunks_of(chunk))
    assert record.prompt == "富士山の風景, Kraków café"
    assert record.steps == 20


def test_latin1_bytes_in_text_are_read_as_latin1():
    body = b"caf\xe9 au lait\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 9"
    record = parse_generation(chunks_of(Chunk(b"tEXt", b"parameters\x00" + body)))
    assert record.prompt == "café au lait"
    assert record.seed == 9


def test_utf8_bytes_in_text_are_read_as_utf8():
    body = "Zürich ☂\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 9".encode()
    record = parse_generation(chunks_of(Chunk(b"tEXt", b"parameters\x00" + body)))
    assert record.prompt == "Zürich ☂"


def test_invalid_utf8_in_itxt_is_a_problem_not_an_error():
    body = b"bad \xff\xfe bytes\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 9"
    chunk = Chunk(b"iTXt", b"parameters\x00\x00\x00\x00\x00" + body)
    record = parse_generation(chunks_of(chunk))
    assert record.prompt == "bad \ufffd\ufffd bytes"
    assert any("not valid UTF-8" in p for p in record.problems)


def test_corrupt_compressed_text_is_a_problem_and_the_rest_is_read():
    broken = Chunk(b"zTXt", b"Comment\x00\x00not zlib data")
    record = parse_generation(chunks_of(broken, text_chunk("parameters", A1111_PARAMETERS)))
    assert any("zTXt 'Comment'" in p for p in record.problems)
    assert record.seed == 3141592653


def test_megabyte_text_chunk_is_read_and_carried():
    big = "x" * 1_000_000
    chunks = chunks_of(itxt_chunk("notes", big, compressed=True), text_chunk("big", big))
    record = parse_generation(chunks)
    assert len(record.raw["notes"]) == 1_000_000
    assert record.raw["big"] == big
    output = output_chunks(chunks, OPS_GFPGAN, facefix_record(OPS_GFPGAN))
    assert_carried_unchanged(chunks, output)


def test_repeated_keywords_are_all_kept_in_raw():
    chunks = chunks_of(text_chunk("Comment", "one"), text_chunk("Comment", "two"))
    assert parse_generation(chunks).raw == {"Comment": "one", "Comment (2)": "two"}


def test_file_without_metadata():
    record = parse_generation(parse_chunks(tiny_png()))
    assert record.tool is None
    assert not record.has_generation_metadata
    assert record.raw == {} and record.problems == []
    assert not record.has_generation_metadata


# --- AUTOMATIC1111 and forks -------------------------------------------------------------------


def test_a1111_parameters_parse_with_quoted_values():
    prompt, negative, settings = parse_a1111_parameters(A1111_PARAMETERS)
    assert prompt == "masterpiece, portrait of a woman, <lora:detail:0.6>\nsoft light"
    assert negative == "blurry, lowres"
    assert settings["Lora hashes"] == "detail: 1a2b3c, style: 4d5e6f"
    assert settings["Version"] == "v1.10.1"
    assert list(settings)[:3] == ["Steps", "Sampler", "Schedule type"]


def test_a1111_record():
    record = parse_generation(chunks_of(text_chunk("parameters", A1111_PARAMETERS)))
    assert (record.tool, record.tool_version) == ("AUTOMATIC1111", "v1.10.1")
    assert record.negative_prompt == "blurry, lowres"
    assert (record.steps, record.sampler, record.cfg) == (28, "DPM++ 2M", 6.5)
    assert (record.width, record.height) == (512, 768)
    assert record.model == "v1-5-pruned-emaonly"
    assert record.sources == ["parameters"]


@pytest.mark.parametrize(
    ("version", "tool"),
    [("Version: f2.0.1v1.10.1-previous-519-g44eb4ea8", "Forge"), ("App: SD.Next", "SD.Next")],
)
def test_a1111_forks_are_named(version, tool):
    text = f"a cat\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, {version}"
    assert parse_generation(chunks_of(text_chunk("parameters", text))).tool == tool


def test_parameters_without_settings_line_is_not_a_record_and_its_text_is_shown():
    # An A1111 record needs its settings line (issue 9, item 7: screenshots with a prompt-like
    # `parameters` were shown as AUTOMATIC1111 with that text as the prompt).
    record = parse_generation(chunks_of(text_chunk("parameters", "just a prompt: with a colon")))
    assert record.tool is None
    assert record.prompt is None
    (problem,) = record.problems
    assert "no settings line" in problem and problem.endswith("just a prompt: with a colon")


def test_a1111_negative_prompt_line_alone_makes_a_record():
    text = "a cat\nNegative prompt: dogs"
    record = parse_generation(chunks_of(text_chunk("parameters", text)))
    assert (record.tool, record.prompt, record.negative_prompt) == (
        "AUTOMATIC1111",
        "a cat",
        "dogs",
    )


def test_a1111_postprocessing_history_is_read():
    chunks = chunks_of(
        text_chunk("parameters", A1111_PARAMETERS),
        text_chunk("postprocessing", "Postprocess upscale by: 2, GFPGAN visibility: 0.5"),
    )
    record = parse_generation(chunks)
    assert record.postprocessing == [{"Postprocess upscale by": "2", "GFPGAN visibility": "0.5"}]


def test_settings_line_parser_tolerates_odd_values():
    settings = a1111_settings('Aa: 1, Bb: "unterminated, Cc: plain, Dd: "x\\"y"')
    assert settings == {"Aa": "1", "Bb": '"unterminated', "Cc": "plain", "Dd": 'x"y'}


# --- InvokeAI ----------------------------------------------------------------------------------


SD_METADATA = {
    "model": "stable diffusion",
    "model_weights": "stable-diffusion-1.5",
    "model_hash": "cc6cb27103417325ff94f52b7a5d2dde45a7515b25c255d8e396c90014281516",
    "app_id": "invoke-ai/InvokeAI",
    "app_version": "2.2.5",
    "image": {
        "prompt": [{"prompt": "a knight in armour [blurry, lowres]", "weight": 1.0}],
        "steps": 30,
        "cfg_scale": 7.5,
        "threshold": 0,
        "postprocessing": None,
        "sampler": "k_euler_a",
        "variations": [],
        "type": "txt2img",
        "seed": 42,
        "width": 512,
        "height": 640,
    },
}
DREAM = '"a knight in armour [blurry, lowres]" -s 30 -S 42 -W 512 -H 640 -C 7.5 -A k_euler_a'


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


# --- ComfyUI ---------------------------------------------------------------------------------

COMFY_PROMPT = {
    "3": {
        "class_type": "KSampler",
        "inputs": {
            "seed": 156680208700286,
            "steps": 20,
            "cfg": 8.0,
            "sampler_name": "euler",
            "scheduler": "normal",
            "denoise": 1.0,
            "model": ["10", 0],
            "positive": ["6", 0],
            "negative": ["7", 0],
            "latent_image": ["5", 0],
        },
    },
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "v1-5.safetensors"}},
    "10": {
        "class_type": "LoraLoader",
        "inputs": {"lora_name": "detail.safetensors", "model": ["4", 0], "clip": ["4", 1]},
    },
    "5": {
        "class_type": "EmptyLatentImage",
        "inputs": {"width": 512, "height": 768, "batch_size": 1},
    },
    "6": {
        "class_type": "CLIPTextEncode",
        "inputs": {"text": "a castle on a hill", "clip": ["10", 1]},
    },
    "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["10", 1]}},
    "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
    "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "ComfyUI", "images": ["8", 0]}},
}
COMFY_WORKFLOW = {
    "last_node_id": 7,
    "nodes": [
        {
            "id": 3,
            "type": "KSampler",
            "inputs": [
                {"name": "positive", "type": "CONDITIONING", "link": 4},
                {"name": "negative", "type": "CONDITIONING", "link": 6},
            ],
            "widgets_values": [156680208700286, "randomize", 20, 8, "euler", "normal", 1],
        },
        {"id": 6, "type": "CLIPTextEncode", "widgets_values": ["a castle on a hill"]},
        {"id": 7, "type": "CLIPTextEncode", "widgets_values": ["blurry"]},
        {"id": 4, "type": "CheckpointLoaderSimple", "widgets_values": ["v1-5.safetensors"]},
        {"id": 5, "type": "EmptyLatentImage", "widgets_values": [512, 768, 1]},
    ],
    "links": [[4, 6, 0, 3, 1, "CONDITIONING"], [6, 7, 0, 3, 2, "CONDITIONING"]],
}


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


# --- NovelAI, Fooocus, SwarmUI ------------------------------------------------------------------


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


FOOOCUS = {
    "adm_guidance": "(1.5, 0.8, 0.3)",
    "base_model": "juggernautXL_v8Rundiffusion",
    "full_negative_prompt": ["(worst quality, low quality:1.4)"],
    "full_prompt": ["a red fox in snow, highly detailed"],
    "guidance_scale": 4.0,
    "negative_prompt": "",
    "performance": "Speed",
    "prompt": "a red fox in snow",
    "resolution": "(1152, 896)",
    "sampler": "dpmpp_2m_sde_gpu",
    "scheduler": "karras",
    "seed": "1234567890",
    "steps": 30,
    "styles": "['Fooocus V2']",
    "version": "Fooocus v2.5.5",
}


def test_fooocus_record():
    chunks = chunks_of(
        text_chunk("parameters", json.dumps(FOOOCUS)), text_chunk("fooocus_scheme", "fooocus")
    )
    record = parse_generation(chunks)
    assert (record.tool, record.tool_version) == ("Fooocus", "Fooocus v2.5.5")
    assert (record.prompt, record.negative_prompt) == ("a red fox in snow", "")
    assert (record.seed, record.steps, record.cfg) == (1234567890, 30, 4.0)
    assert (record.width, record.height) == (1152, 896)
    assert (record.sampler, record.model) == ("dpmpp_2m_sde_gpu", "juggernautXL_v8Rundiffusion")


def test_fooocus_a1111_scheme_is_named_fooocus():
    text = "a fox\nSteps: 30, Sampler: DPM++ 2M SDE Karras, Seed: 5, Version: Fooocus v2.5.5"
    chunks = chunks_of(text_chunk("parameters", text), text_chunk("fooocus_scheme", "a1111"))
    record = parse_generation(chunks)
    assert (record.tool, record.seed) == ("Fooocus", 5)


def test_swarmui_parameters_json():
    params = {
        "sui_image_params": {
            "prompt": "a lake",
            "negativeprompt": "people",
            "model": "sdxl_base",
            "seed": 77,
            "steps": 25,
            "cfgscale": 6,
            "width": 1024,
            "height": 1024,
            "swarm_version": "0.9.2",
        }
    }
    record = parse_generation(chunks_of(text_chunk("parameters", json.dumps(params))))
    assert (record.tool, record.prompt, record.negative_prompt) == ("SwarmUI", "a lake", "people")
    assert (record.seed, record.cfg, record.model) == (77, 6.0, "sdxl_base")


def test_malformed_json_parameters_is_a_problem():
    record = parse_generation(chunks_of(text_chunk("parameters", '{"prompt": "a fox", ')))
    assert record.tool is None
    assert record.raw["parameters"] == '{"prompt": "a fox", '
    assert any(p.startswith("parameters: not valid JSON") for p in record.problems)


def test_unknown_json_and_wrong_types_never_raise():
    odd = {"image": {"seed": "not a number", "steps": [1], "cfg_scale": "7.5", "width": True}}
    record = parse_generation(chunks_of(text_chunk("sd-metadata", json.dumps(odd))))
    assert record.tool == "InvokeAI"
    assert (record.seed, record.steps, record.width, record.cfg) == (None, None, None, 7.5)
    not_an_object = parse_generation(chunks_of(text_chunk("invokeai_metadata", "[1, 2, 3]")))
    assert not_an_object.tool == "InvokeAI"
    assert not_an_object.raw == {"invokeai_metadata": "[1, 2, 3]"}


# --- EXIF, JPEG and WebP -----------------------------------------------------------------------


def utf16_comment(text: str, byte_order: str) -> bytes:
    return b"UNICODE\x00" + text.encode(f"utf-16-{byte_order}")


@pytest.mark.parametrize(
    "comment",
    [
        piexif.helper.UserComment.dump(A1111_PARAMETERS, encoding="unicode"),  # as A1111 writes
        utf16_comment(A1111_PARAMETERS, "le"),
        utf16_comment(A1111_PARAMETERS, "be"),
        b"UNICODE\x00" + A1111_PARAMETERS.encode("utf-16"),  # with a BOM
        piexif.helper.UserComment.dump(A1111_PARAMETERS, encoding="ascii"),
    ],
    ids=["unicode-piexif", "unicode-le", "unicode-be", "unicode-bom", "ascii"],
)
def test_user_comment_encodings(comment):
    assert decode_user_comment(comment) == (A1111_PARAMETERS, None)


def test_user_comment_non_ascii_in_both_byte_orders():
    text = "Zürich 富士山"
    assert decode_user_comment(utf16_comment(text, "le"))[0] == text
    assert decode_user_comment(utf16_comment(text, "be"))[0] == text


def test_user_comment_odd_prefix_and_length_are_problems():
    text, problem = decode_user_comment(b"UNICODE\x00\x00a\x00")
    assert text == "a" and "odd byte count" in problem
    text, problem = decode_user_comment(b"no prefix here")
    assert text == "no prefix here" and "no character-code prefix" in problem


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP"])
@pytest.mark.parametrize("encoding", ["unicode", "ascii"])
def test_foreign_image_metadata_becomes_png_chunks(fmt, encoding):
    comment = piexif.helper.UserComment.dump(A1111_PARAMETERS, encoding=encoding)
    exif = exif_with_comment(comment)
    data = encoded(fmt, exif=exif)
    chunks = chunks_for_foreign_image(data)
    assert chunks[0] == exif_chunk(exif)
    assert chunks[0].data == exif[len(b"Exif\x00\x00") :]  # the TIFF structure, as eXIf holds it
    assert text_of(chunks, "parameters") == [A1111_PARAMETERS]
    record = parse_generation(chunks)
    assert (record.tool, record.seed, record.negative_prompt) == (
        "AUTOMATIC1111",
        3141592653,
        "blurry, lowres",
    )


def test_jpeg_icc_xmp_and_comment_are_carried():
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/">facefix test</x:xmpmeta>'
    data = encoded("JPEG", icc_profile=icc, xmp=xmp, comment=b"shot on a pinhole")
    chunks = chunks_for_foreign_image(data)
    assert chunks[0] == iccp_chunk(icc)
    assert zlib.decompress(chunks[0].data.split(b"\x00", 2)[2]) == icc
    assert text_of(chunks, "XML:com.adobe.xmp") == [xmp.decode()]
    assert text_of(chunks, "Comment") == ["shot on a pinhole"]


def test_webp_icc_and_xmp_are_carried():
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = encoded("WEBP", icc_profile=icc, xmp=b"<x:xmpmeta>w</x:xmpmeta>")
    chunks = chunks_for_foreign_image(data)
    assert chunks[0] == iccp_chunk(icc)
    assert text_of(chunks, "XML:com.adobe.xmp") == ["<x:xmpmeta>w</x:xmpmeta>"]


def test_fooocus_jpeg_scheme_from_maker_note():
    comment = piexif.helper.UserComment.dump(json.dumps(FOOOCUS), encoding="unicode")
    data = encoded("JPEG", exif=exif_with_comment(comment, maker_note=b"fooocus"))
    chunks = chunks_for_foreign_image(data)
    assert text_of(chunks, "fooocus_scheme") == ["fooocus"]
    assert parse_generation(chunks).tool == "Fooocus"


def test_png_exif_user_comment_is_read_when_there_is_no_parameters_chunk():
    comment = piexif.helper.UserComment.dump(A1111_PARAMETERS, encoding="unicode")
    record = parse_generation(chunks_of(exif_chunk(exif_with_comment(comment))))
    assert record.tool == "AUTOMATIC1111"
    assert record.sources == ["EXIF UserComment"]


def test_exif_that_is_not_tiff_is_a_problem_and_is_never_opened_as_a_path(tmp_path):
    # piexif.load opens unrecognised bytes as a file name; that must never happen.
    decoy = tmp_path / "decoy.jpg"
    decoy.write_bytes(encoded("JPEG", exif=exif_with_comment(b"ASCII\x00\x00\x00secret")))
    record = parse_generation(chunks_of(Chunk(b"eXIf", str(decoy).encode())))
    assert "EXIF UserComment" not in record.raw
    assert any("TIFF header" in p for p in record.problems)


def test_truncated_foreign_files_give_what_they_have():
    data = encoded("JPEG", exif=exif_with_comment(b"ASCII\x00\x00\x00a cat"))
    assert chunks_for_foreign_image(data[:30]) == []
    webp = encoded("WEBP", exif=exif_with_comment(b"ASCII\x00\x00\x00a cat"))
    assert isinstance(chunks_for_foreign_image(webp[:20]), list)


def test_read_chunks_dispatches_on_signature(tmp_path):
    png = tmp_path / "a.png"
    png.write_bytes(png_with(text_chunk("parameters", A1111_PARAMETERS)))
    jpg = tmp_path / "renamed.png"  # the signature decides, not the name
    jpg.write_bytes(encoded("JPEG", exif=exif_with_comment(b"ASCII\x00\x00\x00a cat")))
    assert parse_chunks(png.read_bytes()) == read_chunks(png)
    assert text_of(read_chunks(jpg), "parameters") == ["a cat"]
    with pytest.raises(UnsupportedImageError):
        chunks_from_bytes(b"GIF89a....")


# --- what the output carries ---------------------------------------------------------------------


def test_a1111_gets_a_postprocessing_chunk_after_parameters():
    chunks = chunks_of(
        text_chunk("parameters", A1111_PARAMETERS),
        Chunk(b"pHYs", struct.pack(">IIB", 2835, 2835, 1)),
    )
    output = output_chunks(chunks, OPS_GFPGAN, facefix_record(OPS_GFPGAN))
    assert_carried_unchanged(chunks, output)
    assert output[0] == chunks[1]  # parameters, untouched
    assert decode_text_chunk(output[1]) == (
        "postprocessing",
        "Postprocess upscale by: 2, Postprocess upscaler: R-ESRGAN 2x+, GFPGAN visibility: 0.8",
    )
    assert output[2].type == b"pHYs"
    assert json.loads(decode_text_chunk(output[-1])[1]) == facefix_record(OPS_GFPGAN)


def test_a1111_postprocessing_text_for_codeformer_and_custom_upscaler():
    assert a1111_postprocessing_text(OPS_CODEFORMER) == (
        "Postprocess upscale by: 4, Postprocess upscaler: 4x-UltraSharp, "
        "CodeFormer visibility: 0.8, CodeFormer weight: 0.5"
    )
    assert a1111_postprocessing_text([]) == ""


def test_fixed_twice_keeps_history_in_order():
    original = chunks_of(text_chunk("parameters", A1111_PARAMETERS))
    first = parse_chunks(png_with(*output_chunks(original, OPS_GFPGAN, facefix_record(OPS_GFPGAN))))
    assert facefix_records(first)
    second = output_chunks(first, OPS_CODEFORMER, facefix_record(OPS_CODEFORMER, run=2))
    assert_carried_unchanged(first, second, extended={"postprocessing"})
    assert text_of(second, "parameters") == [A1111_PARAMETERS]
    assert text_of(second, "postprocessing") == [
        a1111_postprocessing_text(OPS_GFPGAN) + "\n" + a1111_postprocessing_text(OPS_CODEFORMER)
    ]
    assert facefix_records(second) == [
        facefix_record(OPS_GFPGAN),
        facefix_record(OPS_CODEFORMER, run=2),
    ]
    history = parse_generation(second).postprocessing
    assert [entry.get("CodeFormer weight") for entry in history] == [None, "0.5"]


def test_sd_metadata_gets_invokeai_entries_and_nothing_else_changes():
    text = json.dumps(SD_METADATA)
    chunks = chunks_of(text_chunk("Dream", DREAM), text_chunk("sd-metadata", text))
    output = output_chunks(chunks, OPS_GFPGAN + OPS_CODEFORMER, facefix_record(OPS_GFPGAN))
    assert_carried_unchanged(chunks, output, extended={"sd-metadata"})
    new = json.loads(text_of(output, "sd-metadata")[0])
    assert new["image"].pop("postprocessing") == [
        {"type": "esrgan", "scale": 2, "strength": 0.75},
        {"type": "gfpgan", "strength": 0.8},
        {"type": "esrgan", "scale": 4, "strength": 1.0},
        {"type": "codeformer", "strength": 0.8, "fidelity": 0.5},
    ]
    old = json.loads(text)
    del old["image"]["postprocessing"]
    assert new == old
    assert list(new["image"]) == list(old["image"])  # key order kept
    assert text_of(output, "postprocessing") == []  # InvokeAI has no A1111 chunk


def test_sd_metadata_existing_list_is_appended_to():
    metadata = json.loads(json.dumps(SD_METADATA))
    metadata["image"]["postprocessing"] = [{"tool": "gfpgan", "dream_command": "!fix x.png -G 0.8"}]
    extended = json.loads(extend_sd_metadata(json.dumps(metadata), OPS_GFPGAN))
    assert extended["image"]["postprocessing"] == [
        {"tool": "gfpgan", "dream_command": "!fix x.png -G 0.8"},
        {"type": "esrgan", "scale": 2, "strength": 0.75},
        {"type": "gfpgan", "strength": 0.8},
    ]


@pytest.mark.parametrize(
    "dumps",
    [
        lambda m: json.dumps(m),
        lambda m: json.dumps(m, separators=(",", ":")),
        lambda m: json.dumps(m, indent=2),
    ],
    ids=["default", "compact", "indented"],
)
def test_sd_metadata_keeps_its_serialisation_style(dumps):
    metadata = json.loads(json.dumps(SD_METADATA))
    metadata["image"]["prompt"] = [{"prompt": "Kraków ☂", "weight": 1.0}]
    original = dumps(metadata)
    metadata["image"]["postprocessing"] = [{"type": "gfpgan", "strength": 0.8}]
    assert extend_sd_metadata(original, OPS_GFPGAN[1:]) == dumps(metadata)


@pytest.mark.parametrize(
    "make",
    [
        lambda t: ztxt_chunk("sd-metadata", t),
        lambda t: itxt_chunk("sd-metadata", t, compressed=True),
    ],
    ids=["zTXt", "iTXt-compressed"],
)
def test_sd_metadata_chunk_kind_is_kept(make):
    chunk = make(json.dumps(SD_METADATA))
    output = output_chunks(chunks_of(chunk), OPS_GFPGAN, facefix_record(OPS_GFPGAN))
    assert output[0].type == chunk.type
    assert output[0].data[:14] == chunk.data[:14]  # keyword and compression flags
    extended = json.loads(decode_text_chunk(output[0])[1])
    assert [entry["type"] for entry in extended["image"]["postprocessing"]] == ["esrgan", "gfpgan"]


@pytest.mark.parametrize(
    "text",
    [
        '{"image": {"postprocessing": ',  # malformed
        '{"no_image": {}}',
        '{"image": {"postprocessing": "a string"}}',
    ],
)
def test_sd_metadata_that_cannot_be_extended_is_carried_unchanged(text):
    chunks = chunks_of(text_chunk("sd-metadata", text))
    output = output_chunks(chunks, OPS_GFPGAN, facefix_record(OPS_GFPGAN))
    assert output[0] == chunks[1]


def test_comfyui_and_fooocus_chunks_stay_byte_identical():
    prompt = json.dumps(COMFY_PROMPT, indent=1)
    chunks = chunks_of(
        text_chunk("prompt", prompt),
        text_chunk("workflow", json.dumps(COMFY_WORKFLOW)),
        text_chunk("parameters", json.dumps(FOOOCUS)),
        text_chunk("fooocus_scheme", "fooocus"),
    )
    output = output_chunks(chunks, OPS_GFPGAN, facefix_record(OPS_GFPGAN))
    assert output[:-1] == carried_chunks(chunks)  # no A1111 chunk for JSON parameters
    assert text_of(output, "prompt") == [prompt]


def test_colour_exif_and_density_chunks_survive_a_file_round_trip():
    comment = piexif.helper.UserComment.dump("hello", encoding="unicode")
    chunks = chunks_of(
        iccp_chunk(b"\x00" * 128),
        Chunk(b"gAMA", struct.pack(">I", 45455)),
        Chunk(b"cHRM", struct.pack(">8I", *range(8))),
        Chunk(b"pHYs", struct.pack(">IIB", 3780, 3780, 1)),
        exif_chunk(exif_with_comment(comment)),
        Chunk(b"tIME", struct.pack(">HBBBBB", 2024, 1, 2, 3, 4, 5)),
        Chunk(b"prVt", b"private, safe to copy"),
        Chunk(b"bKGD", b"\x00\x01\x00\x02\x00\x03"),  # pixel encoding: replaced, not carried
    )
    output = output_chunks(chunks, OPS_GFPGAN, facefix_record(OPS_GFPGAN))
    written = parse_chunks(with_chunks(tiny_png(), output))
    carried = [c for c in chunks[1:-2] if c.type not in (b"IDAT", b"bKGD")]
    assert written[1 : 1 + len(carried)] == carried
    assert b"bKGD" not in {c.type for c in written}


# --- facefix records -----------------------------------------------------------------------


def test_facefix_records_are_read_into_the_record():
    chunks = chunks_of(
        itxt_chunk(FACEFIX_KEY, json.dumps(facefix_record(OPS_GFPGAN))),
        itxt_chunk(FACEFIX_KEY, "{broken"),
    )
    record = parse_generation(chunks)
    assert record.facefix == [facefix_record(OPS_GFPGAN)]
    assert any(p.startswith("facefix: not valid JSON") for p in record.problems)
    assert facefix_records(chunks) == [facefix_record(OPS_GFPGAN)]


# --- real InvokeAI files -------------------------------------------------------------------------


def test_real_curly_png():
    record = parse_generation(read_chunks(FIXTURES / "curly.png"))
    assert (record.tool, record.tool_version) == ("InvokeAI", "v1.15")
    assert record.seed == 942491079
    assert record.prompt == "pretty curly-haired redhead woman"  # also the Dream prompt
    assert (record.steps, record.cfg, record.sampler) == (50, 7.5, "k_lms")
    assert record.sources == ["sd-metadata", "Dream"]


def test_real_invokeai_seeds_match_their_file_names():
    for path in sorted(FIXTURES.glob("0000*.png")):
        record = parse_generation(read_chunks(path))
        assert record.seed == int(path.name.split(".")[1]), path.name
        assert record.problems == []


def test_real_invokeai_gfpgan_history():
    record = parse_generation(read_chunks(FIXTURES / "curly.942491079.gfpgan.png"))
    assert record.seed == 942491079
    assert record.postprocessing[0]["tool"] == "gfpgan"


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("*.png")) or ["none"])
def test_real_files_keep_every_chunk(name):
    chunks = read_chunks(FIXTURES / name)
    output = output_chunks(chunks, OPS_GFPGAN, facefix_record(OPS_GFPGAN))
    assert_carried_unchanged(chunks, output, extended={"sd-metadata"})
    written = parse_chunks(with_chunks(tiny_png(), output))
    assert written[1:-2] == output  # what is written is exactly what was chosen
    for original in text_of(chunks, "sd-metadata"):
        (new,) = text_of(output, "sd-metadata")
        old_meta, new_meta = json.loads(original), json.loads(new)
        added = new_meta["image"]["postprocessing"][-2:]
        assert added == [
            {"type": "esrgan", "scale": 2, "strength": 0.75},
            {"type": "gfpgan", "strength": 0.8},
        ]
        if old_meta["image"]["postprocessing"] is None:
            # Re-serialized the way InvokeAI wrote it: only the null became the new list.
            expected = '"postprocessing": ' + json.dumps(added)
            assert new == original.replace('"postprocessing": null', expected)


def test_real_files_read_through_info():
    results = info(sorted(FIXTURES.glob("*.png")))
    assert all(r.error is None for r in results)
    tools = {r.path.name: r.record.tool for r in results}
    assert tools["Lincoln-and-Parrot-512.png"] is None
    assert tools["curly.png"] == "InvokeAI"


# --- through the real `fix` pipeline -----------------------------------------------------


@pytest.fixture(scope="module")
def tiny_upscaler(tmp_path_factory) -> Path:
    """A one-block random Real-ESRGAN x2, passed as a custom --upscaler: fast, and no registry
    weights needed."""
    torch = pytest.importorskip("torch")
    from checkpoints import realesrgan_state_dict

    path = tmp_path_factory.mktemp("upscaler") / "tiny_x2.pth"
    torch.save(realesrgan_state_dict(2, num_block=1), path)
    return path


def run_fix(paths: list[Path], upscaler: Path, **settings):
    from facefix_cli import pipeline
    from facefix_cli.recipe import Recipe

    run_settings = pipeline.RunSettings(
        weights_dir=upscaler.parent / "weights", device="cpu", offline=True, **settings
    )
    return pipeline.fix(paths, Recipe(upscaler_path=upscaler), run_settings)


def test_fix_keeps_every_chunk_byte_for_byte(tmp_path, tiny_upscaler):
    comment = piexif.helper.UserComment.dump(A1111_PARAMETERS, encoding="unicode")
    png = tmp_path / "mixed.png"
    png.write_bytes(
        png_with(
            iccp_chunk(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()),
            Chunk(b"pHYs", struct.pack(">IIB", 3780, 3780, 1)),
            exif_chunk(exif_with_comment(comment)),
            text_chunk("parameters", A1111_PARAMETERS),
            text_chunk("prompt", json.dumps(COMFY_PROMPT)),
            ztxt_chunk("workflow", json.dumps(COMFY_WORKFLOW)),
            itxt_chunk("notes", "ünïcödé " * 1000, compressed=True),
            text_chunk("sd-metadata", json.dumps(SD_METADATA)),
        )
    )
    jpeg = tmp_path / "photo.jpg"
    jpeg.write_bytes(encoded("JPEG", exif=exif_with_comment(comment)))

    summary_ = run_fix([tmp_path], tiny_upscaler, extensions=("png", "jpg"))
    assert [(r.source.name, r.status) for r in summary_.results] == [
        ("mixed.png", "fixed"),
        ("photo.jpg", "fixed"),
    ]

    original = parse_chunks(png.read_bytes())
    fixed = parse_chunks((tmp_path / "mixed.fixed.png").read_bytes())
    assert_carried_unchanged(original, fixed, extended={"sd-metadata"})
    (operation,) = facefix_records(fixed)[0]["operations"]
    assert (operation["type"], operation["scale"], operation["model"]) == (
        "esrgan",
        2,
        "tiny_x2.pth",
    )
    assert text_of(fixed, "postprocessing") == [
        "Postprocess upscale by: 2, Postprocess upscaler: tiny_x2"
    ]
    sd_metadata = json.loads(text_of(fixed, "sd-metadata")[0])
    assert sd_metadata["image"]["postprocessing"] == [
        {"type": "esrgan", "scale": 2, "strength": 0.75}
    ]

    from_jpeg = parse_chunks((tmp_path / "photo.jpg.fixed.png").read_bytes())
    assert exif_chunk(exif_with_comment(comment)) in from_jpeg
    assert text_of(from_jpeg, "parameters") == [A1111_PARAMETERS]
    assert parse_generation(from_jpeg).seed == 3141592653


def test_fix_skips_a_renamed_facefix_output(tmp_path, tiny_upscaler):
    source = tmp_path / "a.png"
    source.write_bytes(png_with(text_chunk("parameters", A1111_PARAMETERS)))
    run_fix([source], tiny_upscaler)
    renamed = tmp_path / "renamed.png"
    (tmp_path / "a.fixed.png").rename(renamed)
    (result,) = run_fix([renamed], tiny_upscaler).results
    assert result.status == "skipped"
    assert "already a facefix output" in result.reason
    assert (result.tool, result.seed) == ("AUTOMATIC1111", 3141592653)
