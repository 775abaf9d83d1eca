"""Shared test data of the metadata tests: tiny PNGs with given chunks, facefix records,
an A1111 parameters text, and the assertion that carried chunks stay byte-identical."""

from __future__ import annotations

import io
from pathlib import Path

import piexif
import piexif.helper
from conftest import INVOKEAI_FIXTURES
from PIL import Image

from facefix_cli.io.pngchunks import (
    Chunk,
    carried_chunks,
    decode_text_chunk,
    parse_chunks,
    with_chunks,
)
from facefix_cli.metadata import (
    chunks_from_bytes,
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
