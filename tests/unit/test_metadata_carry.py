"""metadata.carry: what the output carries (postprocessing, sd-metadata entries, history) and
that the rest stays byte-identical; metadata in WebP, JPEG and AVIF outputs, read back by the
tools' own reader code and by facefix."""

from __future__ import annotations

import json
import struct

import numpy as np
import piexif
import piexif.helper
import pytest
from metadata_fixtures import METADATA_FIXTURES
from metadata_support import (
    A1111_PARAMETERS,
    COMFY_PROMPT,
    COMFY_WORKFLOW,
    DREAM,
    FOOOCUS,
    OPS_CODEFORMER,
    OPS_GFPGAN,
    SD_METADATA,
    assert_carried_unchanged,
    chunks_of,
    exif_with_comment,
    facefix_record,
    facefix_records,
    png_with,
    text_of,
    tiny_png,
)
from PIL import Image, ImageCms
from tool_readers import a1111_geninfo, comfyui_avif_metadata, comfyui_webp_workflow

from facefix_cli.io.encode import EncodeOptions, OutputPixels
from facefix_cli.io.outputs import OutputFormat
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
    a1111_postprocessing_text,
    chunks_from_bytes,
    embedded_metadata,
    extend_sd_metadata,
    output_chunks,
    parse_generation,
)
from facefix_cli.metadata.containers.pngtext import TextReader
from facefix_cli.metadata.containers.xmp import read_texts
from facefix_cli.metadata.read import FACEFIX_KEY


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


# -- Metadata in WebP, JPEG and AVIF outputs (`metadata.carry.embedded_metadata`), read back
# by the tools' own reader code (tests/tool_readers.py) and by facefix
# (`chunks_for_foreign_image`, `parse_generation`, `info`): every real fixture, every lossy
# format.
LOSSY = [OutputFormat.WEBP, OutputFormat.JPEG, OutputFormat.AVIF]
RECORD = {"facefix_version": "0.1.0", "operations": [], "source": {"file": "a", "sha256": "0"}}
FIXTURES = sorted(
    p
    for p in METADATA_FIXTURES.iterdir()
    if p.suffix in (".png", ".jpg", ".jpeg", ".webp") and "animated" not in p.name
)
RGB = np.random.default_rng(3).random((24, 32, 3), dtype=np.float32)


def write(fmt: OutputFormat, chunks) -> bytes:
    return fmt.encode(OutputPixels(RGB, None, 8), embedded_metadata(chunks, fmt), EncodeOptions())


def texts(chunks) -> list[tuple[str, str]]:
    reader = TextReader()
    decoded = [reader.decode(chunk)[0] for chunk in chunks]
    return [(e.keyword, e.text) for e in decoded if e is not None]


@pytest.mark.parametrize("fmt", LOSSY)
@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda p: p.name)
def test_every_text_comes_back_and_reads_the_same(fixture, fmt):
    """What a PNG output would carry comes back from the lossy output, text for text, in order,
    and facefix reads the same generation from it."""
    source = chunks_from_bytes(fixture.read_bytes())
    png_chunks = output_chunks(source, [], RECORD)
    back = chunks_from_bytes(write(fmt, png_chunks))
    assert texts(back) == texts(png_chunks)
    as_png, as_fmt = parse_generation(png_chunks).to_dict(), parse_generation(back).to_dict()
    for record in (as_png, as_fmt):
        record.pop("sources", None)
    assert as_fmt == as_png
    assert parse_generation(back).facefix == [RECORD]


A1111 = sorted(p for p in FIXTURES if p.name.startswith(("a1111", "forge")))
COMFY = sorted(p for p in FIXTURES if p.name.startswith("comfy_") and p.suffix == ".png")


@pytest.mark.parametrize("fmt", LOSSY)
@pytest.mark.parametrize("fixture", A1111, ids=lambda p: p.name)
def test_a1111_reads_its_parameters_from_the_exif_user_comment(fixture, fmt):
    source = chunks_from_bytes(fixture.read_bytes())
    parameters = dict(texts(source))["parameters"]
    data = write(fmt, output_chunks(source, [], RECORD))
    assert a1111_geninfo(data) == parameters


