"""`fix --ray` on a local two-CPU Ray cluster: same outputs, counts and failures as a plain run;
a killed worker's files are done elsewhere; Ctrl-C and a missing weight leave no partial output.

One Ray instance serves the whole module (starting Ray and its workers is the slow part), and
each test fixes a few 32x32 images, upscale only, on the session's random-weight checkpoints."""

from __future__ import annotations

import json
import os
import signal
import socket
from pathlib import Path

import pytest
from conftest import gradient_image
from helpers import discover
from PIL import Image
from typer.testing import CliRunner

from facefix_cli.cli import app
from facefix_cli.errors import SetupError
from facefix_cli.io.ledger import LEDGER_NAME
from facefix_cli.io.write import quantize
from facefix_cli.pipeline import FileResult, RunSettings, Work, fix, fix_file
from facefix_cli.pipeline.executors import ray as ray_executor
from facefix_cli.recipe import Recipe
from facefix_cli.silent import Silent

pytestmark = [
    pytest.mark.ray,
    pytest.mark.skipif(
        not ray_executor.ray_installed(), reason="Ray is not installed (uv sync --extra ray)"
    ),
]

IMAGES = 6
# The corrupt input's failure mark (README, "What facefix remembers"): every run over a fresh
# output folder leaves it beside the six outputs, the plain run and the Ray run alike.
FAILED_MARK = ".corrupt.fixed.png.failed1"
OUTPUT_NAMES = {"nested/img0.fixed.png"} | {f"img{index}.fixed.png" for index in range(1, IMAGES)}


@pytest.fixture(scope="module")
def ray_cluster():
    """A local Ray instance with two CPUs, shared by the module; `fix --ray` joins it."""
    assert ray_executor.connect("local", num_cpus=2)
    ray = ray_executor.import_ray()
    assert ray.cluster_resources()["CPU"] == 2
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """Six small PNGs (one in a sub-folder) and a file that passes the signature check but is
    not a PNG past it."""
    folder = tmp_path_factory.mktemp("ray-in")
    (folder / "nested").mkdir()
    for index in range(IMAGES):
        where = folder / "nested" if index == 0 else folder
        pixels = quantize(gradient_image(32, 32, seed=index), 8)
        Image.fromarray(pixels).save(where / f"img{index}.png")
    (folder / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"not a png" * 4)
    return folder


RECIPE = Recipe(scale=2, upscale_strength=0.5)


def settings(weights_dir: Path, output_dir: Path, **changes) -> RunSettings:
    return RunSettings(weights_dir=weights_dir, output_dir=output_dir, **changes)


def ray_work(jobs, weights_dir: Path, output_dir: Path, events=None) -> Work:
    return Work(
        jobs, RECIPE, settings(weights_dir, output_dir, ray_address="local"), events or Silent(),
        lambda: False,
    )  # fmt: skip


def outputs(folder: Path) -> dict[str, bytes]:
    """Every file below `folder` but its ledgers (io.ledger: mtimes differ run to run)."""
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name != LEDGER_NAME
    }


def plain_and_ray(inputs: Path, weights_dir: Path, tmp_path: Path, args: list[str]) -> dict:
    """The outputs of `fix INPUTS ARGS` run plainly (--workers 0) and on Ray, by run name."""
    runs = {}
    for name, extra in (("plain", ["--workers", "0"]), ("ray", ["--ray"])):
        out = tmp_path / name
        result = CliRunner().invoke(
            app,
            ["fix", str(inputs), *args, "--output-dir", str(out)]
            + ["--weights-dir", str(weights_dir), "--json", *extra],
            catch_exceptions=False,
        )
        assert result.exit_code == 1, result.output  # the corrupt file
        runs[name] = outputs(out)
    return runs


def beside_inputs(tmp_path_factory) -> Path:
    """A fresh output folder (not yet made) at the plain run's depth beside the inputs folder:
    each record names its source relative to the output's folder (README, the `source` path),
    so only outputs written at the same place are byte for byte the plain run's."""
    folder = tmp_path_factory.mktemp("ray-out")
    folder.rmdir()  # the run makes it, as --output-dir does
    return folder


