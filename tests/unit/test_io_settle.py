"""io.settle: which appearing files are whole, and when a file being written is ready."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facefix_cli.io.settle import Settler, complete


def image_bytes(fmt: str, size: int = 24) -> bytes:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format=fmt)
    return out.getvalue()


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_complete_only_when_whole(tmp_path: Path, fmt: str) -> None:
    data = image_bytes(fmt)
    path = tmp_path / "a"
    for cut in (0, 5, 12, len(data) // 2, len(data) - 1):
        path.write_bytes(data[:cut])
        assert not complete(path), (fmt, cut)
    path.write_bytes(data)
    assert complete(path)


def test_complete_png_chunks_after_image_data(tmp_path: Path) -> None:
    """A PNG cut right after its image data (text chunks and IEND still to come) is not whole."""
    data = image_bytes("PNG")
    iend = data.rindex(b"IEND") - 4
    (tmp_path / "a.png").write_bytes(data[:iend])
    assert not complete(tmp_path / "a.png")
    assert not complete(tmp_path / "missing.png")
    (tmp_path / "text.png").write_bytes(b"not an image at all")
    assert not complete(tmp_path / "text.png")


class Clocks:
    """A monotonic and a wall clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.wall = 2_000_000_000.0

    def tick(self, seconds: float) -> None:
        self.now += seconds
        self.wall += seconds


def settler(clocks: Clocks, settle: float = 2.0) -> Settler:
    return Settler(settle, clock=lambda: clocks.now, wall_clock=lambda: clocks.wall)


def write(path: Path, data: bytes, wall: float) -> None:
    path.write_bytes(data)
    os.utime(path, ns=(int(wall * 1e9), int(wall * 1e9)))


def test_finished_file_taken_at_once(tmp_path: Path) -> None:
    clocks = Clocks()
    files = settler(clocks)
    path = tmp_path / "a.png"
    write(path, image_bytes("PNG"), clocks.wall)
    files.saw(str(path), finished=True)
    assert files.wait_time() == 0.0
    assert files.due() == ([str(path)], [])
    assert len(files) == 0 and files.wait_time() is None


def test_file_being_written_waits_then_settles(tmp_path: Path) -> None:
    clocks = Clocks()
    files = settler(clocks)
    data = image_bytes("PNG")
    path = tmp_path / "a.png"
    for piece in range(1, 5):  # a slow writer: a piece every second, never settled meanwhile
        write(path, data[: len(data) * piece // 5], clocks.wall)
        files.saw(str(path))
        assert files.due() == ([], [])
        clocks.tick(1.0)
    write(path, data, clocks.wall)
    files.saw(str(path))
    clocks.tick(1.0)
    assert files.due() == ([], [])
    assert files.wait_time() == pytest.approx(1.0)
    clocks.tick(1.0)
    assert files.due() == ([str(path)], [])


def test_closed_but_not_whole_waits(tmp_path: Path) -> None:
    """A writer that closes after each appended piece: the close is no promise of a whole file."""
    clocks = Clocks()
    files = settler(clocks)
    data = image_bytes("PNG")
    path = tmp_path / "a.png"
    write(path, data[:100], clocks.wall)
    files.saw(str(path), finished=True)
    assert files.due() == ([], [])
    clocks.tick(0.5)
    write(path, data, clocks.wall)
    files.saw(str(path), finished=True)
    assert files.due() == ([str(path)], [])


def test_old_file_taken_without_waiting(tmp_path: Path) -> None:
    """A backlog or a poll finds a file last written long ago: no settle wait."""
    clocks = Clocks()
    files = settler(clocks)
    path = tmp_path / "a.png"
    write(path, image_bytes("PNG"), clocks.wall - 60)
    files.saw(str(path))
    assert files.due() == ([str(path)], [])


def test_broken_file_handed_out_once(tmp_path: Path) -> None:
    clocks = Clocks()
    files = settler(clocks)
    path = tmp_path / "a.png"
    write(path, image_bytes("PNG")[:200], clocks.wall)
    files.saw(str(path))
    clocks.tick(2.5)
    assert files.due() == ([], [str(path)])
    for _ in range(3):  # more events or walks of the same unchanged file: not again
        files.saw(str(path))
        clocks.tick(3.0)
        assert files.due() == ([], [])
    write(path, image_bytes("PNG"), clocks.wall)  # rewritten whole: taken again
    files.saw(str(path), finished=True)
    assert files.due() == ([str(path)], [])


def test_vanished_file_dropped(tmp_path: Path) -> None:
    clocks = Clocks()
    files = settler(clocks)
    path = tmp_path / "a.png"
    write(path, image_bytes("PNG")[:50], clocks.wall)
    files.saw(str(path))
    path.unlink()
    clocks.tick(5)
    assert files.due() == ([], [])
    assert len(files) == 0


def test_negative_settle_refused() -> None:
    with pytest.raises(ValueError):
        Settler(-1)


def test_a_walk_tells_a_rename_from_a_write_by_ctime(tmp_path: Path) -> None:
    """No event says `renamed`: a rename after the last write moves the ctime past the mtime."""
    files = Settler(30.0)  # real clocks; nothing settles during the test
    staged = tmp_path / "staging.tmp"
    staged.write_bytes(image_bytes("PNG"))
    written = tmp_path / "written.png"
    written.write_bytes(image_bytes("PNG"))
    time.sleep(0.01)
    os.rename(staged, tmp_path / "renamed.png")
    files.saw(str(tmp_path / "renamed.png"))
    files.saw(str(written))
    info = os.stat(written)
    if info.st_ctime_ns > info.st_mtime_ns:
        pytest.skip("this file system sets ctime apart from mtime on a write")
    assert files.due() == ([str(tmp_path / "renamed.png")], [])
    assert len(files) == 1  # written.png waits for --settle


def test_polling_takes_a_whole_file_unchanged_over_a_second_look(tmp_path: Path) -> None:
    clocks = Clocks()
    files = Settler(2.0, look_again=0.25, clock=lambda: clocks.now, wall_clock=lambda: clocks.wall)
    whole, part = tmp_path / "whole.png", tmp_path / "part.png"
    write(whole, image_bytes("PNG"), clocks.wall)
    write(part, image_bytes("PNG")[:100], clocks.wall)
    files.saw(str(whole))
    files.saw(str(part))
    assert files.due() == ([], [])
    assert files.wait_time() == pytest.approx(0.25)
    clocks.tick(0.3)
    assert files.due() == ([str(whole)], [])  # the part waits for --settle, then is broken
    clocks.tick(2.0)
    assert files.due() == ([], [str(part)])
