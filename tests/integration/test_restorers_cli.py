"""`fix --restorer PATH` end to end through the command line: ONNX and spandrel face models on
a face at known landmarks (the stand-in detector), the pixels they may change, the record, the
A1111 line, `info` and the report, every in-process executor, and the errors a user can cause."""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pytest
import torch
from checkpoints import export_onnx_restorer, restoreformer_state_dict, save_params_ema
from conftest import gradient_image
from helpers import centred_face_detector, centred_faces
from PIL import Image
from PIL.PngImagePlugin import PngInfo
from typer.testing import CliRunner

from facefix_cli.cli import app
from facefix_cli.io.pngchunks import parse_chunks
from facefix_cli.io.read import read_image
from facefix_cli.io.write import quantize
from facefix_cli.metadata import chunks_from_bytes, parse_generation
from facefix_cli.networks.cache import Networks
from facefix_cli.ops.align import alignment_matrix
from facefix_cli.ops.paste import inverse_region

runner = CliRunner()
WIDTH, HEIGHT = 48, 40

# The ONNX tests export torch modules (onnx, onnxscript: dev dependencies) and run them on ONNX
# Runtime (the onnx extra, which CI installs); without them they are skipped, saying why.
ONNX = pytest.mark.skipif(
    find_spec("onnxruntime") is None or find_spec("onnx") is None,
    reason="needs the onnx extra and dev dependencies (uv sync --extra onnx)",
)


def run(*args: object):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(autouse=True)
def one_face_per_image(monkeypatch):
    """Every image has one face at known landmarks (random RetinaFace weights find none)."""
    monkeypatch.setattr(Networks, "detector", property(lambda self: centred_face_detector([])))


def a1111_png(path: Path, seed: int = 1, size: tuple[int, int] = (WIDTH, HEIGHT)) -> Path:
    info = PngInfo()
    info.add_text("parameters", f"a portrait\nSteps: 20, Seed: {seed}, Size: {size[0]}x{size[1]}")
    Image.fromarray(quantize(gradient_image(*size, seed), 8)).save(path, pnginfo=info)
    return path


