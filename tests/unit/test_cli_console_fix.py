"""What a cron log and a terminal show of a run (cli.console.fix): the start line before the
walk, a bar that counts the files to do, a dry run's count, skipped files counted by reason."""

from __future__ import annotations

import io
import re
import time
from pathlib import Path

from facefix_cli.cli.console import PlainFixEvents, RichFixEvents, summary_line
from facefix_cli.cli.console.watch import PlainWatchEvents
from facefix_cli.io.discover import Job
from facefix_cli.pipeline.results import FileResult, FixSummary, RunStart, Status

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d ")


def test_the_log_begins_before_the_walk_and_counts_after_it():
    stream = io.StringIO()
    events = PlainFixEvents(stream=stream)
    events.walk_started("upscale x2")
    events.run_started(RunStart("cpu", "upscale x2", 40, 3, 37, 0))
    lines = stream.getvalue().splitlines()
    assert all(ISO.match(line) for line in lines)
    assert lines[0].endswith(" fix: upscale x2; finding images")
    assert lines[1].endswith(" found 40, to do 3, skipped 37, failed 0; device cpu")


def test_a_log_counts_the_files_found_and_a_watch_the_files_seen_so_far(tmp_path):
    fixed = FileResult(tmp_path / "a.png", tmp_path / "a.fixed.png", Status.FIXED)
    failed = FileResult(tmp_path / "b.png", None, Status.FAILED, "truncated")
    stream = io.StringIO()
    events = PlainFixEvents(stream=stream)
    events.run_started(RunStart("cpu", "upscale x2", 3, 1, 1, 1))
    events.file_finished(failed)
    events.file_finished(fixed)
    assert [line.split(" ", 2)[1] for line in stream.getvalue().splitlines()[1:]] == [
        "[1/3]",
        "[2/3]",
    ]
    stream = io.StringIO()
    watch = PlainWatchEvents(stream=stream)
    watch.run_started(RunStart("cpu", "upscale x2", 5, 4, 0, 1))  # 4 to do, not yet complete
    watch.seen(1)
    watch.file_finished(failed)
    watch.seen(2)
    watch.file_finished(fixed)
    assert [line.split(" ", 2)[1] for line in stream.getvalue().splitlines()[1:]] == [
        "[1/1]",
        "[2/2]",
    ]


def test_the_bar_counts_only_the_files_to_do(tmp_path):
    events = RichFixEvents()
    events.run_started(RunStart("cpu", "upscale x2", 5, 2, 3, 0))
    for name in ("a", "b", "c"):  # decided by the walk
        events.file_finished(FileResult(tmp_path / f"{name}.png", None, Status.SKIPPED, "done"))
    task = events.progress.tasks[0]
    assert (task.completed, task.total) == (0, 2)
    events.file_finished(FileResult(tmp_path / "d.png", tmp_path / "d.fixed.png", Status.FIXED))
    assert events.progress.tasks[0].completed == 1


def test_the_progress_bar_says_what_the_run_waits_for(tmp_path):
    """Walking the tree, then loading networks (while files already decode ahead), then the
    current file: the bar never sits at 0/N with nothing said."""
    events = RichFixEvents()
    current = lambda: events.progress.tasks[0].fields["stage"]  # noqa: E731
    assert current() == "finding images"
    events.run_started(RunStart("cpu", "upscale x2", 3, 3, 0, 0))
    events.waiting("loading 4 networks on cpu")
    events.file_started(Job(tmp_path / "a.png", tmp_path / "a.fixed.png"))
    assert current() == "loading 4 networks on cpu"  # the load is what holds the run
    events.waiting(None)
    events.file_started(Job(tmp_path / "b.png", tmp_path / "b.fixed.png"))
    assert current() == "fixing b.png"

    lines = io.StringIO()
    plain = PlainFixEvents(stream=lines)
    plain.waiting("loading 4 networks on cpu")
    plain.waiting(None)
    assert lines.getvalue().count("\n") == 1 and lines.getvalue().endswith(
        " loading 4 networks on cpu\n"
    )
    quiet = PlainFixEvents(quiet=True, stream=lines)
    quiet.waiting("loading 4 networks on cpu")
    assert lines.getvalue().count("\n") == 1


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


# -- issue #30: say why, a display that is alive, cron manners ---------------------------------


def test_the_summary_says_why_files_were_skipped_with_counts():
    done = "output exists (use --overwrite)"
    one_reason = FixSummary(
        results=[FileResult(Path(f"{n}.png"), None, Status.SKIPPED, done) for n in "abc"]
    )
    assert summary_line(one_reason).endswith("; skipped 3: output exists (use --overwrite)")
    mixed = FixSummary(
        results=[
            *one_reason.results,
            FileResult(Path("e.webp"), None, Status.SKIPPED, ".webp is not in --ext"),
        ]
    )
    assert summary_line(mixed).endswith(
        "; skipped 4: 3 output exists (use --overwrite), 1 .webp is not in --ext"
    )
    assert "; skipped" not in summary_line(FixSummary())


