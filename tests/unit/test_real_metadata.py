"""Real-world metadata, driven by the files in tests/fixtures/metadata: every `NAME.EXT` beside
a `NAME.expected.json` is read through `info` (which also reads stealth info from the pixels)
and compared field by field with the expected record; a field the expected file leaves out
must come back empty. See MANIFEST.md there for where each file came from."""

from __future__ import annotations

import io
import json
import tracemalloc
import zlib
from pathlib import Path

import pytest
from metadata_fixtures import (
    FIELDS,
    IMAGES,
    METADATA_FIXTURES,
    PASS_FIELDS,
    a1111_reference,
)
from PIL import Image

from facefix.io.pngchunks import Chunk, parse_chunks, text_chunk, with_chunks
from facefix.metadata import (
    a1111_settings,
    extend_sd_metadata,
    info,
    output_chunks,
    parse_generation,
)
from facefix.metadata.containers.pngtext import MAX_TEXT_CHUNKS
from facefix.record import Operation


def test_every_fixture_has_an_expected_record():
    images = {
        p for p in METADATA_FIXTURES.iterdir() if p.suffix in (".png", ".jpg", ".jpeg", ".webp")
    }
    assert images == set(IMAGES)
    assert len(IMAGES) >= 27


@pytest.mark.parametrize("path", IMAGES, ids=lambda p: p.name)
def test_fixture_reads_as_expected(path: Path):
    expected = json.loads(
        path.with_name(path.name.rsplit(".", 1)[0] + ".expected.json").read_text()
    )
    (result,) = info([path])
    assert result.error is None
    record = result.record
    got = {key: getattr(record, attribute) for key, attribute in FIELDS.items()}
    want = {key: expected.get(key) for key in FIELDS}
    assert got == want
    passes = [
        {key: getattr(step, "cfg" if key == "cfg_scale" else key) for key in PASS_FIELDS}
        for step in record.passes
    ]
    assert passes == expected.get("passes", [])


def test_stealth_is_named_in_the_record():
    (result,) = info([METADATA_FIXTURES / "stealth_a1111_pngcomp.png"])
    assert result.record.stealth == "stealth_pngcomp in the alpha channel"
    assert "stealth_pngcomp in the alpha channel" in result.record.sources


def test_sd_metadata_images_list_extends_the_entry_with_the_files_seed():
    meta = {
        "model_id": "stable-diffusion-1.4",
        "app_version": "v1.15",
        "images": [{"seed": 1, "postprocessing": None}, {"seed": 2, "postprocessing": None}],
    }
    operations = [Operation(type="esrgan", scale=2, strength=1.0, model="x.pth")]
    new = extend_sd_metadata(json.dumps(meta), operations, seed=2)
    images = json.loads(new)["images"]
    assert images[0]["postprocessing"] is None
    assert images[1]["postprocessing"] == [{"type": "esrgan", "scale": 2, "strength": 1.0}]


# --- A1111's infotext grammar: the output parses with A1111's own rule ------------------------


@pytest.mark.parametrize(
    "line",
    [
        "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 965400086, Size: 512x512",
        'Lora hashes: "detail: 1a2b3c, style: 4d5e6f", Version: v1.10.1, Model: a:b',
        'A: "unclosed, B: 2, C: "x", D: 4',
        "x, :1, ab: 2,, cd:3 , e-f/g h: 4",
        "Postprocess upscale by: 2, Postprocess upscaler: R-ESRGAN 2x+, GFPGAN visibility: 0.8",
        'Template: "a \\"quoted\\" word", Negative Template: "b, c"',
    ],
)
def test_settings_scan_matches_the_a1111_grammar(line):
    assert a1111_settings(line) == a1111_reference(line)


# --- hostile inputs: linear time, bounded memory --------------------------------------------


def tiny_png_with(chunks: list[Chunk]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (2, 2)).save(buffer, "PNG")
    return with_chunks(buffer.getvalue(), chunks)


