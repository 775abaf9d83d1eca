"""weights.download without a server: names to models, the command a user is told to run."""

from __future__ import annotations

import pytest

from facefix_cli.errors import SetupError
from facefix_cli.weights import download as dl
from facefix_cli.weights import registry
from facefix_cli.weights.registry import Registry
from tests.weights_server import (
    payload,
    stand_in,
)


def test_resolve_names():
    defaults = {m.name for m in dl.resolve_names([])}
    assert defaults == {m.name for m in registry.MODELS if m.default}
    every = dl.resolve_names([], all_models=True)
    assert "codeformer" not in {m.name for m in every}  # non-commercial: by name only
    assert len(every) == len(registry.MODELS) - 1
    chosen = dl.resolve_names(["CodeFormer", "GFPGANv1.4.pth", "gfpgan-1.4"])
    assert [m.name for m in chosen] == ["codeformer", "gfpgan-1.4"]
    with pytest.raises(SetupError, match="unknown model nope; known models: gfpgan-1.4, "):
        dl.resolve_names(["nope"])
    with pytest.raises(SetupError, match="not both"):
        dl.resolve_names(["parsenet"], all_models=True)


def test_resolve_names_reads_the_registry_it_is_given():
    alpha, beta = stand_in("alpha", payload(1)), stand_in("beta", payload(2), default=False)
    table = Registry((alpha, beta))
    assert dl.resolve_names([], registry=table) == [alpha]
    assert dl.resolve_names(["BETA.pth"], registry=table) == [beta]
    with pytest.raises(SetupError, match="unknown model gfpgan-1.4; known models: alpha, beta$"):
        dl.resolve_names(["gfpgan-1.4"], registry=table)


def test_download_command_quotes_the_folder(tmp_path):
    models = [registry.get_model("gfpgan-1.4"), registry.get_model("parsenet")]
    folder = tmp_path / "my weights"
    assert dl.download_command(models, folder) == (
        f"facefix download gfpgan-1.4 parsenet --weights-dir '{folder}'"
    )
