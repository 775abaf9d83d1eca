"""metadata.read: malformed JSON never raises, facefix records read back, the real InvokeAI
files; every real-world fixture in tests/fixtures/metadata read as its expected record, and
hostile inputs (huge chunks, compression bombs) read in bounded time and memory."""

from __future__ import annotations

import io
import json
import struct
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import piexif
import piexif.helper
import pytest
from metadata_fixtures import (
    FIELDS,
    IMAGES,
    METADATA_FIXTURES,
    PASS_FIELDS,
    a1111_reference,
    expected_record,
)
from metadata_support import (
    FIXTURES,
    OPS_GFPGAN,
    assert_carried_unchanged,
    chunks_of,
    facefix_record,
    facefix_records,
    read_chunks,
    text_of,
    tiny_png,
)
from PIL import Image

from facefix_cli.cli.console.info import record_rows
from facefix_cli.io.pngchunks import (
    Chunk,
    decode_text_chunk,
    itxt_chunk,
    parse_chunks,
    text_chunk,
    with_chunks,
)
from facefix_cli.metadata import (
    FACEFIX_KEY,
    StealthPayload,
    a1111_settings,
    chunks_from_bytes,
    extend_sd_metadata,
    find_stealth,
    info,
    output_chunks,
    parse_generation,
)
from facefix_cli.metadata.containers.pngtext import MAX_TEXT_CHUNKS
from facefix_cli.operations import Operation


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


def test_facefix_records_are_read_into_the_record():
    chunks = chunks_of(
        itxt_chunk(FACEFIX_KEY, json.dumps(facefix_record(OPS_GFPGAN))),
        itxt_chunk(FACEFIX_KEY, "{broken"),
    )
    record = parse_generation(chunks)
    assert record.facefix == [facefix_record(OPS_GFPGAN)]
    assert any(p.startswith("facefix: not valid JSON") for p in record.problems)
    assert facefix_records(chunks) == [facefix_record(OPS_GFPGAN)]


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


# -- Real-world metadata, driven by the files in tests/fixtures/metadata: every `NAME.EXT`
# beside a `NAME.expected.json` is read through `info` (which also reads stealth info from the
# pixels) and compared field by field with the expected record; a field the expected file
# leaves out must come back empty. See MANIFEST.md there for where each file came from.
def test_every_fixture_has_an_expected_record():
    images = {
        p for p in METADATA_FIXTURES.iterdir() if p.suffix in (".png", ".jpg", ".jpeg", ".webp")
    }
    assert images == set(IMAGES)
    assert len(IMAGES) >= 27


@pytest.mark.parametrize("path", IMAGES, ids=lambda p: p.name)
def test_fixture_reads_as_expected(path: Path):
    expected = expected_record(path)
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

    from facefix_cli.cli import app

    path = tmp_path / "broken.png"
    path.write_bytes(tiny_png_with([text_chunk("parameters", '{"sui_image_params": {"seed": 1')]))
    result = CliRunner().invoke(app, ["info", str(path)], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "no generation metadata" not in result.output
    assert "Problems" in result.output
    assert '{"sui_image_params": {"seed": 1' in result.output


# --- layouts without a real sample yet (synthetic; see MANIFEST.md, "Not covered") -----------


def jpeg_with_user_comment(text: str) -> bytes:
    exif = piexif.dump(
        {"Exif": {piexif.ExifIFD.UserComment: piexif.helper.UserComment.dump(text, "unicode")}}
    )
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "JPEG", exif=exif)
    return buffer.getvalue()


SD15_GRAPH = json.loads((METADATA_FIXTURES / "sources" / "comfy_sd-1.5-lora-0.json").read_text())


def test_civitai_generator_json_synthetic():
    extra = {
        "prompt": "a lighthouse at dusk",
        "negativePrompt": "blurry",
        "steps": 25,
        "cfgScale": 6,
        "sampler": "DPM++ 2M Karras",
        "seed": 1234,
        "width": 832,
        "height": 1216,
    }
    text = json.dumps({**SD15_GRAPH, "extra": {"airs": []}, "extraMetadata": json.dumps(extra)})
    record = parse_generation(chunks_from_bytes(jpeg_with_user_comment(text)))
    assert (record.tool, record.prompt, record.negative_prompt) == (
        "Civitai",
        "a lighthouse at dusk",
        "blurry",
    )
    assert (record.seed, record.steps, record.cfg, record.sampler) == (
        1234,
        25,
        6.0,
        "DPM++ 2M Karras",
    )
    assert (record.width, record.height) == (832, 1216)
    assert record.model == "v1-5-pruned-emaonly.safetensors"  # from the graph


