"""What one run leaves for the next (io.marks): inputs without a face under restoration alone,
inputs that failed run after run; created safely, read from the walk's listing only."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from facefix_cli.io import marks
from facefix_cli.io.discover import FACELESS_REASON, Kind, scan, set_aside_reason

PNG = b"\x89PNG\r\n\x1a\n" + bytes(16)


def image(path: Path, mode: int = 0o644) -> Path:
    path.write_bytes(PNG)
    path.chmod(mode)
    return path


def hidden(folder: Path) -> frozenset[str]:
    return frozenset(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_failures_count_up_to_the_limit_and_a_fix_forgets_them(tmp_path):
    source = image(tmp_path / "a.png")
    output = tmp_path / "a.fixed.png"
    for before in range(marks.FAIL_LIMIT):
        assert marks.failures(hidden(tmp_path), output.name) == before
        marks.record_failure(output, source, before, "truncated PNG")
    assert marks.failures(hidden(tmp_path), output.name) == marks.FAIL_LIMIT
    assert hidden(tmp_path) == {f".a.fixed.png.failed{marks.FAIL_LIMIT}"}  # one mark, the count
    text = (tmp_path / f".a.fixed.png.failed{marks.FAIL_LIMIT}").read_text()
    assert "truncated PNG" in text and "--retry-failed" in text
    marks.forget(output)
    assert hidden(tmp_path) == frozenset()


def test_a_mark_follows_no_link_replaces_nothing_and_is_no_more_readable_than_its_input(
    tmp_path,
):
    source = image(tmp_path / "a.png", 0o600)
    output = tmp_path / "a.fixed.png"
    victim = tmp_path / "victim"
    victim.write_text("keep")
    os.symlink(victim, tmp_path / ".a.fixed.png.noface")
    marks.remember_faceless(output, source)  # silently not remembered: never written through
    assert victim.read_text() == "keep"
    other = image(tmp_path / "b.png", 0o640)
    marks.remember_faceless(tmp_path / "b.fixed.png", other)
    mode = stat.S_IMODE((tmp_path / ".b.fixed.png.noface").stat().st_mode)
    assert mode & ~0o640 == 0  # never more readable than the input


def test_a_long_name_gets_a_mark_that_fits():
    name = "x" * 250 + ".fixed.png"
    assert len(marks.mark_name(name, marks.FAILED) + "3") <= 255


@pytest.mark.parametrize("named", [False, True])
def test_the_walk_skips_set_aside_and_faceless_inputs_from_the_listing(tmp_path, named):
    a, b, c = (image(tmp_path / f"{n}.png") for n in "abc")
    marks.remember_faceless(tmp_path / "a.fixed.png", a)
    for before in range(marks.FAIL_LIMIT):
        marks.record_failure(tmp_path / "b.fixed.png", b, before, "bad")
    marks.record_failure(tmp_path / "c.fixed.png", c, 0, "bad")  # once: tried again
    paths = [a, b, c] if named else [tmp_path]

    found = {f.source.name: f for f in scan(paths, skip_faceless=True)}
    assert (found["a.png"].kind, found["a.png"].reason) == (Kind.REMEMBERED, FACELESS_REASON)
    assert (found["b.png"].kind, found["b.png"].reason) == (
        Kind.REMEMBERED,
        set_aside_reason(marks.FAIL_LIMIT),
    )
    assert (found["c.png"].kind, found["c.png"].failures) == (Kind.TODO, 1)

    # an upscale makes an output whatever the faces; --retry-failed; --overwrite redoes all
    assert {f.source.name: f.kind for f in scan(paths)}["a.png"] is Kind.TODO
    retried = {f.source.name: f for f in scan(paths, skip_faceless=True, retry_failed=True)}
    assert (retried["b.png"].kind, retried["b.png"].failures) == (Kind.TODO, marks.FAIL_LIMIT)
    assert {f.kind for f in scan(paths, skip_faceless=True, overwrite=True)} == {Kind.TODO}
