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


def verify_row(weights: Path, name: str) -> str:
    """`facefix models --verify`'s plain row for `name`: where the full detail is."""
    listing = run("models", "--weights-dir", weights, "--verify")
    assert listing.exit_code == 0, listing.output
    (line,) = [line for line in listing.stdout.splitlines() if line.startswith(f"{name} ")]
    return line


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
    assert line.endswith(
        "warning: RealESRGAN_x2plus.pth is not the released realesrgan-x2plus; "
        "outputs record its own SHA-256 (facefix models --verify)"
    )
    # The run left the digest beside the file for the next one.
    assert digests.cached_sha256(stand_in) == own_digest(stand_in)
    # The detail the one line leaves out: `facefix models --verify` (README "Model weights").
    size = stand_in.stat().st_size
    row = verify_row(weights, "realesrgan-x2plus")
    assert f"corrupt: {size} bytes, expected {model.size}; SHA-256 {own_digest(stand_in)}" in row


def test_quiet_runs_do_not_warn_and_models_verify_still_tells(inputs, weights):
    result = run("fix", inputs, "-U", "2", "--weights-dir", weights, "--quiet")
    assert result.exit_code == 0, result.output
    assert "warning:" not in result.stderr  # README: none with -q (cron)
    assert len(list(inputs.glob("*.fixed.png"))) == 2
    stand_in = weights / "RealESRGAN_x2plus.pth"
    assert own_digest(stand_in) in verify_row(weights, "realesrgan-x2plus")


def test_an_unregistered_upscaler_is_named_and_outputs_record_its_digest(inputs, weights, tmp_path):
    custom = tmp_path / "4x-custom.pth"
    shutil.copy(weights / "RealESRGAN_x2plus.pth", custom)
    result = run("fix", inputs, "--upscaler", custom, "--weights-dir", weights)
    assert result.exit_code == 0, result.output
    (line,) = [line for line in result.stderr.splitlines() if "warning:" in line]
    assert line.endswith(
        "warning: 4x-custom.pth is not a release; "
        "outputs record its own SHA-256 (facefix models --verify)"
    )
    # Its full digest is in every output's record (and so in the HTML report).
    for name in ("0.fixed.png", "1.fixed.png"):
        assert recorded(inputs / name)["sha256"] == own_digest(custom)


def test_models_lists_the_files_own_digest_once_known(weights):
    listing = run("models", "--weights-dir", weights, "--verify", "--json")
    row = {r["name"]: r for r in json.loads(listing.stdout)["models"]}["realesrgan-x2plus"]
    stand_in = weights / "RealESRGAN_x2plus.pth"
    assert row["state"] == "corrupt" and row["file_sha256"] == own_digest(stand_in)
    assert row["sha256"] == REGISTRY.get("realesrgan-x2plus").sha256
    plain = run("models", "--weights-dir", weights)  # no hashing: the cache the check left
    (line,) = [line for line in plain.stdout.splitlines() if line.startswith("realesrgan-x2plus")]
    assert own_digest(stand_in) in line
