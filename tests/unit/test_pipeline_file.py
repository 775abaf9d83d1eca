"""The per-file steps (pipeline.file) against a tree that changes under the run: a file or folder
swapped after the walk is neither read nor written, and the output takes its input's mode and,
as root, its owner."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from conftest import gradient_image
from PIL import Image

from facefix_cli.io.discover import scan
from facefix_cli.io.read import read_image
from facefix_cli.io.write import quantize
from facefix_cli.metadata import chunks_from_bytes
from facefix_cli.pipeline.file import output_attributes, read_job
from facefix_cli.pipeline.results import FileResult, Status
from facefix_cli.pipeline.settings import RunSettings


def make_png(path: Path, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(quantize(gradient_image(8, 8, seed), 8)).save(path)
    return path


def test_a_folder_swapped_for_a_link_after_the_walk_is_neither_read_nor_written(tmp_path):
    make_png(tmp_path / "tree" / "sub" / "a.png")
    elsewhere = tmp_path / "elsewhere"
    make_png(elsewhere / "a.png", seed=1)  # the same name, in a folder the walk never saw
    (job,) = [found.job for found in scan([tmp_path / "tree"])]
    os.rename(tmp_path / "tree" / "sub", tmp_path / "tree" / "was")
    os.symlink(elsewhere, tmp_path / "tree" / "sub")
    result = read_job(job, RunSettings(weights_dir=tmp_path))
    assert isinstance(result, FileResult) and result.status is Status.FAILED
    assert "replaced since the walk" in result.reason
    assert sorted(p.name for p in elsewhere.iterdir()) == ["a.png"]  # no claim, no output


def test_a_file_swapped_after_the_walk_is_not_read(tmp_path):
    make_png(tmp_path / "a.png")
    (job,) = [found.job for found in scan([tmp_path])]
    make_png(tmp_path / "b.png", seed=1)
    os.replace(tmp_path / "b.png", tmp_path / "a.png")
    result = read_job(job, RunSettings(weights_dir=tmp_path))
    assert isinstance(result, FileResult) and result.status is Status.FAILED
    assert "replaced since the walk" in result.reason
    assert not any(p.name.endswith(".claim") for p in tmp_path.iterdir())  # released


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o644, 0o4755])
def test_the_output_takes_the_inputs_permission_bits(tmp_path, mode):
    path = make_png(tmp_path / "a.png")
    path.chmod(mode)
    attributes = output_attributes(read_image(path, chunks_from_bytes))
    assert attributes["mode"] == stat.S_IMODE(mode) & 0o777  # never set-uid, set-gid, sticky


@pytest.mark.skipif(os.geteuid() != 0, reason="giving files to another uid needs root")
def test_as_root_the_output_takes_the_inputs_owner(tmp_path):
    path = make_png(tmp_path / "a.png")
    os.chown(path, 4242, 4343)
    assert output_attributes(read_image(path, chunks_from_bytes))["owner"] == (4242, 4343)
