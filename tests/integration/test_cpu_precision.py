"""--precision auto on the CPU: bf16 weights in channels_last where the CPU has native bf16
(FACEFIX_CPU_BF16 overrides the detection; the suite pins 0), the fp32 retry kept, and the
output's upscale record naming the precision only when it is not fp32."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from checkpoints import realesrgan_state_dict, save_params_ema
from helpers import source_image

from facefix_cli.networks.cache import Networks
from facefix_cli.pipeline.image import fix_images
from facefix_cli.recipe import Recipe

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def picture_upscaler(tmp_path_factory):
    # 2 blocks, output gain 0.004: the raw output is a picture (tests/checkpoints.py)
    folder = tmp_path_factory.mktemp("bf16")
    return save_params_ema(realesrgan_state_dict(2, num_block=2, output_gain=0.004), folder / "x2.pth")  # fmt: skip


def run(upscaler, monkeypatch, bf16: str):
    monkeypatch.setenv("FACEFIX_CPU_BF16", bf16)
    recipe = Recipe(scale=2, upscaler_path=upscaler)
    networks = Networks(recipe, upscaler.parent, CPU)
    sources = [source_image(24, 16, seed=s) for s in range(2)]
    return networks, fix_images(sources, recipe, networks)


def test_auto_on_a_bf16_cpu_runs_bf16_channels_last_within_tolerance(picture_upscaler, monkeypatch):  # fmt: skip
    exact_networks, exact = run(picture_upscaler, monkeypatch, "0")
    networks, reduced = run(picture_upscaler, monkeypatch, "1")
    assert exact_networks.upscaler.dtype == torch.float32
    assert exact_networks.upscaler_fallback is None
    assert networks.upscaler.dtype == torch.bfloat16
    assert networks.upscaler_fallback is not None
    assert networks.upscaler_fallback.dtype == torch.float32
    weight = next(p for p in networks.upscaler.model.parameters() if p.ndim == 4 and p.shape[1] > 3)
    assert weight.is_contiguous(memory_format=torch.channels_last)
    for fp32, bf16 in zip(exact, reduced, strict=True):
        assert fp32.rgb.std() > 0.05  # a picture
        mse = float(np.mean((bf16.rgb.astype(np.float64) - fp32.rgb) ** 2))
        assert 10 * np.log10(1.0 / mse) >= 40.0
        fp32_record, bf16_record = fp32.operations[0].to_json(), bf16.operations[0].to_json()
        assert "precision" not in fp32_record  # fp32 records stay as they were
        assert bf16_record.pop("precision") == "bf16"
        assert bf16_record == fp32_record


def test_a_non_finite_bf16_batch_is_redone_in_fp32(picture_upscaler, monkeypatch):
    networks, _ = run(picture_upscaler, monkeypatch, "1")
    upscaler = networks.upscaler
    real = upscaler.model.forward
    monkeypatch.setattr(upscaler.model, "forward", lambda x: real(x) * float("nan"))
    exact_networks, _ = run(picture_upscaler, monkeypatch, "0")
    source = [source_image(24, 16, seed=0)]  # batches of one: a batch's size can move bits
    exact = fix_images(source, exact_networks.recipe, exact_networks)
    redone = fix_images(source, networks.recipe, networks)
    np.testing.assert_array_equal(redone[0].rgb, exact[0].rgb)
