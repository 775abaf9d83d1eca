"""io.discover's walk against hostile trees: link loops, long names, unreadable folders, and
several folders into one --output-dir."""

from __future__ import annotations

import errno
import os
from pathlib import Path

from helpers import discover
from PIL import Image


def save(path: Path) -> Path:
    Image.new("RGB", (8, 8), (10, 20, 30)).save(path, "PNG")
    return path


def test_walk_reports_symlink_loops_and_long_names_and_goes_on(tmp_path):
    save(tmp_path / "a.png")
    os.symlink(tmp_path / "loop2.png", tmp_path / "loop1.png")
    os.symlink(tmp_path / "loop1.png", tmp_path / "loop2.png")
    save(tmp_path / ("n" * 246 + ".png"))
    save(tmp_path / "z.png")
    jobs, rejected = discover([tmp_path])
    names = [j.source.name for j in jobs]
    assert names[0] == "a.png" and names[-1] == "z.png" and len(names) == 3
    assert sorted(r.path.name for r in rejected) == ["loop1.png", "loop2.png"]
    assert all("Too many levels of symbolic links" in r.reason for r in rejected)


def test_walk_reports_an_unreadable_folder(tmp_path, monkeypatch):
    save(tmp_path / "a.png")
    (tmp_path / "locked").mkdir()
    save(tmp_path / "locked" / "b.png")
    real = os.scandir

    def scandir(path):
        if Path(path).name == "locked":
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    jobs, rejected = discover([tmp_path])
    assert [j.source.name for j in jobs] == ["a.png"]
    assert [(r.path.name, r.reason) for r in rejected] == [
        ("locked", "cannot read folder: Permission denied")
    ]


def test_two_folders_into_one_output_dir_get_a_folder_each(tmp_path):
    for side in ("left", "right"):
        (tmp_path / side).mkdir()
        save(tmp_path / side / "a.png")
    out = tmp_path / "out"
    jobs, rejected = discover([tmp_path / "left", tmp_path / "right"], output_dir=out)
    assert [j.output for j in jobs] == [out / "left" / "a.fixed.png", out / "right" / "a.fixed.png"]
    assert rejected == []
    jobs, rejected = discover(
        [tmp_path / "left" / "a.png", tmp_path / "right" / "a.png"], output_dir=out
    )
    assert [j.output for j in jobs] == [
        out / "a.fixed.png"
    ]  # the second is refused, not overwritten
    assert "is already" in rejected[0].reason and rejected[0].path.parent.name == "right"
