"""The sequential (`--workers 0`) and pipelined executors through the real CLI and networks:
the same bytes, the same failures, and no partial output when interrupted."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import pytest
from conftest import gradient_image
from typer.testing import CliRunner

from facefix_cli.cli import app
from facefix_cli.io.write import quantize

runner = CliRunner()


@pytest.fixture
def folder(tmp_path) -> Path:
    inputs = tmp_path / "in"
    inputs.mkdir()
    for index, (width, height) in enumerate([(24, 20), (24, 20), (16, 12), (24, 20)]):
        cv2.imwrite(str(inputs / f"{index}.png"), quantize(gradient_image(width, height, index), 8))
    good = (inputs / "0.png").read_bytes()
    (inputs / "2b-broken.png").write_bytes(good[: len(good) // 2])
    return inputs


def fix(inputs: Path, weights: Path, *args: str):
    return runner.invoke(
        app,
        ["fix", str(inputs), "-U", "2", "--json", "--weights-dir", str(weights), *args],
        catch_exceptions=False,
    )


def test_workers_0_and_2_give_the_same_bytes_and_the_same_failures(folder, tmp_path, weights_dir):
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    sequential = fix(folder, weights_dir, "--workers", "0", "--batch-size", "2")
    pipelined = fix(copy, weights_dir, "--workers", "2", "--batch-size", "2")
    assert sequential.exit_code == pipelined.exit_code == 1  # the broken file
    reports = []
    for result in (sequential, pipelined):
        summary = json.loads(result.stdout)
        reports.append(
            sorted(
                (Path(f["source"]).name, f["status"], f["reason"], f["tool"])
                for f in summary["files"]
            )
        )
        assert (summary["processed"], summary["failed"]) == (4, 1)
    assert reports[0] == reports[1]
    assert ("2b-broken.png", "failed", "truncated PNG (cut off in chunk IDAT)", None) in reports[0]
    outputs = sorted(p.name for p in folder.glob("*.fixed.png"))
    assert outputs == ["0.fixed.png", "1.fixed.png", "2.fixed.png", "3.fixed.png"]
    for name in outputs:
        assert (folder / name).read_bytes() == (copy / name).read_bytes(), name


def test_an_interrupted_pipelined_run_exits_130_with_no_partial_output(
    folder, weights_dir, monkeypatch
):
    from facefix_cli.cli.console import PlainFixEvents

    def interrupt(self, result):  # Ctrl-C arrives in the main thread after the first file
        raise KeyboardInterrupt

    monkeypatch.setattr(PlainFixEvents, "file_finished", interrupt)
    result = fix(folder, weights_dir, "--workers", "2")
    assert result.exit_code == 130 and "interrupted" in result.stderr
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]
    for output in folder.glob("*.fixed.png"):  # whatever was finished is whole
        source = cv2.imread(str(folder / output.name.replace(".fixed", "")))
        assert cv2.imread(str(output)).shape[:2] == (source.shape[0] * 2, source.shape[1] * 2)


def test_threads_bound_torch_during_the_run_and_are_restored_after(
    folder, tmp_path, weights_dir, monkeypatch
):
    import torch

    import facefix_cli.pipeline.executors.pipelined as pipelined
    import facefix_cli.pipeline.executors.sequential as sequential

    seen: list[tuple[str, int]] = []
    real_file, real_batch = sequential.fix_file, pipelined.fix_images

    def fix_file(*args, **kwargs):
        seen.append(("sequential", torch.get_num_threads()))
        return real_file(*args, **kwargs)

    def fix_images(*args, **kwargs):
        seen.append(("pipelined", torch.get_num_threads()))
        return real_batch(*args, **kwargs)

    monkeypatch.setattr(sequential, "fix_file", fix_file)
    monkeypatch.setattr(pipelined, "fix_images", fix_images)
    before = torch.get_num_threads()
    copies = [tmp_path / name for name in ("one", "cpu", "two")]
    for copy in copies:
        shutil.copytree(folder, copy)
    reference = fix(folder, weights_dir, "--workers", "0", "--device", "cpu")
    one = fix(copies[0], weights_dir, "--threads", "1", "--device", "cpu")
    assert {name for name, _ in seen} == {"sequential"}
    assert seen[-1] == ("sequential", 1)  # --threads 1: one file at a time, one torch thread
    seen.clear()
    auto_cpu = fix(copies[1], weights_dir, "--threads", "3", "--device", "auto")
    if not torch.cuda.is_available():
        assert set(seen) == {("sequential", 3)}  # auto found only the CPU: sequential, all threads
    seen.clear()
    pipelined_run = fix(copies[2], weights_dir, "--threads", "3", "--workers", "2", "--device", "cpu")  # fmt: skip
    assert set(seen) == {("pipelined", 1)}  # 3 threads - 2 workers
    assert torch.get_num_threads() == before
    for result in (reference, one, auto_cpu, pipelined_run):
        assert result.exit_code == 1  # the broken file
    for name in sorted(p.name for p in folder.glob("*.fixed.png")):
        for copy in copies:
            assert (copy / name).read_bytes() == (folder / name).read_bytes()