@pytest.fixture(scope="module")
def plain(inputs, weights_dir, tmp_path_factory) -> tuple[dict[str, bytes], dict]:
    """The plain (sequential) run's outputs and --json summary: what every Ray run must match."""
    out = tmp_path_factory.mktemp("plain-out")
    summary = fix([inputs], RECIPE, settings(weights_dir, out))
    return outputs(out), summary.to_dict()


class Recorder(Silent):
    def __init__(self) -> None:
        self.started_files: list[Path] = []
        self.finished: list[FileResult] = []

    def file_started(self, job) -> None:
        self.started_files.append(job.source)

    def file_finished(self, result: FileResult) -> None:
        self.finished.append(result)


def test_ray_run_matches_a_plain_run(ray_cluster, inputs, weights_dir, plain, tmp_path_factory):
    expected, plain_summary = plain
    assert len(expected) == IMAGES + 1 and FAILED_MARK in expected
    assert plain_summary["failed"] == 1
    out = beside_inputs(tmp_path_factory)
    # A finished output is skipped by both runs alike.
    (out / "nested").mkdir(parents=True)
    (out / "nested" / "img0.fixed.png").write_bytes(expected["nested/img0.fixed.png"])
    result = CliRunner().invoke(
        app,
        ["fix", str(inputs), "-U", "2", "--upscale-strength", "0.5", "--output-dir", str(out)]
        + ["--weights-dir", str(weights_dir), "--ray", "--json", "-v"],  # -v: skipped files listed
        catch_exceptions=False,
    )
    assert result.exit_code == 1, result.output  # the corrupt file, as in the plain run
    summary = json.loads(result.stdout)
    assert outputs(out) == expected
    assert (summary["processed"], summary["skipped"], summary["failed"]) == (IMAGES - 1, 1, 1)

    def failures(files: list[dict]) -> list[tuple[str, str]]:
        return [(f["source"], f["reason"]) for f in files if f["status"] == "failed"]

    assert failures(summary["files"]) == failures(plain_summary["files"])
    assert failures(summary["files"])[0][0] == str(inputs / "corrupt.png")
    # Results are reported under the paths the driver discovered, one per file.
    assert sorted(f["source"] for f in summary["files"]) == sorted(
        f["source"] for f in plain_summary["files"]
    )


def test_a_killed_worker_has_its_files_done_elsewhere(
    ray_cluster, inputs, weights_dir, plain, tmp_path, tmp_path_factory
):
    expected, _ = plain
    out = beside_inputs(tmp_path_factory)
    marker = tmp_path / "worker-killed"
    victim = "img3.png"

    def die_once_on_victim(job, recipe, run_settings, networks):
        # Runs in a Ray worker: the first worker to get the victim file dies on the spot, as a
        # process killed by the OOM killer or a lost node would.
        if job.source.name == victim and not marker.exists():
            marker.write_text(str(os.getpid()))
            os._exit(1)
        return fix_file(job, recipe, run_settings, networks)

    jobs, _ = discover([inputs], output_dir=out)
    events = Recorder()
    results = list(
        ray_executor.run(ray_work(jobs, weights_dir, out, events), fix_one=die_once_on_victim)
    )
    assert marker.exists()  # a worker did die mid-run
    assert sorted(r.source for r in results) == sorted(job.source for job in jobs)
    by_name = {r.source.name: r for r in results}
    assert by_name[victim].status == "fixed"
    assert by_name["corrupt.png"].status == "failed"  # its own failure: once, not retried
    assert sorted(events.started_files) == sorted(job.source for job in jobs)  # once each
    # The executor writes the outputs; the failure mark is left by the run around it
    # (`pipeline.run.fix`), which this direct call skips.
    assert outputs(out) == {name: data for name, data in expected.items() if name != FAILED_MARK}