def test_the_terminal_summary_names_the_skip_reasons(capsys):
    from facefix_cli.cli.console import print_summary_table

    summary = FixSummary(
        results=[FileResult(Path("a.png"), None, Status.SKIPPED, "output exists (use --overwrite)")]
    )
    print_summary_table(summary)
    assert "skipped 1: output exists (use --overwrite)" in capsys.readouterr().err


def test_one_live_display_holds_the_fix_bar_and_the_download_bars(tmp_path):
    """Two live displays on one terminal erase each other's lines (the bar blank 39 % of the
    time): the download bars are shown by the fix display's own Live."""
    from facefix_cli.cli.console import fix_display

    with fix_display(True) as (events, downloads):
        assert isinstance(events, RichFixEvents)
        assert events.live.is_started
        assert not downloads.progress.live.is_started  # type: ignore[attr-defined]
        assert downloads.progress.live.console is events.live.console  # type: ignore[attr-defined]
        assert downloads.progress in events.group.renderables  # type: ignore[attr-defined]
    assert not events.live.is_started


def test_the_display_is_alive_spinner_elapsed_and_the_stage_counted_live(monkeypatch, tmp_path):
    from rich.progress import SpinnerColumn, TimeElapsedColumn

    events = RichFixEvents()
    kinds = {type(column) for column in events.progress.columns}
    assert SpinnerColumn in kinds and TimeElapsedColumn in kinds
    events.run_started(RunStart("cpu", "x2", 1, 1, 0, 0))
    # The load's text said how long it had run when made: the display shows its own count.
    events.waiting("loading realesrgan-x2plus on cpu (started 12.0s ago)")
    task = events.progress.tasks[0]
    assert task.fields["stage"] == "loading realesrgan-x2plus on cpu"
    stage_column = events.progress.columns[-1]
    shown = str(stage_column.render(task))  # type: ignore[arg-type]
    assert re.fullmatch(r"loading realesrgan-x2plus on cpu \(1[2-9]s\)", shown)
    events.file_started(Job(tmp_path / "a.png", tmp_path / "a.fixed.png"))
    events.waiting(None)
    assert events.progress.tasks[0].fields["stage"] == "fixing a.png"


def test_weight_warnings_are_one_line_and_none_with_quiet(tmp_path):
    from facefix_cli.weights.digests import WeightsNotice
    from facefix_cli.weights.registry import get_model

    notices = [
        WeightsNotice(
            tmp_path / "RealESRGAN_x2plus.pth", "ab" * 32, get_model("realesrgan-x2plus"), 1
        ),
        WeightsNotice(tmp_path / "GFPGANv1.4.pth", "cd" * 32, get_model("gfpgan-1.4"), 2),
    ]
    done = FileResult(tmp_path / "a.png", tmp_path / "a.fixed.png", Status.FIXED)
    stream = io.StringIO()
    events = PlainFixEvents(stream=stream)
    for notice in notices:
        events.weights_notice(notice)
    events.file_finished(done)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and lines[0].endswith(
        " warning: 2 weight files are not the released ones (RealESRGAN_x2plus.pth, "
        "GFPGANv1.4.pth); outputs record their own SHA-256 (facefix models --verify)"
    )
    quiet = io.StringIO()
    events = PlainFixEvents(quiet=True, stream=quiet)
    for notice in notices:
        events.weights_notice(notice)
    events.file_finished(done)
    assert quiet.getvalue() == ""


def test_a_log_repeats_a_weight_warning_once_a_day_at_most(tmp_path):
    """Issue #30: a cron job every 15 minutes logged the same "not the released" warning 96
    times a day; the sidecar now remembers when a log last said it."""
    from facefix_cli.weights import digests
    from facefix_cli.weights.registry import get_model

    model = get_model("realesrgan-x2plus")
    (tmp_path / model.file).write_bytes(b"a fine-tune, not the release")
    done = FileResult(tmp_path / "a.png", tmp_path / "a.fixed.png", Status.FIXED)

    def logged() -> str:
        stream = io.StringIO()
        events = PlainFixEvents(stream=stream)
        for notice in digests.compare([model], tmp_path)[1]:
            events.weights_notice(notice)
        events.file_finished(done)
        return "".join(line for line in stream.getvalue().splitlines() if "warning:" in line)

    assert "is not the released realesrgan-x2plus" in logged()
    assert logged() == ""  # the next run, minutes later
    digests.remember_warned(tmp_path / model.file, time.time() - 25 * 3600)
    assert "is not the released realesrgan-x2plus" in logged()  # a day later
    assert digests.cached_sha256(tmp_path / model.file) is not None  # the digest kept too


def test_an_idle_run_logs_no_count_line():
    stream = io.StringIO()
    events = PlainFixEvents(stream=stream)
    events.run_started(RunStart("none", "upscale x2", 40, 0, 40, 0))
    assert stream.getvalue() == ""  # the summary line says it


def test_an_idle_summary_is_idle_and_a_failure_is_not(tmp_path):
    skipped = FileResult(tmp_path / "a.png", None, Status.SKIPPED, "output exists")
    assert FixSummary(results=[skipped]).idle and FixSummary().idle
    failed = FileResult(tmp_path / "b.png", None, Status.FAILED, "truncated")
    assert not FixSummary(results=[skipped, failed]).idle
    assert not FixSummary(results=[skipped], not_started=1).idle
