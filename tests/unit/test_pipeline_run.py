"""The batch job's own rules (pipeline.run), on runs that load no network: a missing path is a
usage error, an input that fails run after run is set aside."""

from __future__ import annotations

from pathlib import Path

import pytest

from facefix_cli.errors import SetupError
from facefix_cli.io import marks
from facefix_cli.pipeline import FileResult, RunSettings, Status, fix
from facefix_cli.pipeline.run import remember_outcomes
from facefix_cli.recipe import Recipe


def test_a_missing_path_is_a_setup_error_before_anything_is_done(tmp_path):
    (tmp_path / "a.png").write_bytes(b"not a png")
    with pytest.raises(SetupError, match="no such file or folder: .*typo"):
        fix([tmp_path, tmp_path / "typo"], Recipe(scale=2), RunSettings(weights_dir=tmp_path))
    assert not list(tmp_path.glob(".*"))  # not even a failure mark


def test_an_input_failing_every_run_is_set_aside_then_retried_when_asked(tmp_path):
    folder = tmp_path / "renders"
    folder.mkdir()
    (folder / "broken.png").write_bytes(b"this is not a PNG at all")
    recipe, settings = Recipe(scale=2), RunSettings(weights_dir=tmp_path / "w")

    def status() -> tuple[Status, str, int]:
        summary = fix([folder], recipe, settings)
        (result,) = summary.results
        return result.status, result.reason, summary.exit_code

    for _ in range(marks.FAIL_LIMIT):
        assert status() == (Status.FAILED, "not an image of that type (bad signature)", 1)
    assert status() == (
        Status.SKIPPED,
        f"failed {marks.FAIL_LIMIT} runs in a row, set aside (use --retry-failed)",
        0,
    )
    retry = RunSettings(weights_dir=tmp_path / "w", retry_failed=True)
    (again,) = fix([folder], recipe, retry).results
    assert again.status is Status.FAILED
    assert not (folder / "broken.fixed.png").exists()
    assert [p.name for p in folder.iterdir() if p.name.startswith(".")] == [
        f".broken.fixed.png.failed{marks.FAIL_LIMIT}"
    ]


def test_a_dry_run_leaves_no_mark(tmp_path):
    (tmp_path / "broken.png").write_bytes(b"nope")
    settings = RunSettings(weights_dir=tmp_path / "w", dry_run=True)
    fix([tmp_path], Recipe(scale=2), settings)
    assert sorted(p.name for p in Path(tmp_path).iterdir()) == ["broken.png"]


def test_an_input_failing_under_output_dir_is_set_aside_too(tmp_path):
    """Issue #30: with --output-dir a broken input's output folder was never made (no output),
    so its failure mark could not be written and it failed every run forever."""
    folder = tmp_path / "renders" / "day1"
    folder.mkdir(parents=True)
    (folder / "broken.png").write_bytes(b"this is not a PNG at all")
    out = tmp_path / "out"
    settings = RunSettings(weights_dir=tmp_path / "w", output_dir=out)
    for _ in range(marks.FAIL_LIMIT):
        (result,) = fix([tmp_path / "renders"], Recipe(scale=2), settings).results
        assert result.status is Status.FAILED
    (result,) = fix([tmp_path / "renders"], Recipe(scale=2), settings).results
    assert (result.status, result.reason) == (
        Status.SKIPPED,
        f"failed {marks.FAIL_LIMIT} runs in a row, set aside (use --retry-failed)",
    )
    assert [p.name for p in (out / "day1").iterdir()] == [
        f".broken.fixed.png.failed{marks.FAIL_LIMIT}"
    ]
    assert [p.name for p in folder.iterdir()] == ["broken.png"]  # nothing beside the input


def test_an_output_written_removes_every_mark_of_its_input(tmp_path):
    """Issue #30: a `.noface` mark left by restoration alone stayed after a later run (with an
    upscale) wrote the output, so the mark lied about the folder."""
    source, output = tmp_path / "a.png", tmp_path / "a.fixed.png"
    source.write_bytes(b"x")
    marks.remember_faceless(output, source)
    marks.record_failure(output, source, 0, "once")
    output.write_bytes(b"the output")
    remember_outcomes([FileResult(source, output, Status.FIXED, faces=0)], {source: (output, 0)})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.fixed.png", "a.png"]
