"""`networks.detectors`: one table of face detectors, and `Networks` loading from the run's
registry rather than the module default."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from facefix_cli.networks import detectors
from facefix_cli.networks.cache import Networks
from facefix_cli.recipe import Recipe
from facefix_cli.weights import registry


def test_every_detector_option_has_a_loader_and_a_file() -> None:
    assert set(detectors.DETECTORS) == set(registry.DETECTORS)
    for name in registry.DETECTORS.values():
        assert registry.get_model(name).purpose == "face_detector"


def test_load_detector_follows_the_table(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls = []

    def fake(path: Path, device: torch.device, threshold: float):
        calls.append((path, device, threshold))
        return lambda images: [[] for _ in images]

    row = dataclasses.replace(detectors.DETECTORS["retinaface_mobile0.25"], load=fake)
    monkeypatch.setitem(detectors.DETECTORS, "retinaface_mobile0.25", row)
    detector = detectors.load_detector(
        "retinaface_mobile0.25", tmp_path / "d.pth", torch.device("cpu"), 0.5
    )
    assert detector(torch.zeros(2, 3, 8, 8)) == [[], []]
    assert calls == [(tmp_path / "d.pth", torch.device("cpu"), 0.5)]
    with pytest.raises(KeyError):
        detectors.load_detector("yolo", tmp_path / "d.pth", torch.device("cpu"))


def test_networks_take_their_files_from_the_registry_they_are_given(tmp_path: Path) -> None:
    def renamed(name: str, file: str) -> registry.ModelInfo:
        return dataclasses.replace(registry.get_model(name), file=file)

    table = registry.Registry(
        (
            renamed("realesrgan-x2plus", "my-x2.pth"),
            renamed("gfpgan-1.4", "my-gfpgan.pth"),
            renamed("retinaface-resnet50", "my-detector.pth"),
        )
    )
    recipe = Recipe(scale=2, restore_with="gfpgan", restore_strength=1.0)
    networks = Networks(recipe, tmp_path, torch.device("cpu"), table)
    assert networks.upscaler_path == tmp_path / "my-x2.pth"
    assert networks.restorer_info.file == "my-gfpgan.pth"
    with pytest.raises(KeyError, match="parsenet"):  # not in this table: not the default's
        networks._path("parsenet")
    default = Networks(recipe, tmp_path, torch.device("cpu"))
    assert default.upscaler_path == tmp_path / registry.upscaler_for_scale(2).file
