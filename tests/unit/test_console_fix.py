"""What a cron log and a terminal show of a run (cli.console.fix): the start line before the
walk, a bar that counts the files to do, a dry run's count, skipped files counted by reason."""

from __future__ import annotations

import io
import re
from pathlib import Path

from facefix_cli.cli.console import PlainFixEvents, RichFixEvents, summary_line
from facefix_cli.pipeline.results import FileResult, FixSummary, RunStart, Status

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d ")


def test_the_log_begins_before_the_walk_and_counts_after_it():
    stream = io.StringIO()
    events = PlainFixEvents(stream=stream)
    events.begun("upscale x2")
    events.run_started(RunStart("cpu", "upscale x2", 40, 3, 37, 0))
    lines = stream.getvalue().splitlines()
    assert all(ISO.match(line) for line in lines)
    assert lines[0].endswith(" fix: upscale x2; finding images")
    assert lines[1].endswith(" found 40, to do 3, skipped 37, failed 0; device cpu")


def test_the_bar_counts_only_the_files_to_do(tmp_path):
    events = RichFixEvents()
    events.run_started(RunStart("cpu", "upscale x2", 5, 2, 3, 0))
    events.started(5)
    for name in ("a", "b", "c"):  # decided by the walk
        events.file_finished(FileResult(tmp_path / f"{name}.png", None, Status.SKIPPED, "done"))
    task = events.progress.tasks[0]
    assert (task.completed, task.total) == (0, 2)
    events.file_finished(FileResult(tmp_path / "d.png", tmp_path / "d.fixed.png", Status.FIXED))
    assert events.progress.tasks[0].completed == 1


def test_a_dry_run_says_how_many_it_would_do_and_skips_are_counted_by_reason():
    summary = FixSummary(
        results=[
            FileResult(Path("a.png"), Path("a.fixed.png"), Status.PLANNED),
            FileResult(Path("b.png"), Path("b.fixed.png"), Status.PLANNED),
            FileResult(Path("c.png"), None, Status.SKIPPED, "output exists (use --overwrite)"),
            FileResult(Path("d.png"), None, Status.SKIPPED, "output exists (use --overwrite)"),
            FileResult(Path("e.webp"), None, Status.SKIPPED, ".webp is not in --ext"),
        ]
    )
    assert summary_line(summary).startswith("would do 2, processed 0, skipped 3,")
    record = summary.to_dict(list_skipped=False)
    assert record["skipped_reasons"] == {
        "output exists (use --overwrite)": 2,
        ".webp is not in --ext": 1,
    }
    assert [f["source"] for f in record["files"]] == ["a.png", "b.png"]
    assert len(summary.to_dict()["files"]) == 5
