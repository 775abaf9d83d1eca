"""The Ray executor's parts that need no Ray cluster: the worker plan, the recipe sent to
workers, a worker's weights check, and `--ray` without Ray installed. The runs on a local
cluster are in tests/integration/test_ray.py."""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from facefix_cli.cli import app
from facefix_cli.errors import EXIT_SETUP, SetupError
from facefix_cli.pipeline import RunSettings
from facefix_cli.pipeline.executors import ray as ray_executor
from facefix_cli.recipe import Recipe
from facefix_cli.weights import registry

PACKAGE = Path(ray_executor.__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("device", "resources", "plan"),
    [
        ("auto", {"CPU": 16, "GPU": 4}, ("cuda", 4)),
        ("cuda", {"CPU": 16, "GPU": 2}, ("cuda", 2)),
        ("auto", {"CPU": 2}, ("cpu", 2)),
        ("cpu", {"CPU": 8, "GPU": 4}, ("cpu", 8)),
        ("CPU", {"CPU": 3.0, "GPU": 0.0}, ("cpu", 3)),
    ],
)
def test_one_worker_per_gpu_else_per_cpu(device, resources, plan):
    assert ray_executor.worker_plan(device, resources) == plan


@pytest.mark.parametrize(
    ("device", "resources", "message"),
    [
        ("cuda", {"CPU": 8}, "has no GPUs"),
        ("cuda:1", {"CPU": 8, "GPU": 2}, "each worker gets its own GPU"),
        ("mps", {"CPU": 8}, "use --device auto, cuda or cpu"),
        ("cpu", {"GPU": 1}, "no CPUs"),
    ],
)
def test_impossible_worker_plans_are_setup_errors(device, resources, message):
    with pytest.raises(SetupError, match=message):
        ray_executor.worker_plan(device, resources)


def test_workers_get_absolute_paths_and_a_concrete_device(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = RunSettings(weights_dir=Path("w"), output_dir=Path("out"), ray_address="auto")
    sent = ray_executor.worker_settings(settings, "cuda")
    assert sent.device == "cuda" and sent.ray_address is None
    assert sent.weights_dir == tmp_path / "w" and sent.output_dir == tmp_path / "out"
    assert dataclasses.replace(sent, device="auto", weights_dir=Path("w"), output_dir=Path("out"),
                               ray_address="auto") == settings  # fmt: skip
    recipe = Recipe(upscaler_path=Path("m.pth"), restorer_path=Path("face.onnx"))
    assert ray_executor.worker_recipe(recipe).upscaler_path == tmp_path / "m.pth"
    assert ray_executor.worker_recipe(recipe).restorer_path == tmp_path / "face.onnx"
    assert (
        ray_executor.worker_settings(RunSettings(weights_dir=Path("w")), "cpu").output_dir is None
    )


def test_a_worker_without_the_weights_names_its_node_and_the_command(tmp_path):
    worker = ray_executor.FixWorker(
        Recipe(scale=2), RunSettings(weights_dir=tmp_path, device="cpu"), ray_executor.fix_file
    )
    with pytest.raises(SetupError) as raised:
        worker.prepare()
    message = str(raised.value)
    assert f"on Ray node {socket.gethostname()}" in message
    assert "RealESRGAN_x2plus.pth" in message
    assert (
        "--mirror DIR" in message
        and f"facefix models --find DIR --weights-dir {tmp_path}" in message
    )
    assert raised.value.exit_code == EXIT_SETUP
    assert worker.networks is None


def test_a_worker_fetches_missing_weights_from_the_mirror(tmp_path, monkeypatch):
    data = b"stand-in upscaler" * 100
    model = dataclasses.replace(
        registry.get_model("realesrgan-x2plus"),
        urls=(),
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )
    table = registry.Registry(
        tuple(model if m.name == model.name else m for m in registry.REGISTRY.models)
    )
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / model.file).write_bytes(data)
    weights = tmp_path / "weights"
    settings = RunSettings(weights_dir=weights, device="cpu", mirrors=(str(mirror),))
    # offline reads mirror folders only: without one, nothing can be had
    offline_settings = dataclasses.replace(settings, offline=True, mirrors=())
    offline = ray_executor.FixWorker(Recipe(scale=2), offline_settings, None, table)  # type: ignore[arg-type]
    with pytest.raises(SetupError, match="offline"):
        offline.prepare()
    assert not (weights / model.file).exists()

    loaded: list[str] = []  # the stand-in bytes are no checkpoint: record the load instead
    monkeypatch.setattr(
        ray_executor.Networks, "load_all", lambda self: loaded.append(str(self.device))
    )
    worker = ray_executor.FixWorker(Recipe(scale=2), settings, None, table)  # type: ignore[arg-type]
    assert worker.prepare() == socket.gethostname()
    assert (weights / model.file).read_bytes() == data
    assert worker.networks is not None and worker.networks.device.type == "cpu"
    assert loaded == ["cpu"]  # networks load in prepare, before the first file
    worker.prepare()
    assert loaded == ["cpu"]  # once


def test_ray_without_the_extra_exits_2_with_the_install_command(tmp_path, monkeypatch):
    monkeypatch.setattr(ray_executor, "ray_installed", lambda: False)
    (tmp_path / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    for flags in (["--ray"], ["--ray-address", "auto"], ["--ray", "--dry-run"]):
        result = CliRunner().invoke(
            app, ["fix", str(tmp_path), "-U", "2", "--weights-dir", str(tmp_path), *flags]
        )
        assert result.exit_code == EXIT_SETUP, result.output
        assert "pip install 'facefix[ray]'" in result.stderr
        assert "uv sync --extra ray" in result.stderr
    assert not list(tmp_path.glob("*.fixed.png"))


def test_only_the_ray_executor_imports_ray():
    importers = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            if any(name == "ray" or name.startswith("ray.") for name in names):
                importers.append(path.relative_to(PACKAGE).as_posix())
    assert importers == ["pipeline/executors/ray.py"]
