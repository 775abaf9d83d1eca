"""pipeline.file and pipeline.results: the one place exceptions are classified (environment
fault, file problem, crash, pass-through), exit codes, and the summary's JSON."""

from __future__ import annotations

import errno
import json
import os
import zlib
from pathlib import Path

import cv2
import pytest
import torch

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
from facefix_cli.io.discover import Job
from facefix_cli.pipeline.file import failure_result
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
