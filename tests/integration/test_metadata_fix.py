"""Metadata through the real `fix` pipeline: every chunk kept byte for byte, renamed outputs skipped."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import piexif
import piexif.helper
import pytest
from metadata_support import (
    A1111_PARAMETERS,
    COMFY_PROMPT,
    COMFY_WORKFLOW,
    SD_METADATA,
    assert_carried_unchanged,
    encoded,
    exif_with_comment,
    facefix_records,
    png_with,
    text_of,
)
from PIL import ImageCms

from facefix_cli.io.pngchunks import (
    Chunk,
    exif_chunk,
    iccp_chunk,
    itxt_chunk,
    parse_chunks,
    text_chunk,
    ztxt_chunk,
)
from facefix_cli.metadata import (
    parse_generation,
)


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
