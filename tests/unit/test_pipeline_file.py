"""pipeline.file and pipeline.results: the one place exceptions are classified (environment
fault, file problem, crash, pass-through), exit codes, and the summary's JSON."""

from __future__ import annotations

import errno
import json
import os
import stat
import zlib
from pathlib import Path

import cv2
import pytest
import torch
from conftest import gradient_image
from PIL import Image

from facefix_cli.errors import (
    EXIT_CRASHED,
    EXIT_ENVIRONMENT,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_TERMINATED,
    EnvironmentFault,
    ImageError,
    Interrupted,
    OutputWriteError,
    SetupError,
)
from facefix_cli.io.discover import Job, scan
from facefix_cli.io.read import read_image
from facefix_cli.io.write import quantize
from facefix_cli.metadata import chunks_from_bytes
from facefix_cli.pipeline.file import failure_result, output_attributes, read_job
from facefix_cli.pipeline.results import FileResult, FixSummary, Status, StopReason
from facefix_cli.pipeline.settings import RunSettings

JOB = Job(Path("in/a.png"), Path("in/a.fixed.png"))
BESIDE = RunSettings(weights_dir=Path("w"))
TREE = RunSettings(weights_dir=Path("w"), output_dir=Path("out"))


@pytest.mark.parametrize(
    ("exc", "settings"),
    [
        (OutputWriteError("cannot write x: disk full", errno.ENOSPC), BESIDE),
        (OutputWriteError("cannot write x: Read-only file system", errno.EROFS), BESIDE),
        (OSError(errno.EDQUOT, "Disk quota exceeded"), BESIDE),
        (OutputWriteError("cannot write x: Permission denied", errno.EACCES), TREE),
        (RuntimeError("CUDA error: an illegal memory access was encountered"), BESIDE),
    ],
)
def test_environment_faults_stop_the_run(exc, settings):
    with pytest.raises(EnvironmentFault):
        failure_result(JOB, exc, settings)


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (ImageError("truncated PNG"), "truncated PNG"),
        (OutputWriteError("cannot write x: Permission denied", errno.EACCES), "Permission denied"),
        (OSError(errno.ENAMETOOLONG, "File name too long", "in/a.png"), "File name too long"),
        (OSError(errno.ELOOP, "Too many levels of symbolic links"), "symbolic links"),
        (cv2.error("OpenCV(5) error: (-215:Assertion failed)"), "error: Assertion failed"),
        (MemoryError(), "out of memory"),
        (torch.OutOfMemoryError("CUDA out of memory"), "out of GPU memory"),
        (zlib.error("Error -3 while decompressing"), "zlib"),
    ],
)
def test_file_problems_fail_that_file(exc, reason):
    result = failure_result(JOB, exc, BESIDE)
    assert result.status == "failed" and reason.split(":")[-1].strip() in result.reason
    assert "\n" not in result.reason and result.traceback is None


def test_unexpected_exceptions_are_crashes_with_type_hint_and_traceback():
    try:
        {}["missing"]
    except KeyError as exc:
        result = failure_result(JOB, exc, BESIDE)
    assert result.status == "crashed"
    assert result.reason.startswith("KeyError: 'missing'") and "please report it" in result.reason
    assert "Traceback" in result.traceback and "test_pipeline_file.py" in result.traceback


def test_interrupts_and_setup_errors_pass_through():
    for exc in (KeyboardInterrupt(), Interrupted(15), SetupError("no model")):
        with pytest.raises(type(exc)):
            failure_result(JOB, exc, BESIDE)


def test_exit_codes_are_distinct_and_follow_the_worst_outcome():
    def summary(*statuses: str, **fields) -> FixSummary:
        results = [FileResult(Path(s), None, Status(s)) for s in statuses]
        return FixSummary(results=results, **fields)

    assert summary("fixed", "skipped").exit_code == EXIT_OK == 0
    assert summary("fixed", "failed").exit_code == EXIT_FAILED == 1
    assert summary("failed", "crashed").exit_code == EXIT_CRASHED == 3
    assert summary("crashed", fault="disk full").exit_code == EXIT_ENVIRONMENT == 4
    assert summary("fixed", signal=15).exit_code == EXIT_TERMINATED == 143
    assert summary("fixed", signal=1).exit_code == 143
    assert summary(signal=2).exit_code == 130
    stopped = summary("fixed", stopped=StopReason.TIME_LIMIT, time_limit="--max-time 1h")
    assert stopped.exit_code == 0 and stopped.stop_text == "--max-time 1h reached"


def test_summary_json_names_undecodable_files_in_valid_utf8():
    name = Path(os.fsdecode(b"caf\xe9.png"))
    record = FixSummary(results=[FileResult(name, None, "failed", "bad")]).to_dict()
    text = json.dumps(record, ensure_ascii=False)
    text.encode("utf-8")
    assert json.loads(text)["files"][0]["source"] == "caf\\xe9.png"


# --- a tree that changes under the run (issue 27) -------------------------------------------


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


def test_a_job_marked_replace_claims_an_existing_output_without_overwrite(tmp_path):
    """`facefix watch` redoing its own output (an input rewritten by its tool) replaces it;
    any other job leaves an existing output alone."""
    from facefix_cli.pipeline.file import begin_file

    source, output = tmp_path / "a.png", tmp_path / "a.fixed.png"
    source.write_bytes(b"x")
    output.write_bytes(b"earlier")
    settings = RunSettings(weights_dir=tmp_path)
    kept = begin_file(Job(source, output), settings)
    assert isinstance(kept, FileResult) and kept.status is Status.SKIPPED
    claimed = begin_file(Job(source, output, replace=True), settings)
    assert not isinstance(claimed, FileResult)
    claimed[0].release()
    assert output.read_bytes() == b"earlier"  # claimed, not yet written
