"""Input types: extension aliases (`jpg` is `.jpeg` too) and images of types not asked for,
which the walk reports instead of ignoring (issue 9, item 1)."""

from __future__ import annotations

import shutil

from helpers import discover
from metadata_fixtures import METADATA_FIXTURES

from facefix_cli.io.discover import Rejected


def test_jpg_means_jpeg_too_and_other_types_are_reported(tmp_path):
    shutil.copy(METADATA_FIXTURES / "a1111_usercomment.jpeg", tmp_path / "a.jpeg")
    shutil.copy(METADATA_FIXTURES / "a1111_usercomment.jpeg", tmp_path / "b.JPG")
    shutil.copy(METADATA_FIXTURES / "a1111_docstring.png", tmp_path / "c.png")
    shutil.copy(METADATA_FIXTURES / "comfy_flux_exif.webp", tmp_path / "d.webp")
    (tmp_path / "notes.txt").write_text("not an image")

    skipped: list[Rejected] = []
    jobs, rejected = discover([tmp_path], extensions=("png", "jpg"), skipped=skipped)
    assert [j.source.name for j in jobs] == ["a.jpeg", "b.JPG", "c.png"]
    assert rejected == []
    assert [(r.path.name, r.reason) for r in skipped] == [("d.webp", ".webp is not in --ext")]

    skipped = []
    jobs, _ = discover([tmp_path], skipped=skipped)  # png only, the default
    assert [j.source.name for j in jobs] == ["c.png"]
    assert [r.path.name for r in skipped] == ["a.jpeg", "b.JPG", "d.webp"]

    jobs, _ = discover([tmp_path], extensions=("jpeg",))
    assert [j.source.name for j in jobs] == ["a.jpeg", "b.JPG"]
