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
