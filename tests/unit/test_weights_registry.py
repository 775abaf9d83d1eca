"""The model registry: every row must be enough to download and verify its file."""

from __future__ import annotations

import dataclasses
import re

import pytest

from facefix_cli.weights import registry
from facefix_cli.weights.registry import MODELS


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.name)
def test_every_entry_has_urls_size_digest_and_licence(model):
    assert model.urls, "no download URL"
    assert all(url.startswith("https://") for url in model.urls)
    assert "/releases/download/" in model.urls[0]  # the release URL comes first
    assert all(url.rsplit("/", 1)[1] == model.file for url in model.urls)
    assert isinstance(model.size, int) and model.size > 0
    assert re.fullmatch(r"[0-9a-f]{64}", model.sha256)
    assert model.licence.strip()
    assert re.fullmatch(r"[a-z0-9][a-z0-9.\-]*", model.name)


def test_names_files_and_digests_are_unique():
    for field in ("name", "file", "sha256"):
        values = [getattr(m, field) for m in MODELS]
        assert len(values) == len(set(values)), field


def test_default_set_is_what_fix_with_gfpgan_and_upscaling_needs():
    defaults = {m.name for m in MODELS if m.default}
    assert defaults == {
        "gfpgan-1.4",
        "realesrgan-x2plus",
        "realesrgan-x4plus",
        "retinaface-resnet50",
        "parsenet",
    }
    for scale in (2, 4):
        needed = registry.REGISTRY.required(upscale=scale, restorer="gfpgan")
        assert {m.name for m in needed} <= defaults


def test_codeformer_is_non_commercial_and_never_a_default():
    codeformer = registry.get_model("codeformer")
    assert codeformer.non_commercial and not codeformer.default
    assert "non-commercial" in codeformer.licence
    assert [m.name for m in MODELS if m.non_commercial] == ["codeformer"]


def test_a_registry_answers_from_its_own_table():
    x2 = registry.get_model("realesrgan-x2plus")
    stand_in = dataclasses.replace(x2, size=10, sha256="0" * 64)
    table = registry.Registry((stand_in, registry.get_model("parsenet")))
    assert table.get("realesrgan-x2plus") is stand_in
    assert table.required(upscale=2, restorer=None) == [stand_in]
    assert registry.REGISTRY.required(upscale=2, restorer=None) == [x2]
    with pytest.raises(KeyError, match="known models: realesrgan-x2plus, parsenet"):
        table.get("gfpgan-1.4")
    with pytest.raises(KeyError, match="no upscaler in the registry for scale 4"):
        table.upscaler_for_scale(4)