def test_comfyui_json_in_user_comment_becomes_prompt_and_workflow_chunks_synthetic():
    workflow = {"nodes": [], "links": []}
    text = json.dumps({"prompt": SD15_GRAPH, "workflow": workflow})
    chunks = chunks_from_bytes(jpeg_with_user_comment(text))
    texts = {d[0]: d[1] for c in chunks if (d := decode_text_chunk(c))}
    assert json.loads(texts["prompt"]) == SD15_GRAPH
    assert json.loads(texts["workflow"]) == workflow
    assert "parameters" not in texts
    record = parse_generation(chunks)
    assert (record.tool, record.seed) == ("ComfyUI", 851616030078638)


def jpeg_with_ifd0(tags: dict[int, str | bytes], user_comment: str | None = None) -> bytes:
    exif = Image.Exif()
    for tag, value in tags.items():
        exif[tag] = value
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "JPEG", exif=exif)
    if user_comment is None:
        return buffer.getvalue()
    data = piexif.load(buffer.getvalue())
    data["Exif"][piexif.ExifIFD.UserComment] = piexif.helper.UserComment.dump(user_comment)
    out = io.BytesIO()
    piexif.insert(piexif.dump(data), buffer.getvalue(), out)
    return out.getvalue()


def text_entries(chunks: list[Chunk]) -> dict[str, str]:
    return {d[0]: d[1] for c in chunks if (d := decode_text_chunk(c))}


WORKFLOW = {
    "nodes": [{"id": 1, "type": "KSampler", "widgets_values": [7, "fixed", 20, 8, "euler"]}]
}


@pytest.mark.parametrize(
    ("prompt_label", "workflow_label"),
    [("Prompt: ", "Workflow: "), ("PROMPT :", "workflow:\t"), ("  prompt:  ", " Workflow :  ")],
)
def test_labelled_exif_graphs_in_any_case_and_spacing_become_chunks(prompt_label, workflow_label):
    graph, workflow = json.dumps(SD15_GRAPH), json.dumps(WORKFLOW)
    chunks = chunks_from_bytes(
        jpeg_with_ifd0({0x010F: prompt_label + graph, 0x010E: workflow_label + workflow})
    )
    texts = text_entries(chunks)
    assert (texts["prompt"], texts["workflow"]) == (graph, workflow)  # the JSON, label cut off
    record = parse_generation(chunks)
    assert (record.tool, record.seed, record.problems) == ("ComfyUI", 851616030078638, [])


def test_labelled_exif_graph_stored_as_bytes_is_read():
    """ImageDescription typed UNDEFINED (7) instead of ASCII: a big-endian TIFF, one entry."""
    value = ("Prompt: " + json.dumps(SD15_GRAPH)).encode()
    entry = struct.pack(">HHII", 0x010E, 7, len(value), 26)
    tiff = b"MM\x00*" + struct.pack(">I", 8) + struct.pack(">H", 1) + entry + b"\0\0\0\0" + value
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "JPEG", exif=b"Exif\x00\x00" + tiff)
    chunks = chunks_from_bytes(buffer.getvalue())
    assert text_entries(chunks)["prompt"] == json.dumps(SD15_GRAPH)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("Prompt: {not json", "EXIF Make: labelled 'prompt', but the rest is not an API graph"),
        ('Prompt: {"a": 1}', "EXIF Make: labelled 'prompt', but the rest is not an API graph"),
        ("Workflow: [1, 2]", "EXIF Make: labelled 'workflow', but the rest is not a UI workflow"),
    ],
)
def test_labelled_exif_text_that_is_no_graph_is_a_problem_and_not_carried(text, problem):
    chunks = chunks_from_bytes(jpeg_with_ifd0({0x010F: text}))
    assert not {"prompt", "workflow"} & set(text_entries(chunks))
    record = parse_generation(chunks)
    assert record.tool is None
    assert any(p.startswith(f"eXIf: {problem}") for p in record.problems), record.problems


def test_empty_workflow_of_save_image_extended_is_no_problem():
    chunks = chunks_from_bytes(
        jpeg_with_ifd0({0x010F: "Prompt: " + json.dumps(SD15_GRAPH), 0x010E: "Workflow: {}"})
    )
    assert "workflow" not in text_entries(chunks)
    record = parse_generation(chunks)
    assert (record.tool, record.problems) == ("ComfyUI", [])


def test_an_unlabelled_make_is_not_a_graph():
    chunks = chunks_from_bytes(jpeg_with_ifd0({0x010F: "Canon", 0x0110: "EOS 5D prompt: {}"}))
    assert text_entries(chunks) == {}
    assert parse_generation(chunks).problems == []


def test_labelled_graph_in_user_comment_is_read():
    graph = json.dumps(SD15_GRAPH)
    chunks = chunks_from_bytes(jpeg_with_user_comment("Prompt: " + graph))
    assert text_entries(chunks)["prompt"] == graph
    assert parse_generation(chunks).tool == "ComfyUI"


