"""Real-world metadata, driven by the files in tests/fixtures/metadata: every `NAME.EXT` beside
a `NAME.expected.json` is read through `info` (which also reads stealth info from the pixels)
and compared field by field with the expected record; a field the expected file leaves out
must come back empty. See MANIFEST.md there for where each file came from."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import FIXTURES

from facefix.metadata import info

METADATA_FIXTURES = FIXTURES / "metadata"
FIELDS = {
    "tool": "tool",
    "prompt": "prompt",
    "negative_prompt": "negative_prompt",
    "seed": "seed",
    "steps": "steps",
    "sampler": "sampler",
    "cfg_scale": "cfg",
    "width": "width",
    "height": "height",
    "model": "model",
}
PASS_FIELDS = ("seed", "steps", "cfg_scale", "sampler", "width", "height")


def fixture_images() -> list[Path]:
    images = []
    for expected in sorted(METADATA_FIXTURES.glob("*.expected.json")):
        stem = expected.name.removesuffix(".expected.json")
        found = [p for p in METADATA_FIXTURES.glob(stem + ".*") if p != expected]
        assert len(found) == 1, f"{expected.name}: expected one image beside it, found {found}"
        images.append(found[0])
    return images


IMAGES = fixture_images()


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
