"""The real-world metadata fixtures (tests/fixtures/metadata) as test data: each image beside
its `NAME.expected.json`, the record fields those files name, and A1111's documented settings
grammar as an independent reference parser."""

from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path

from conftest import FIXTURES

METADATA_FIXTURES = FIXTURES / "metadata"
# Expected-file key -> Generation attribute.
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


def expected_record(image: Path) -> dict:
    return json.loads(image.with_name(image.name.rsplit(".", 1)[0] + ".expected.json").read_text())


# The settings pattern of A1111's infotext (modules/infotext_utils.py), written from its
# documented grammar: `Key: value` pairs, values JSON-quoted when they hold a comma or colon.
A1111_PARAM = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')


def a1111_reference(line: str) -> dict[str, str]:
    settings = {}
    for key, value in A1111_PARAM.findall(line):
        value = value.strip()
        if value[:1] == '"' and value[-1:] == '"':
            with contextlib.suppress(json.JSONDecodeError):
                value = json.loads(value)
        settings[key.strip()] = str(value)
    return settings
