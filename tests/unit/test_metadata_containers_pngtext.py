"""metadata's PNG text chunks: every text chunk kind, encodings, corrupt and huge chunks."""

from __future__ import annotations

import pytest
from metadata_support import (
    A1111_PARAMETERS,
    OPS_GFPGAN,
    assert_carried_unchanged,
    chunks_of,
    facefix_record,
    tiny_png,
)

from facefix_cli.io.pngchunks import (
    Chunk,
    itxt_chunk,
    parse_chunks,
    text_chunk,
    ztxt_chunk,
)
from facefix_cli.metadata import (
    output_chunks,
    parse_generation,
)


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