def test_a_50_mb_parameters_chunk_is_read_in_linear_time():
    prompt = "a cat, " * (50_000_000 // 7)  # one line, commas and no colon: quadratic before
    text = f"{prompt}\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 42, Size: 512x512"
    chunks = parse_chunks(tiny_png_with([text_chunk("parameters", text)]))
    record = parse_generation(chunks)
    assert (record.tool, record.seed, record.steps) == ("AUTOMATIC1111", 42, 20)
    assert record.prompt == prompt.strip()
    settings_only = parse_generation(chunks_of_text("parameters", prompt + "ab: 1, cd: 2, ef: 3"))
    assert settings_only.tool == "AUTOMATIC1111"  # a settings line of 50 MB is scanned too


def chunks_of_text(keyword: str, text: str) -> list[Chunk]:
    return parse_chunks(tiny_png_with([text_chunk(keyword, text)]))


def test_20000_text_chunks_with_one_keyword():
    chunks = parse_chunks(
        tiny_png_with(
            [
                text_chunk("parameters", f"p{i}\nSteps: {i}, Seed: {i}, Size: 8x8")
                for i in range(20_000)
            ]
        )
    )
    record = parse_generation(chunks)
    assert (record.tool, record.prompt, record.seed) == ("AUTOMATIC1111", "p0", 0)
    assert len(record.raw) == MAX_TEXT_CHUNKS
    assert "parameters (1000)" in record.raw
    assert any(f"more than {MAX_TEXT_CHUNKS} text chunks" in p for p in record.problems)
    out = output_chunks(chunks, [], {"facefix_version": "test"})
    carried = [c for c in chunks if c.type == b"tEXt"]
    assert out[: len(carried)] == carried  # every chunk still kept, byte for byte


def compression_bomb(mebibytes: int) -> bytes:
    """A valid zlib stream that inflates to `mebibytes` MiB of zeros, built in a second: after a
    full flush every MiB of zeros compresses to the same bytes, so one block is repeated."""
    block = bytes(1 << 20)
    compressor = zlib.compressobj(9)
    first = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    repeated = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    end = compressor.flush()[:-4]  # final block; its checksum covers two blocks only
    checksum = 1
    for _ in range(mebibytes):
        checksum = zlib.adler32(block, checksum)
    return first + repeated * (mebibytes - 1) + end + checksum.to_bytes(4, "big")


def test_compression_bomb_helper_is_valid_zlib():
    assert zlib.decompress(compression_bomb(3)) == bytes(3 << 20)


def test_compressed_text_that_inflates_to_1_gib_is_refused_not_inflated():
    bomb = compression_bomb(1024)  # 1 GiB
    assert len(bomb) < 2_000_000
    ztxt = Chunk(b"zTXt", b"parameters\x00\x00" + bomb)
    itxt = Chunk(b"iTXt", b"workflow\x00\x01\x00\x00\x00" + bomb)
    chunks = parse_chunks(tiny_png_with([ztxt, itxt, text_chunk("Dream", '"a cat" -s20 -S7')]))
    tracemalloc.start()
    try:
        record = parse_generation(chunks)
        output = output_chunks(chunks, [], {"facefix_version": "test"})
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 100 * 1024 * 1024  # the 32 MiB limit, not 1 GiB
    assert (record.tool, record.seed) == ("InvokeAI", 7)
    assert sum("inflates past 32 MiB" in p for p in record.problems) == 2
    assert ztxt in output and itxt in output  # kept unchanged, only not read


def test_info_shows_the_text_of_json_that_does_not_parse(tmp_path):
    from typer.testing import CliRunner

    from facefix.cli import app

    path = tmp_path / "broken.png"
    path.write_bytes(tiny_png_with([text_chunk("parameters", '{"sui_image_params": {"seed": 1')]))
    result = CliRunner().invoke(app, ["info", str(path)], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "no generation metadata" not in result.output
    assert "Problems" in result.output
    assert '{"sui_image_params": {"seed": 1' in result.output
