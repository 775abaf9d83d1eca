"""metadata.tools.fooocus: Fooocus's JSON and its A1111-scheme files."""

from __future__ import annotations

import json

from metadata_support import (
    FOOOCUS,
    chunks_of,
)

from facefix_cli.io.pngchunks import (
    text_chunk,
)
from facefix_cli.metadata import (
    parse_generation,
)


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
