"""`fix` records the digest of the weight bytes it loaded and says once per run when those are
not the released file's (the tests' random stand-ins are exactly such files)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from conftest import gradient_image
from PIL import Image
from typer.testing import CliRunner

from facefix_cli.cli import app
from facefix_cli.io.pngchunks import parse_chunks
from facefix_cli.io.write import quantize
from facefix_cli.metadata import parse_generation
from facefix_cli.weights import digests
from facefix_cli.weights.registry import REGISTRY

runner = CliRunner()


def run(*args: object):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def own_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def recorded(output: Path) -> dict:
    (record,) = parse_generation(parse_chunks(output.read_bytes())).facefix
    return record["operations"][0]


@pytest.fixture
def inputs(tmp_path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    for index in range(2):
        image = quantize(gradient_image(20, 16, seed=index), 8)
        Image.fromarray(image).save(folder / f"{index}.png")
    return folder


@pytest.fixture
def weights(weights_dir, tmp_path) -> Path:
    folder = tmp_path / "weights"
    folder.mkdir()
    shutil.copy(weights_dir / "RealESRGAN_x2plus.pth", folder)
    return folder


def test_a_stand_in_under_a_registry_name_is_recorded_with_its_own_digest(inputs, weights):
    stand_in = weights / "RealESRGAN_x2plus.pth"
    result = run("fix", inputs, "-U", "2", "--weights-dir", weights, "--json")
    assert result.exit_code == 0, result.output
    model = REGISTRY.get("realesrgan-x2plus")
    for output in sorted(inputs.glob("*.fixed.png")):
        operation = recorded(output)
        assert operation["model"] == model.file
        assert operation["sha256"] == own_digest(stand_in) != model.sha256
    warnings = [line for line in result.stderr.splitlines() if "warning:" in line]
    assert len(warnings) == 1  # once per run, not once per file
    (line,) = warnings
    size = stand_in.stat().st_size
    assert f"{stand_in} is not the released realesrgan-x2plus ({size} bytes, expected " in line
    assert f"{size} bytes, expected {model.size}" in line
    assert line.endswith("facefix download --force realesrgan-x2plus")
    # The run left the digest beside the file for the next one.
    assert digests.cached_sha256(stand_in) == own_digest(stand_in)


def test_quiet_runs_still_warn(inputs, weights):
    result = run("fix", inputs, "-U", "2", "--weights-dir", weights, "--quiet")
    assert result.exit_code == 0, result.output
    assert result.stderr.count("warning:") == 1


def test_an_unregistered_upscaler_is_named_with_its_digest(inputs, weights, tmp_path):
    custom = tmp_path / "4x-custom.pth"
    shutil.copy(weights / "RealESRGAN_x2plus.pth", custom)
    result = run("fix", inputs, "--upscaler", custom, "--weights-dir", weights)
    assert result.exit_code == 0, result.output
    (line,) = [line for line in result.stderr.splitlines() if "warning:" in line]
    assert f"using {custom}, which is not a released model file" in line
    assert own_digest(custom) in line
    assert recorded(inputs / "0.fixed.png")["sha256"] == own_digest(custom)


def test_models_lists_the_files_own_digest_once_known(weights):
    listing = run("models", "--weights-dir", weights, "--verify", "--json")
    row = {r["name"]: r for r in json.loads(listing.stdout)["models"]}["realesrgan-x2plus"]
    stand_in = weights / "RealESRGAN_x2plus.pth"
    assert row["state"] == "corrupt" and row["file_sha256"] == own_digest(stand_in)
    assert row["sha256"] == REGISTRY.get("realesrgan-x2plus").sha256
    plain = run("models", "--weights-dir", weights)  # no hashing: the cache the check left
    (line,) = [line for line in plain.stdout.splitlines() if line.startswith("realesrgan-x2plus")]
    assert own_digest(stand_in) in line
