"""metadata.tools.a1111: AUTOMATIC1111 and its forks' parameters, settings line and postprocessing history."""

from __future__ import annotations

import pytest
from metadata_support import (
    A1111_PARAMETERS,
    chunks_of,
)

from facefix_cli.io.pngchunks import (
    text_chunk,
)
from facefix_cli.metadata import (
    a1111_settings,
    parse_a1111_parameters,
    parse_generation,
)


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
