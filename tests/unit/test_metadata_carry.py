"""metadata.carry: what the output carries (postprocessing, sd-metadata entries, history) and that the rest stays byte-identical."""

from __future__ import annotations

import json
import struct

import piexif
import piexif.helper
import pytest
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
    extend_sd_metadata,
    output_chunks,
    parse_generation,
)


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