def test_stableswarmui_json_in_exif_model_synthetic():
    """StableSwarmUI's JPEG layout as stable-diffusion-prompt-reader reads it (the
    `sui_image_params` JSON in EXIF Model), with its older per-backend sampler key."""
    params = {"prompt": "a fox", "seed": 3, "steps": 12, "comfyuisampler": "dpmpp_2m"}
    chunks = chunks_from_bytes(jpeg_with_ifd0({0x0110: json.dumps({"sui_image_params": params})}))
    record = parse_generation(chunks)
    assert (record.tool, record.prompt, record.seed, record.sampler) == (
        "SwarmUI",
        "a fox",
        3,
        "dpmpp_2m",
    )


def test_swarmui_record_lists_the_graphs_further_pass():
    (result,) = info([METADATA_FIXTURES / "swarmui_hires_comfy_graph.png"])
    record = result.record
    assert record.sources == ["parameters", "prompt"]
    (step,) = record.passes
    assert step.node == "23"  # the graph's refiner sampler
    rows = dict(record_rows(record))
    assert rows["Tool"] == "SwarmUI 0.9.7.4"
    assert rows["Model"] == "waiIllustriousSDXL_v160"  # SwarmUI's name, not the graph's file
    assert "size 1152x1152" in rows["Further passes"]


def test_comfy_image_saver_infotext_is_named_comfyui_once():
    (result,) = info([METADATA_FIXTURES / "comfyui_comfy_image_saver.jpeg"])
    assert result.record.tool_version is None
    assert dict(record_rows(result.record))["Tool"] == "ComfyUI"


@pytest.mark.parametrize("version", ["classic", "neo", "f2.0.1v1.10.1-previous-669-gdfdcbab6"])
def test_forge_family_versions(version):
    text = f"a cat\nSteps: 20, Seed: 1, Size: 512x512, Version: {version}"
    record = parse_generation(chunks_of_text("parameters", text))
    assert (record.tool, record.tool_version) == ("Forge", version)


def test_rgb_stealth_is_read_synthetic():
    text = "a cat\nSteps: 20, Seed: 5, Size: 64x64"
    payload = StealthPayload("stealth_rgbinfo", "rgb", text.encode(), text)
    data = payload.signature.encode() + (len(payload.payload) * 8).to_bytes(4, "big")
    bits = np.unpackbits(np.frombuffer(data + payload.payload, np.uint8))
    rgb = np.full((64, 64, 3), 128, np.uint8)
    column_major = rgb.transpose(1, 0, 2).reshape(-1).copy()
    column_major[: bits.size] = (column_major[: bits.size] & 0xFE) | bits
    rgb = np.ascontiguousarray(column_major.reshape(64, 64, 3).transpose(1, 0, 2))
    found, problem = find_stealth(rgb, None)
    assert problem is None and found == payload
    record = parse_generation([], stealth=found)
    assert (record.tool, record.seed, record.stealth) == (
        "AUTOMATIC1111",
        5,
        "stealth_rgbinfo in the RGB low bits",
    )


def test_novelai_is_named_once():
    (result,) = info([METADATA_FIXTURES / "novelai_textchunks.png"])
    rows = dict(record_rows(result.record))
    assert rows["Tool"] == "NovelAI"
    assert rows["Model"] == "Stable Diffusion 1D44365E"


def test_truncated_stealth_length_is_a_problem_not_a_crash():
    alpha = np.full((16, 16), 255, np.uint8)
    header = b"stealth_pnginfo" + (10**6).to_bytes(4, "big")
    bits = np.unpackbits(np.frombuffer(header, np.uint8))
    flat = alpha.T.reshape(-1).copy()
    flat[: bits.size] = (flat[: bits.size] & 0xFE) | bits
    found, problem = find_stealth(None, np.ascontiguousarray(flat.reshape(16, 16).T))
    assert found is None and "does not fit the image" in problem


def test_info_cli_names_every_fixtures_settings():
    """`facefix info --json` on every fixture: tool, prompt, seed, steps, sampler, CFG, size
    and model as the expected files say."""
    from typer.testing import CliRunner

    from facefix_cli.cli import app

    result = CliRunner().invoke(app, ["info", "--json", *map(str, IMAGES)])
    assert result.exit_code == 0
    shown = json.loads(result.stdout)
    assert [Path(entry["path"]).name for entry in shown] == [p.name for p in IMAGES]
    for path, entry in zip(IMAGES, shown, strict=True):
        expected = expected_record(path)
        got = {key: entry["record"][attribute] for key, attribute in FIELDS.items()}
        assert got == {key: expected.get(key) for key in FIELDS}, path.name
