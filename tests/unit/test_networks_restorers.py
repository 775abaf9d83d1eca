"""--restorer's pure parts: the ONNX Runtime provider choice, the crop size from spandrel's size
requirements, the scaled template, the recipe, the record and A1111's name for a restorer.
Loading real files (spandrel, ONNX exports checked against torch) is in
tests/integration/test_restorer_files.py."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from spandrel import SizeRequirements

from facefix_cli.errors import SetupError
from facefix_cli.metadata.tools.a1111 import a1111_postprocessing_text
from facefix_cli.networks.restorers import choose_providers, load_restorer, spandrel_crop_size
from facefix_cli.operations import Operation
from facefix_cli.ops import align
from facefix_cli.recipe import Recipe

CPU = torch.device("cpu")
CACHE = Path("/weights/tensorrt")


def test_without_onnxruntime_the_error_says_which_extra_to_install(tmp_path, monkeypatch):
    path = tmp_path / "face.onnx"
    path.write_bytes(b"never read: the import fails first")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import raises ImportError
    with pytest.raises(SetupError, match=r"install facefix\[onnx\]") as caught:
        load_restorer(path, CPU, tmp_path)
    assert caught.value.exit_code == 2


@pytest.mark.parametrize(
    ("available", "device", "expected"),
    [
        (["CPUExecutionProvider"], "cpu", ["CPUExecutionProvider"]),
        (["CUDAExecutionProvider", "CPUExecutionProvider"], "cpu", ["CPUExecutionProvider"]),
        (
            ["CUDAExecutionProvider", "CPUExecutionProvider"],
            "cuda:1",
            [("CUDAExecutionProvider", {"device_id": 1}), "CPUExecutionProvider"],
        ),
        (
            ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
            "cuda",
            [
                (
                    "TensorrtExecutionProvider",
                    {
                        "device_id": 0,
                        "trt_engine_cache_enable": True,
                        "trt_engine_cache_path": str(CACHE),
                    },
                ),
                ("CUDAExecutionProvider", {"device_id": 0}),
                "CPUExecutionProvider",
            ],
        ),
        (["CPUExecutionProvider"], "cuda:0", ["CPUExecutionProvider"]),  # the CPU-only build
        (["CoreMLExecutionProvider", "CPUExecutionProvider"], "mps", ["CPUExecutionProvider"]),
    ],
)
def test_providers_are_chosen_from_what_onnxruntime_has(available, device, expected):
    assert choose_providers(available, torch.device(device), CACHE) == expected


@pytest.mark.parametrize(
    ("requirements", "size"),
    [
        (SizeRequirements(minimum=512), 512),  # GFPGAN
        (SizeRequirements(multiple_of=512, square=True), 512),  # CodeFormer
        (SizeRequirements(multiple_of=32), 512),  # RestoreFormer
        (SizeRequirements(minimum=1024), 1024),
        (SizeRequirements(multiple_of=768), 768),
    ],
)
def test_spandrel_crop_size_is_the_least_allowed_square_of_at_least_512(requirements, size):
    assert spandrel_crop_size(requirements) == size


# --- alignment, recipe and metadata ------------------------------------------------------------


@pytest.mark.parametrize("size", [256, 1024, 2048])
def test_the_ffhq_template_scales_with_the_crop(size):
    landmarks = align.FFHQ_TEMPLATE_512 * 0.3 + 40  # a face somewhere in a photo
    matrix = align.alignment_matrix(landmarks, size)
    mapped = np.c_[landmarks, np.ones(5)] @ matrix.T
    assert np.abs(mapped - align.FFHQ_TEMPLATE_512 * size / 512).max() < 0.01
    assert align.ffhq_template(512) is align.FFHQ_TEMPLATE_512  # 512 exactly as before


def test_recipe_checks_and_rows_of_a_restorer(tmp_path):
    path = tmp_path / "GPEN-BFR-512.onnx"
    with pytest.raises(SetupError, match="--restorer: no such model file"):
        Recipe(restore_with="restorer", restore_strength=1.0, restorer_path=path).validate()
    path.write_bytes(b"x")
    recipe = Recipe(restore_with="restorer", restore_strength=0.7, restorer_path=path)
    recipe.validate()
    assert ("restorer", "GPEN-BFR-512.onnx") in recipe.rows()
    assert ("restore strength", "0.7") in recipe.rows()
    assert [m.name for m in recipe.required_weights()] == ["retinaface-resnet50", "parsenet"]
    with pytest.raises(SetupError, match=r"--restore-strength must be in \(0, 1\]"):
        Recipe(restore_with="restorer", restore_strength=0.0, restorer_path=path).validate()


@pytest.mark.parametrize(
    ("operation", "line"),
    [
        (
            Operation(type="restorer", strength=0.8, model="RF.pth", architecture="RestoreFormer"),
            "RestoreFormer visibility: 0.8",
        ),
        (
            Operation(
                type="restorer", strength=1.0, model="GPEN-BFR-512.onnx", architecture="ONNX"
            ),
            "GPEN-BFR-512 visibility: 1",
        ),
        (
            Operation(type="gfpgan", strength=0.5, model="my-gfpgan.pth", architecture="GFPGAN"),
            "GFPGAN visibility: 0.5",
        ),
        (
            Operation(
                type="codeformer",
                strength=0.8,
                fidelity=0.3,
                model="codeformer.onnx",
                architecture="ONNX",
            ),
            "CodeFormer visibility: 0.8, CodeFormer weight: 0.3",
        ),
    ],
)
def test_a1111_names_a_restorer_as_its_extras_tab_would(operation, line):
    assert a1111_postprocessing_text([operation]) == line


def test_restorer_fields_are_recorded_only_when_set():
    assert "architecture" not in Operation(type="gfpgan", strength=0.8).to_json()
    record = Operation(type="restorer", strength=1.0, architecture="ONNX", size=256).to_json()
    assert (record["architecture"], record["size"]) == ("ONNX", 256)
    assert Operation.from_json(record) == Operation(
        type="restorer", strength=1.0, architecture="ONNX", size=256
    )
