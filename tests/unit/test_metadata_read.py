"""metadata.read: malformed JSON never raises, facefix records read back, the real InvokeAI files."""

from __future__ import annotations

import json

import pytest
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

from facefix_cli.io.pngchunks import (
    itxt_chunk,
    parse_chunks,
    text_chunk,
    with_chunks,
)
from facefix_cli.metadata import (
    FACEFIX_KEY,
    info,
    output_chunks,
    parse_generation,
)


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