@pytest.fixture
def inputs(tmp_path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    a1111_png(folder / "portrait.png")
    return folder


def pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def record_of(path: Path) -> dict:
    (record,) = parse_generation(parse_chunks(path.read_bytes())).facefix
    return record


def face_region(height: int, width: int, size: int) -> tuple[int, int, int, int]:
    """Where a size x size crop of the stand-in detector's face maps back to."""
    landmarks = centred_faces(height, width)[0].landmarks
    region = inverse_region(alignment_matrix(landmarks, size), width, height, size)
    assert region is not None
    return region


def assert_changed_only_in(fixed: np.ndarray, before: np.ndarray, size: int) -> None:
    assert fixed.shape == before.shape
    x0, y0, x1, y1 = face_region(*fixed.shape[:2], size)
    outside = np.ones(fixed.shape[:2], bool)
    outside[y0:y1, x0:x1] = False
    assert np.array_equal(fixed[outside], before[outside])  # untouched outside the face
    assert not np.array_equal(fixed[y0:y1, x0:x1], before[y0:y1, x0:x1])  # and restored in it


@ONNX
def test_an_onnx_restorer_end_to_end(inputs, tmp_path, weights_dir):
    model = tmp_path / "GPEN-BFR-256.onnx"
    export_onnx_restorer(model, 256)
    baseline = tmp_path / "baseline"
    shutil.copytree(inputs, baseline)
    assert run("fix", baseline, "-U", "2", "--weights-dir", weights_dir).exit_code == 0
    report = tmp_path / "run.html"
    result = run(
        *("fix", inputs, "-U", "2", "--restorer", model, "--restore-strength", "0.8"),
        *("--weights-dir", weights_dir, "--report", report),
    )
    assert result.exit_code == 0, result.stderr
    assert "restorer GPEN-BFR-256.onnx, restore strength 0.8" in result.stderr
    output = inputs / "portrait.fixed.png"
    fixed = pixels(output)
    assert fixed.shape == (HEIGHT * 2, WIDTH * 2, 3)
    assert_changed_only_in(fixed, pixels(baseline / "portrait.fixed.png"), 256)
    restoration = record_of(output)["operations"][1]
    assert {k: v for k, v in restoration.items() if k != "detections"} == {
        "type": "restorer",
        "strength": 0.8,
        "model": "GPEN-BFR-256.onnx",
        "sha256": hashlib.sha256(model.read_bytes()).hexdigest(),
        "architecture": "ONNX",
        "size": 256,
        "faces": 1,
    }
    assert Image.open(output).text["postprocessing"] == (
        "Postprocess upscale by: 2, Postprocess upscaler: R-ESRGAN 2x+, GPEN-BFR-256 visibility: 0.8"
    )
    info = runner.invoke(app, ["info", str(output)], env={"COLUMNS": "400"})
    # One rendering (`Operation.describe`): info and the report say the same words.
    line = "restorer: strength 0.8, ONNX 256 px, 1 face restored (GPEN-BFR-256.onnx)"
    assert line in info.stdout
    page = report.read_text()
    assert line in page
    assert restoration["sha256"] in page  # the report's model files list it


@ONNX
def test_a_codeformer_style_onnx_restorer_takes_fidelity(inputs, tmp_path, weights_dir):
    model = tmp_path / "codeformer.onnx"
    export_onnx_restorer(model, 512, fidelity_dtype=torch.float64)
    outputs = {}
    for fidelity in ("0.2", "0.9"):
        folder = tmp_path / fidelity
        result = run(
            *("fix", inputs, "--output-dir", folder, "--restorer", model, "--fidelity", fidelity),
            *("--weights-dir", weights_dir),
        )
        assert result.exit_code == 0, result.stderr
        outputs[fidelity] = folder / "portrait.fixed.png"
    original = pixels(inputs / "portrait.png")
    for output in outputs.values():
        assert_changed_only_in(pixels(output), original, 512)  # no upscale: the original's pixels
    assert not np.array_equal(pixels(outputs["0.2"]), pixels(outputs["0.9"]))
    restoration = record_of(outputs["0.2"])["operations"][0]
    assert (restoration["type"], restoration["fidelity"], restoration["size"]) == (
        "codeformer",
        0.2,
        512,
    )
    assert Image.open(outputs["0.2"]).text["postprocessing"] == (
        "CodeFormer visibility: 1, CodeFormer weight: 0.2"
    )


@ONNX
def test_every_in_process_executor_and_batch_size_gives_the_same_bytes(tmp_path, weights_dir):
    model = tmp_path / "face.onnx"
    export_onnx_restorer(model, 256, batch=None)
    inputs = tmp_path / "in"
    inputs.mkdir()
    for index in range(2):
        a1111_png(inputs / f"{index}.png", seed=index)
    runs = {}
    for name, options in {
        "sequential": ("--workers", "0"),
        "pipelined, batches of 2": ("--workers", "2", "--batch-size", "2"),
    }.items():
        folder = tmp_path / name
        args = ("fix", inputs, "--restorer", model, "--output-dir", folder, "--json")
        result = run(*args, "--weights-dir", weights_dir, *options)
        assert result.exit_code == 0, result.stderr
        assert json.loads(result.stdout)["processed"] == 2
        runs[name] = {p.name: p.read_bytes() for p in sorted(folder.glob("*.fixed.png"))}
    assert len(runs["sequential"]) == 2
    assert runs["sequential"] == runs["pipelined, batches of 2"]


def test_restoreformer_through_spandrel_end_to_end(inputs, tmp_path, weights_dir):
    model = save_params_ema(restoreformer_state_dict(), tmp_path / "RestoreFormer.pth")
    result = run("fix", inputs, "--restorer", model, "--weights-dir", weights_dir)
    assert result.exit_code == 0, result.stderr
    output = inputs / "portrait.fixed.png"
    assert_changed_only_in(pixels(output), pixels(inputs / "portrait.png"), 512)
    restoration = record_of(output)["operations"][0]
    assert (restoration["type"], restoration["architecture"], restoration["size"]) == (
        "restorer",
        "RestoreFormer",
        512,
    )
    assert restoration["sha256"] == hashlib.sha256(model.read_bytes()).hexdigest()
    assert Image.open(output).text["postprocessing"] == "RestoreFormer visibility: 1"


def test_a_gfpgan_file_as_restorer_gives_the_pixels_of_gfpgan(inputs, tmp_path, gfpgan_weights):
    """The same weights through --restorer and through -G: the same output pixels; the record
    and A1111 line say GFPGAN, the file is named."""
    model = tmp_path / "my-gfpgan.pth"
    shutil.copyfile(gfpgan_weights / "GFPGANv1.4.pth", model)
    builtin, custom = tmp_path / "builtin", tmp_path / "custom"
    for folder, args in ((builtin, ("-G", "0.7")), (custom, ("--restorer", model))):
        extra = ("--restore-strength", "0.7") if folder is custom else ()
        result = run(
            "fix", inputs, "--output-dir", folder, "--weights-dir", gfpgan_weights, *args, *extra
        )
        assert result.exit_code == 0, result.stderr
    assert np.array_equal(
        read_image(builtin / "portrait.fixed.png", chunks_from_bytes).rgb,
        read_image(custom / "portrait.fixed.png", chunks_from_bytes).rgb,
    )
    output = custom / "portrait.fixed.png"
    restoration = record_of(output)["operations"][0]
    assert (restoration["type"], restoration["model"], restoration["architecture"]) == (
        "gfpgan",
        "my-gfpgan.pth",
        "GFPGAN",
    )
    assert "version" not in restoration
    assert Image.open(output).text["postprocessing"] == "GFPGAN visibility: 0.7"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("-G", "0.5", "--restorer", "{model}"), "--restorer and --gfpgan are mutually exclusive"),
        (("--restorer", "{missing}"), "--restorer: no such model file"),
        (("--restorer", "{model}", "--restore-strength", "0"), "--restore-strength must be in"),
        (("--restorer", "{upscaler}"), "is a ESRGAN SR model (x2, 3 channels), not a face"),
    ],
)
@ONNX
def test_usage_errors_exit_2_with_one_line(inputs, tmp_path, weights_dir, args, message):
    model = tmp_path / "face.onnx"
    export_onnx_restorer(model, 256)
    names = {
        "model": model,
        "missing": tmp_path / "nope.onnx",
        "upscaler": weights_dir / "RealESRGAN_x2plus.pth",
    }
    result = run("fix", inputs, "--weights-dir", weights_dir, *(a.format(**names) for a in args))
    assert result.exit_code == 2
    assert message in result.stderr
    assert not list(inputs.glob("*.fixed.png"))


@ONNX
def test_without_onnxruntime_an_onnx_restorer_is_a_setup_error(
    inputs, tmp_path, weights_dir, monkeypatch
):
    model = tmp_path / "face.onnx"
    export_onnx_restorer(model, 256)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    result = run("fix", inputs, "--restorer", model, "--weights-dir", weights_dir)
    assert result.exit_code == 2
    assert "error: ONNX Runtime" not in result.stdout
    errors = [line for line in result.stderr.splitlines() if "install facefix[onnx]" in line]
    assert len(errors) == 1
    assert not list(inputs.glob("*.fixed.png"))