@pytest.mark.parametrize("fixture", COMFY, ids=lambda p: p.name)
def test_comfyui_loads_the_graphs_from_webp_and_avif(fixture):
    source = dict(texts(chunks_from_bytes(fixture.read_bytes())))
    chunks = output_chunks(chunks_from_bytes(fixture.read_bytes()), [], RECORD)
    loaded = comfyui_webp_workflow(write(OutputFormat.WEBP, chunks))
    assert loaded["prompt"] == json.loads(source["prompt"])
    if "workflow" in source:
        assert loaded["workflow"] == json.loads(source["workflow"])
    avif = comfyui_avif_metadata(write(OutputFormat.AVIF, chunks))
    assert avif["prompt"] == json.loads(source["prompt"])
    if "workflow" in source:
        assert avif["workflow"] == json.loads(source["workflow"])


def big_workflow() -> dict:
    nodes = [{"id": i, "type": "Note", "widgets_values": ["ä" + "x" * 500]} for i in range(300)]
    return {"last_node_id": 300, "nodes": nodes}


def test_a_graph_too_big_for_a_jpeg_segment_stays_whole_in_extended_xmp():
    workflow = json.dumps(big_workflow())  # UTF-8 text, > 64 KB
    prompt = json.dumps({"1": {"class_type": "KSampler", "inputs": {"seed": 5}}})
    chunks = output_chunks(
        [text_chunk("prompt", prompt), text_chunk("workflow", workflow)], [], RECORD
    )
    data = write(OutputFormat.JPEG, chunks)
    back = chunks_from_bytes(data)
    assert texts(back) == texts(chunks)
    # and where it fits, WebP carries the non-ASCII graph in XMP alone, ComfyUI's prompt in EXIF
    webp = write(OutputFormat.WEBP, chunks)
    assert texts(chunks_from_bytes(webp)) == texts(chunks)
    assert comfyui_webp_workflow(webp)["prompt"] == json.loads(prompt)


def test_graphs_in_exif_are_not_stored_twice():
    prompt = json.dumps({"1": {"class_type": "KSampler", "inputs": {"seed": 5}}})
    meta = embedded_metadata(
        output_chunks([text_chunk("prompt", prompt)], [], RECORD), OutputFormat.WEBP
    )
    stored, problem = read_texts(meta.xmp or b"")
    assert problem is None and stored is not None
    assert ("prompt", None) in stored  # taken from EXIF Model when read
    assert dict(stored)[FACEFIX_KEY] == json.dumps(RECORD, sort_keys=True, separators=(",", ":"))


def test_icc_profile_is_kept_and_orientation_written_upright():
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x0112] = 6  # `io.read` turns the pixels and sets 1; a stale 6 must not survive
    exif[0x010F] = "Canon"
    chunks = output_chunks([iccp_chunk(profile), exif_chunk(exif.tobytes()[6:])], [], RECORD)
    for fmt in LOSSY:
        data = write(fmt, chunks)
        from io import BytesIO

        with Image.open(BytesIO(data)) as image:
            assert image.info.get("icc_profile") == profile
            tags = image.getexif()
            assert tags.get(0x0112, 1) == 1
            assert tags[0x010F] == "Canon"  # the input's own tags are kept


def test_info_reads_every_format(tmp_path):
    from facefix_cli import metadata

    fixture = METADATA_FIXTURES / "comfy_sdxl_base_refiner.png"
    chunks = output_chunks(chunks_from_bytes(fixture.read_bytes()), [], RECORD)
    paths = []
    for fmt in LOSSY:
        path = tmp_path / f"a{fmt.suffix}"
        path.write_bytes(write(fmt, chunks))
        paths.append(path)
    results = metadata.info(paths)
    assert [r.format for r in results] == ["WebP", "JPEG", "AVIF"]
    for result in results:
        assert result.error is None and result.record is not None
        assert result.record.tool == "ComfyUI"
        assert result.record.facefix == [RECORD]