def test_ctrl_c_leaves_only_whole_outputs(
    ray_cluster, inputs, weights_dir, plain, tmp_path_factory
):
    expected, _ = plain
    out = beside_inputs(tmp_path_factory)

    class InterruptAfterFirstFixed(Silent):
        def file_finished(self, result: FileResult) -> None:
            if result.status == "fixed":
                raise KeyboardInterrupt

    # The run unwinds the interrupt into its summary, as a local run does (exit 130 in the CLI).
    summary = fix(
        [inputs],
        RECIPE,
        settings(weights_dir, out, ray_address="local"),
        events=InterruptAfterFirstFixed(),
    )
    assert summary.signal == signal.SIGINT and summary.not_started > 0
    written = outputs(out)
    assert 1 <= len(written) < IMAGES  # stopped early: queued files were never started
    # Every file present is a whole output, byte for byte the plain run's; no temporary left.
    assert set(written) <= set(expected), sorted(written)
    assert all(written[name] == expected[name] for name in written)


def test_a_node_without_the_weights_fails_at_once(ray_cluster, inputs, tmp_path):
    empty = tmp_path / "no-weights"
    empty.mkdir()
    out = tmp_path / "out"
    jobs, _ = discover([inputs], output_dir=out)
    with pytest.raises(SetupError) as raised:
        list(ray_executor.run(ray_work(jobs[:1], empty, out)))
    message = str(raised.value)
    # README: each missing file on its own line and one next step that works there (a worker
    # does not download: a copy, a --mirror folder or `facefix models --find`)
    assert message == (
        f"on Ray node {socket.gethostname()}: missing model weights in {empty} "
        "(offline, not downloading):\n"
        "  RealESRGAN_x2plus.pth\n"
        "next: copy them there, pass --mirror DIR (a folder holding them), or take them from an "
        "A1111, Forge or ComfyUI models folder: facefix models --find DIR --weights-dir "
        f"{empty.absolute()}"
    )
    assert raised.value.exit_code == 2
    assert not out.exists()


def test_ray_workers_load_an_onnx_restorer_and_record_it(
    ray_cluster, inputs, weights_dir, tmp_path
):
    """--restorer crosses to the workers (its path absolute): the same bytes as a plain run,
    and each output's record names the file and its SHA-256 (no faces: random RetinaFace).
    With an upscale: under restoration alone a faceless input gets no output, only a mark."""
    import hashlib

    from checkpoints import export_onnx_restorer

    pytest.importorskip("onnxruntime", reason="needs the onnx extra (uv sync --extra onnx)")

    model = tmp_path / "face.onnx"
    export_onnx_restorer(model, 256)
    runs = plain_and_ray(inputs, weights_dir, tmp_path, ["-U", "2", "--restorer", str(model)])
    assert set(runs["ray"]) == OUTPUT_NAMES | {FAILED_MARK}
    assert runs["ray"] == runs["plain"]
    from facefix_cli.io.pngchunks import parse_chunks
    from facefix_cli.metadata import parse_generation

    (record,) = parse_generation(parse_chunks(runs["ray"]["img1.fixed.png"])).facefix
    (restoration,) = [op for op in record["operations"] if op["type"] == "restorer"]
    assert (restoration["model"], restoration["sha256"], restoration["faces"]) == (
        "face.onnx",
        hashlib.sha256(model.read_bytes()).hexdigest(),
        0,
    )


def test_ray_workers_restore_first_when_asked(ray_cluster, inputs, weights_dir, tmp_path):
    """--order crosses to the workers: restore-first runs on Ray give a plain run's bytes, and
    each record lists the restoration before the upscale, in the order they ran."""
    from checkpoints import export_onnx_restorer

    from facefix_cli.io.pngchunks import parse_chunks
    from facefix_cli.metadata import parse_generation

    pytest.importorskip("onnxruntime", reason="needs the onnx extra (uv sync --extra onnx)")

    model = tmp_path / "face.onnx"
    export_onnx_restorer(model, 256)
    args = ["-U", "2", "--restorer", str(model), "--order", "restore-first"]
    runs = plain_and_ray(inputs, weights_dir, tmp_path, args)
    assert set(runs["ray"]) == OUTPUT_NAMES | {FAILED_MARK}
    assert runs["ray"] == runs["plain"]
    (record,) = parse_generation(parse_chunks(runs["ray"]["img1.fixed.png"])).facefix
    assert [operation["type"] for operation in record["operations"]] == ["restorer", "esrgan"]
