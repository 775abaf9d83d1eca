"""report.build: the report built from outputs (cards, face crops, links, originals found by
name and digest), its folder, its modes, and the links it does not follow."""

from __future__ import annotations

import os
import stat
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest
from helpers import fixed_output_with_faces
from PIL import Image

from facefix_cli.errors import ReportError
from facefix_cli.metadata import chunks_from_bytes, parse_generation
from facefix_cli.report import thumbnails
from facefix_cli.report.build import (
    OutputEntry,
    ReportInputs,
    index_originals,
    inputs_from_paths,
    locate_original,
    thumbnail_folder,
    write_report,
)


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.src: list[str] = []
        self.href: list[str] = []

    def handle_starttag(self, tag, attrs):
        values = dict(attrs)
        if tag == "img":
            self.src.append(values["src"])
        if tag == "a":
            self.href.append(values["href"])


def test_report_of_outputs_has_a_card_per_output_faces_cropped_and_relative_links(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    two = fixed_output_with_faces(
        images, "two", "two astronauts", [(4, 4, 30, 30), (44, 20, 76, 60)]
    )
    none = fixed_output_with_faces(images, "none", "an empty room", [])
    (images / "broken.fixed.png").write_bytes(b"not a png")
    report = tmp_path / "out" / "run.html"
    report.parent.mkdir()
    result = write_report(report, inputs_from_paths([images, tmp_path / "missing"]))

    assert result.images == 2
    assert sorted(Path(f.path).name for f in result.failures) == ["broken.fixed.png", "missing"]
    links = _Links()
    links.feed(report.read_text())
    # Every link is relative and resolves from the page's folder.
    for url in links.src + links.href:
        assert not url.startswith(("/", "file:", "http")), url
        assert (report.parent / unquote(url)).is_file(), url
    assert {unquote(h) for h in links.href} == {f"../images/{p.name}" for p in (none, two)}
    # Per image: before and after, same size; per face: before and after, same size.
    folder = thumbnail_folder(report)
    sizes = {p.name: Image.open(p).size for p in folder.iterdir()}
    assert len(sizes) == 2 * 2 + 2 * 2
    assert sizes["00002-two-before.webp"] == sizes["00002-two-after.webp"] == (80, 64)
    for number in (1, 2):
        before, after = (sizes[f"00002-two-face{number}-{s}.webp"] for s in ("before", "after"))
        assert before == after and max(after) == thumbnails.FACE_SIDE
    # The "after" crop is the output's box (inverted there by the helper); the "before" crop is
    # the same region of the original: they differ, and the after crop is mostly the inverse.
    after_crop = np.asarray(Image.open(folder / "00002-two-face1-after.webp"), np.float32)
    before_crop = np.asarray(Image.open(folder / "00002-two-face1-before.webp"), np.float32)
    centre = (slice(60, 130), slice(60, 130))  # inside the box, away from the margin
    assert np.abs(after_crop[centre] + before_crop[centre] - 255).mean() < 20
    page = report.read_text()
    assert page.count('data-faces="2"') == 1 and page.count('data-faces="0"') == 3
    assert "two astronauts" in page and "gfpgan 1.4: strength 0.8, 2 faces" in page


def test_a_second_report_at_the_same_path_drops_the_old_thumbnails(tmp_path):
    fixed_output_with_faces(tmp_path, "a", "a", [(2, 2, 20, 20)])
    fixed_output_with_faces(tmp_path, "b", "b", [])
    report = tmp_path / "r.html"
    write_report(report, inputs_from_paths([tmp_path]))
    assert len(list(thumbnail_folder(report).iterdir())) == 6
    write_report(report, ReportInputs([OutputEntry(tmp_path / "b.fixed.png")]))
    assert sorted(p.name for p in thumbnail_folder(report).iterdir()) == [
        "00000-b-after.webp",
        "00000-b-before.webp",
    ]


def test_a_missing_original_still_shows_the_output_and_says_so(tmp_path):
    output = fixed_output_with_faces(tmp_path, "gone", "p", [(2, 2, 20, 20)])
    (tmp_path / "gone.png").unlink()
    report = tmp_path / "r.html"
    assert write_report(report, inputs_from_paths([output])).images == 1
    page = report.read_text()
    assert "original not found" in page and 'class="before"' not in page


def test_a_report_into_a_missing_folder_is_a_setup_error(tmp_path):
    with pytest.raises(ReportError, match="no such folder"):
        write_report(tmp_path / "nope" / "r.html", ReportInputs())


def test_originals_in_another_tree_are_found_by_name_and_sha256(tmp_path):
    """`fix --output-dir` leaves outputs apart from their originals: `--originals` finds them."""
    inputs, outputs = tmp_path / "renders", tmp_path / "fixed"
    (inputs / "day1").mkdir(parents=True)
    outputs.mkdir()
    output = fixed_output_with_faces(outputs, "a", "a lighthouse", [(2, 2, 20, 20)])
    original = outputs / "a.png"
    moved = inputs / "day1" / "a.png"
    original.rename(moved)
    # Another file of the same name with other bytes, in a folder walked first.
    (inputs / "day0").mkdir()
    (inputs / "day0" / "a.png").write_bytes(b"another render called a.png")
    (inputs / ".cache").mkdir()  # hidden folders are not searched
    (inputs / ".cache" / "a.png").write_bytes(moved.read_bytes())

    index = index_originals([inputs])
    assert index["a.png"] == [inputs / "day0" / "a.png", moved]
    record = parse_generation(chunks_from_bytes(output.read_bytes())).facefix[-1]["source"]
    assert locate_original(output, "a.png", record["sha256"], index) == moved  # by SHA-256
    assert locate_original(output, "a.png", None, {}) == outputs / "a.png"  # default: beside
    assert locate_original(output, "a.png", None, {"a.png": [moved]}) == moved  # the only one

    report = tmp_path / "r.html"
    without = write_report(report, inputs_from_paths([outputs]))
    assert without.images == 1 and "original not found" in report.read_text()
    found = inputs_from_paths([outputs])
    found.originals = index
    write_report(report, found)
    page = report.read_text()
    assert "original not found" not in page and 'class="before"' in page
    assert "has changed" not in page
    with pytest.raises(ReportError, match="--originals: no such folder"):
        index_originals([tmp_path / "nowhere"])


# --- issue #30, finding 9: originals of --output-dir outputs, counts and labels ---------------


def test_an_output_dir_output_finds_its_original_where_its_record_says(tmp_path):
    renders, fixed = tmp_path / "renders" / "day1", tmp_path / "fixed" / "day1"
    renders.mkdir(parents=True)
    fixed.mkdir(parents=True)
    output = fixed_output_with_faces(
        renders, "a", "a lighthouse", [(2, 2, 20, 20)], output_dir=fixed
    )
    source = parse_generation(chunks_from_bytes(output.read_bytes())).facefix[-1]["source"]
    assert source["path"] == "../../renders/day1/a.png"
    report = tmp_path / "r.html"
    result = write_report(report, inputs_from_paths([tmp_path / "fixed"]))  # no --originals
    assert (result.images, result.without_original) == (1, 0)
    assert 'class="before"' in report.read_text()


def test_a_report_says_on_the_terminal_and_the_page_why_originals_are_missing(tmp_path):
    from facefix_cli.cli.report import report_line

    renders, fixed = tmp_path / "renders", tmp_path / "fixed"
    renders.mkdir()
    fixed.mkdir()
    output = fixed_output_with_faces(
        renders, "a", "a lighthouse", [(2, 2, 20, 20)], output_dir=fixed
    )
    (renders / "a.png").unlink()
    report = tmp_path / "r.html"
    result = write_report(report, inputs_from_paths([output]))
    assert result.without_original == 1
    line = report_line(result)
    assert "(1 image;" in line  # not "1 images"
    assert "1 without the original" in line and "--originals DIR" in line
    page = report.read_text()
    assert f"original not found: {renders / 'a.png'} (outputs written elsewhere" in page


def test_faces_are_counted_from_the_record_and_keep_their_numbers(tmp_path):
    # Two restored faces; the first one's box lies outside the image (a record the page
    # cannot crop): the page still counts 2 restored faces, and the one it shows is face 2.
    output = fixed_output_with_faces(tmp_path, "two", "two", [(200, 200, 220, 220), (4, 4, 30, 30)])
    report = tmp_path / "r.html"
    write_report(report, inputs_from_paths([output]))
    page = report.read_text()
    assert "<dt>faces restored</dt><dd>2</dd>" in page
    assert "face 1: face box" in page  # the note names the face it could not show
    assert "face 2 · score" in page and "face 1 · score" not in page


def test_options_from_files_group_images_by_settings_without_parsing_text(tmp_path):
    fixed_output_with_faces(tmp_path, "a", "a", [(2, 2, 20, 20)])
    fixed_output_with_faces(tmp_path, "b", "b", [(2, 2, 20, 20), (30, 30, 50, 50)])
    fixed_output_with_faces(tmp_path, "c", "c", [])
    report = tmp_path / "r.html"
    write_report(report, inputs_from_paths([tmp_path]))
    page = report.read_text()
    assert "<th>3 images</th><td>gfpgan 1.4: strength 0.8 (GFPGANv1.4.pth)</td>" in page


def test_the_report_shows_the_tool_once_and_the_same_rows_as_info(tmp_path):
    from facefix_cli.metadata import Generation

    record = Generation(tool="Fooocus", tool_version="Fooocus v2.5.5", seed=3)
    assert record.rows()[0] == ("Tool", "Fooocus v2.5.5")  # not "Fooocus Fooocus v2.5.5"
    output = fixed_output_with_faces(tmp_path, "a", "a lighthouse", [])
    report = tmp_path / "r.html"
    write_report(report, inputs_from_paths([output]))
    info_rows = parse_generation(chunks_from_bytes(output.read_bytes())).rows((80, 64))
    page = report.read_text()
    for label, value in info_rows:
        assert f"<dt>{label}</dt><dd>{value}</dd>" in page


def test_restore_first_faces_are_shown_in_the_output_pixels():
    from facefix_cli.operations import Operation, RecordedFace
    from facefix_cli.report.build import _detections

    face = RecordedFace.rounded((10, 20, 30, 40), 0.9, [(15, 25)])
    operations = [
        Operation(type="gfpgan", strength=1, faces=1, detections=(face,)),
        Operation(type="esrgan", strength=1, scale=2),
    ]
    (shown,) = _detections(operations)
    assert shown.box == (20.5, 40.5, 60.5, 80.5)
    assert shown.landmarks == ((30.5, 50.5),)
    assert _detections(operations[::-1]) == [face]  # upscale first: already the output's


def test_the_report_is_no_more_readable_than_the_least_readable_image_it_shows(tmp_path):
    fixed_output_with_faces(tmp_path, "a", "a", [])
    fixed_output_with_faces(tmp_path, "b", "b", [])
    (tmp_path / "b.png").chmod(0o640)  # a private original
    report = tmp_path / "r.html"
    write_report(report, inputs_from_paths([tmp_path]))
    assert stat.S_IMODE(report.stat().st_mode) == 0o640
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in thumbnail_folder(report).iterdir()}
    assert modes == {
        "00000-a-after.webp": 0o644,
        "00000-a-before.webp": 0o644,
        "00001-b-after.webp": 0o640,
        "00001-b-before.webp": 0o640,
    }


@pytest.mark.skipif(os.geteuid() != 0, reason="gives a link to another uid, which needs root")
def test_another_users_link_at_the_thumbnail_folder_is_not_followed(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    report = tmp_path / "r.html"
    os.symlink(elsewhere, thumbnail_folder(report))
    os.chown(thumbnail_folder(report), 4242, 4242, follow_symlinks=False)
    with pytest.raises(ReportError, match="not followed"):
        write_report(report, ReportInputs())
    assert list(elsewhere.iterdir()) == [] and not report.exists()
