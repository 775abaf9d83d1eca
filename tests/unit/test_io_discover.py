"""io.discover: the walk against hostile trees (link loops, long names, unreadable folders,
several folders into one --output-dir); it decides before it pays (done files never opened,
each real folder walked once); input types (extension aliases, types not asked for)."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import pytest
from helpers import discover
from metadata_fixtures import METADATA_FIXTURES
from PIL import Image

from facefix_cli.io import discover as discover_module
from facefix_cli.io.discover import DONE_REASON, Kind, Rejected, scan


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


# -- The walk decides before it pays (io.discover.scan): done files are never opened,
# symlinked folders are walked once per real folder, loops are safe.
PNG = b"\x89PNG\r\n\x1a\n" + bytes(16)


def image(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(PNG)
    return path


def kinds(found) -> list[tuple[str, str]]:
    return [(f.kind.value, f.source.name) for f in found]


def test_done_files_are_decided_from_the_listing_without_opening_them(tmp_path, monkeypatch):
    for name in ("a", "b", "c"):
        image(tmp_path / f"{name}.png")
    image(tmp_path / "a.fixed.png")
    (tmp_path / "c.fixed.png").write_bytes(b"")
    opened: list[str] = []
    real = discover_module._has_format

    def spy(path: str, formats) -> bool:
        opened.append(os.path.basename(path))
        return real(path, formats)

    monkeypatch.setattr(discover_module, "_has_format", spy)
    found = list(scan([tmp_path]))
    assert kinds(found) == [("done", "a.png"), ("todo", "b.png"), ("done", "c.png")]
    assert found[0].reason == DONE_REASON and found[0].output == tmp_path / "a.fixed.png"
    assert opened == ["b.png"]  # only the file that will be worked on was sniffed
    assert kinds(scan([tmp_path], overwrite=True)) == [
        ("todo", n) for n in ("a.png", "b.png", "c.png")
    ]


def test_a_done_file_that_is_not_an_image_is_done_not_failed(tmp_path):
    (tmp_path / "x.png").write_bytes(b"GIF89a")  # never opened: its output is there
    image(tmp_path / "x.fixed.png")
    (tmp_path / "y.png").write_bytes(b"GIF89a")
    found = list(scan([tmp_path]))
    assert kinds(found) == [("done", "x.png"), ("rejected", "y.png")]
    assert "bad signature" in found[1].reason


def test_a_dangling_symlink_output_is_not_there(tmp_path):
    image(tmp_path / "a.png")
    os.symlink(tmp_path / "gone.png", tmp_path / "a.fixed.png")
    assert kinds(scan([tmp_path])) == [("todo", "a.png")]


def test_output_dir_outputs_are_looked_up_in_the_output_tree(tmp_path):
    image(tmp_path / "in" / "sub" / "a.png")
    image(tmp_path / "in" / "sub" / "b.png")
    image(tmp_path / "out" / "sub" / "a.fixed.png")
    found = list(scan([tmp_path / "in"], output_dir=tmp_path / "out"))
    assert kinds(found) == [("done", "a.png"), ("todo", "b.png")]
    assert found[1].output == tmp_path / "out" / "sub" / "b.fixed.png"


def test_symlinked_folders_are_walked_each_real_folder_once(tmp_path):
    image(tmp_path / "disk" / "renders" / "a.png")
    tree = tmp_path / "tree"
    tree.mkdir()
    image(tree / "b.png")
    os.symlink(tmp_path / "disk" / "renders", tree / "elsewhere")  # renders on another disk
    os.symlink(tmp_path / "disk" / "renders", tree / "same_again")  # a second link to it
    os.symlink(tree, tree / "elsewhere_loop")  # a loop back to the top
    found = list(scan([tree]))
    assert [f.source.relative_to(tree).as_posix() for f in found] == ["b.png", "elsewhere/a.png"]
    assert found[1].output == tree / "elsewhere" / "a.fixed.png"  # beside it, through the link
    assert all(f.kind is Kind.TODO for f in found)


def test_a_folder_named_twice_or_inside_another_is_walked_once(tmp_path):
    image(tmp_path / "sub" / "a.png")
    image(tmp_path / "b.png")
    found = list(scan([tmp_path / "sub", tmp_path, tmp_path / "sub"]))
    assert sorted(f.source.name for f in found) == ["a.png", "b.png"]


@pytest.mark.parametrize("recursive", [True, False])
def test_walk_order_is_sorted_with_sub_folders_in_place(tmp_path, recursive):
    for name in ("a.png", "m/b.png", "m/n/c.png", "z.png", "m/y.png"):
        image(tmp_path / name)
    found = [
        f.source.relative_to(tmp_path).as_posix() for f in scan([tmp_path], recursive=recursive)
    ]
    expected = ["a.png", "m/b.png", "m/n/c.png", "m/y.png", "z.png"]
    assert found == (expected if recursive else ["a.png", "z.png"])


def test_the_walk_names_the_output_folders_that_the_claim_sweep_looks_at(tmp_path):
    from facefix_cli.pipeline.run import plan
    from facefix_cli.pipeline.settings import RunSettings

    image(tmp_path / "in" / "a.png")
    image(tmp_path / "in" / "a.fixed.png")  # done beside it; to do with --output-dir
    image(tmp_path / "in" / "sub" / "b.png")
    (tmp_path / "in" / "other" / "c.jpg").parent.mkdir()
    (tmp_path / "in" / "other" / "c.jpg").write_bytes(b"\xff\xd8\xff" + bytes(16))
    (tmp_path / "in" / "bad" / "d.png").parent.mkdir()
    (tmp_path / "in" / "bad" / "d.png").write_bytes(b"GIF89a")  # rejected
    (tmp_path / "in" / ".a.fixed.png.123.tmp").write_bytes(b"")  # what a killed run left
    (tmp_path / "out" / "sub").mkdir(parents=True)
    (tmp_path / "out" / "sub" / ".b.fixed.png.claim").write_bytes(b"")
    in_hidden = frozenset({".a.fixed.png.123.tmp"})
    for out_dir, kinds_seen, expected in (
        (None, {"done", "todo", "other type", "rejected"}, {"in": in_hidden, "in/sub": set()}),
        (
            tmp_path / "out",
            {"todo", "other type", "rejected"},
            {"out": set(), "out/sub": {".b.fixed.png.claim"}},
        ),
    ):
        found = list(scan([tmp_path / "in"], output_dir=out_dir))
        assert {f.kind.value for f in found} == kinds_seen
        for f in found:
            if f.kind in (Kind.TODO, Kind.DONE):
                assert f.output is not None and f.folder == os.path.dirname(f.output)
            elif f.kind is Kind.REJECTED and f.output is not None:  # not an image: where its
                assert f.folder == os.path.dirname(f.output)  # failure mark goes (io.marks)
            else:
                assert f.folder == ""  # no output: nothing to sweep for it
        folders: dict[str, frozenset[str] | None] = {}
        settings = RunSettings(weights_dir=tmp_path / "w", output_dir=out_dir)
        plan([tmp_path / "in"], settings, None, folders)
        # each with the hidden names the walk saw there, so the sweep does not list it again
        assert folders == {str(tmp_path / name): hidden for name, hidden in expected.items()}


JPEG = b"\xff\xd8\xff\xe0" + bytes(16)


def test_done_means_done_in_the_format_asked_for(tmp_path):
    """A re-run in the same format skips what it wrote; a run in another format still works
    (its outputs have other names), and outputs of every format are never inputs."""
    image(tmp_path / "a.png")
    image(tmp_path / "b.png")
    image(tmp_path / "a.fixed.webp")  # written by an earlier `--format webp`
    image(tmp_path / "b.fixed.png")  # written by an earlier PNG run
    for output in ("c.fixed.jpg", "d.jpg.fixed.avif", "e.fixed.AVIF", "f.fixed.jpeg"):
        image(tmp_path / output)  # outputs of any format: never inputs
    webp = {f.source.name: f for f in scan([tmp_path], extensions=("png",), output_format="webp")}
    assert set(webp) == {"a.png", "b.png"}
    assert webp["a.png"].kind is Kind.DONE and webp["a.png"].output == tmp_path / "a.fixed.webp"
    assert webp["b.png"].kind is Kind.TODO and webp["b.png"].output == tmp_path / "b.fixed.webp"
    assert webp["b.png"].job.format.value == "webp"
    png = {f.source.name: f.kind for f in scan([tmp_path], extensions=("png",))}
    assert png == {"a.png": Kind.TODO, "b.png": Kind.DONE}


def test_same_writes_each_output_in_its_inputs_format(tmp_path):
    image(tmp_path / "a.png")
    (tmp_path / "b.jpg").write_bytes(JPEG)
    (tmp_path / "b.jpg.fixed.jpg").write_bytes(JPEG)
    found = {
        f.source.name: f for f in scan([tmp_path], extensions=("png", "jpg"), output_format="same")
    }
    assert found["a.png"].output == tmp_path / "a.fixed.png"
    assert found["a.png"].kind is Kind.TODO
    assert found["b.jpg"].kind is Kind.DONE
    assert found["b.jpg"].output == tmp_path / "b.jpg.fixed.jpg"


def test_an_output_named_on_the_command_line_is_refused(tmp_path):
    named = image(tmp_path / "x.fixed.webp")
    (found,) = scan([named], extensions=("png",))
    assert found.kind is Kind.REJECTED and "facefix output" in found.reason


# -- Input types: extension aliases (`jpg` is `.jpeg` too) and images of types not asked for,
# which the walk reports instead of ignoring (issue 9, item 1).
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
