"""--precision: which dtype each network runs in, per device; the recipe stays picklable."""

from __future__ import annotations

import pickle

import pytest
import torch

from facefix_cli.errors import SetupError
from facefix_cli.networks.device import face_dtype, upscaler_dtype
from facefix_cli.recipe import Recipe

CPU, CUDA = torch.device("cpu"), torch.device("cuda")  # a CUDA device object needs no GPU


def test_auto_is_fp16_upscaling_on_cuda_only_and_fp32_faces():
    assert upscaler_dtype("auto", CUDA) == torch.float16
    assert upscaler_dtype("auto", CPU) == torch.float32
    assert face_dtype("auto", CUDA) == face_dtype("auto", CPU) == torch.float32


@pytest.mark.parametrize(
    ("precision", "dtype"),
    [("fp32", torch.float32), ("fp16", torch.float16), ("bf16", torch.bfloat16)],
)
def test_explicit_precision_applies_on_every_device(precision, dtype):
    for device in (CPU, CUDA):
        assert upscaler_dtype(precision, device) == dtype
        assert face_dtype(precision, device) == dtype


def test_precision_is_validated_and_the_recipe_pickles():
    recipe = Recipe(scale=2, precision="bf16")
    recipe.validate()
    assert pickle.loads(pickle.dumps(recipe)) == recipe
    with pytest.raises(SetupError, match="--precision must be one of"):
        Recipe(scale=2, precision="fp8").validate()  # type: ignore[arg-type]
