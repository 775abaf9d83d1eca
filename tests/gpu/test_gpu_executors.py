"""The executors on CUDA through the real CLI: the pipelined executor (one or two GPU stages)
writes the same bytes as the sequential one at the same batch size, and within 1/255 across
batch sizes. Skipped without a GPU."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import gradient_image
from typer.testing import CliRunner

from facefix_cli.cli import app
from facefix_cli.io.write import quantize

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def run_fix(inputs: Path, weights: Path, *args: str) -> dict[str, np.ndarray]:
    result = CliRunner().invoke(
        app,
        ["fix", str(inputs), "-U", "2", "--device", "cuda:0", "--weights-dir", str(weights), *args],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    return {p.name: p.read_bytes() for p in sorted(inputs.glob("*.fixed.png"))}


def test_pipelined_matches_sequential_on_cuda(tmp_path, weights_dir):
    source = tmp_path / "in"
    source.mkdir()
    for index in range(5):
        cv2.imwrite(str(source / f"{index}.png"), quantize(gradient_image(40, 32, index), 8))
    copies = {}
    for name in ("sequential", "pipelined", "two-stages", "batched"):
        copies[name] = tmp_path / name
        shutil.copytree(source, copies[name])
    sequential = run_fix(copies["sequential"], weights_dir, "--workers", "0")
    assert len(sequential) == 5
    assert run_fix(copies["pipelined"], weights_dir, "--workers", "2", "--batch-size", "1") == (
        sequential
    )
    two = run_fix(copies["two-stages"], weights_dir, "--device", "cuda:0,cuda:0", "--batch-size", "1")  # fmt: skip
    assert two == sequential
    batched = run_fix(copies["batched"], weights_dir, "--workers", "2", "--batch-size", "3")
    for name, data in sequential.items():
        one = cv2.imdecode(np.frombuffer(data, np.uint8), -1).astype(int)
        other = cv2.imdecode(np.frombuffer(batched[name], np.uint8), -1).astype(int)
        assert np.abs(one - other).max() <= 1, name
