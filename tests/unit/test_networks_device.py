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


def test_auto_on_the_cpu_is_bf16_where_the_cpu_has_native_bf16(monkeypatch):
    from facefix_cli.networks import device

    assert device.upscaler_dtype("auto", CPU) == torch.float32  # the suite pins FACEFIX_CPU_BF16=0
    monkeypatch.setenv("FACEFIX_CPU_BF16", "1")
    assert device.upscaler_dtype("auto", CPU) == torch.bfloat16
    assert device.upscaler_dtype("auto", CUDA) == torch.float16
    assert device.upscaler_dtype("fp32", CPU) == torch.float32  # explicit wins
    assert device.face_dtype("auto", CPU) == torch.float32
    monkeypatch.delenv("FACEFIX_CPU_BF16")
    for native in (True, False):
        monkeypatch.setattr(device, "_this_cpu_has_bf16", lambda native=native: native)
        assert device.upscaler_dtype("auto", CPU) == (torch.bfloat16 if native else torch.float32)


def test_native_bf16_is_read_from_the_cpu_flags():
    from facefix_cli.networks.device import channels_last_upscaler, cpuinfo_has_bf16

    base = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512bw"
    assert not cpuinfo_has_bf16(base)
    assert cpuinfo_has_bf16(base + " avx512_bf16 avx512_vnni")
    assert cpuinfo_has_bf16(base + " amx_bf16 amx_tile")
    assert not cpuinfo_has_bf16(base + " avx512_bf16x")  # whole flags only
    assert not cpuinfo_has_bf16("no flags line")
    assert channels_last_upscaler(torch.bfloat16, CPU)
    assert not channels_last_upscaler(torch.float32, CPU)
    assert not channels_last_upscaler(torch.bfloat16, CUDA)


def test_faces_go_one_at_a_time_and_parsenet_channels_last_on_the_cpu_only():
    from facefix_cli.networks.device import channels_last_parser, face_batch
    from facefix_cli.ops.restore import FACE_BATCH

    assert face_batch(CPU) == 1
    assert face_batch(CUDA) == FACE_BATCH > 1
    assert channels_last_parser(CPU) and not channels_last_parser(CUDA)
