"""io.watcher: the signs kernel events and walks give, on a real folder (no networks)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from facefix_cli.io.watcher import KernelWatcher, PollWatcher, Sign, Signs, network_file_system


def collect(
    watcher: KernelWatcher, until: str, finished: bool = False, timeout: float = 10.0
) -> list[Sign]:
    """Signs until one names a path ending in `until` (a finished one, with `finished`)."""
    signs: list[Sign] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        signs += watcher.wait(0.2).files
        if any(s.path.endswith(until) and (s.finished or not finished) for s in signs):
            return signs
    raise AssertionError(f"no sign of {until}: {signs}")


@pytest.fixture
def kernel(tmp_path: Path):
    try:
        watcher = KernelWatcher([tmp_path], ["png"])
    except Exception as exc:  # noqa: BLE001 - a machine without inotify
        pytest.skip(f"no kernel watches here: {exc}")
    yield watcher
    watcher.close()


def test_rename_in_and_close_are_finished_signs(tmp_path: Path, kernel: KernelWatcher) -> None:
    outside = tmp_path.parent / f"{tmp_path.name}-staging.png"
    outside.write_bytes(b"x")
    os.rename(outside, tmp_path / "moved.png")
    signs = collect(kernel, "moved.png", finished=True)
    assert signs == [Sign(str(tmp_path / "moved.png"), True)]  # never a plain creation
    (tmp_path / "written.png").write_bytes(b"x")  # open, write, close
    signs = collect(kernel, "written.png", finished=True)
    assert signs[-1] == Sign(str(tmp_path / "written.png"), True)
    assert Sign(str(tmp_path / "written.png"), False) in signs  # created, modified first


def test_outputs_hidden_files_and_other_types_are_not_signs(
    tmp_path: Path, kernel: KernelWatcher
) -> None:
    (tmp_path / "a.fixed.png").write_bytes(b"x")
    (tmp_path / ".a.fixed.png.claim").write_bytes(b"x")
    (tmp_path / "notes.txt").write_bytes(b"x")
    (tmp_path / ".cache").mkdir()
    (tmp_path / ".cache" / "thumb.png").write_bytes(b"x")
    (tmp_path / "last.png").write_bytes(b"x")
    signs = collect(kernel, "last.png")
    assert {Path(s.path).name for s in signs} == {"last.png"}


def test_new_sub_folders_are_watched(tmp_path: Path, kernel: KernelWatcher) -> None:
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    (deep / "c.png").write_bytes(b"x")
    collect(kernel, "c.png")
    time.sleep(0.2)
    (deep / "d.png").write_bytes(b"x")  # after the watch on the new folder is in place
    collect(kernel, "d.png")


def test_wait_blocks_until_timeout(tmp_path: Path, kernel: KernelWatcher) -> None:
    begun = time.monotonic()
    assert kernel.wait(0.3) == Signs([])
    assert time.monotonic() - begun >= 0.25


def test_poll_watcher_walks_for_files_to_do(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "new.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 8)
    (tmp_path / "done.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 8)
    (tmp_path / "done.fixed.png").write_bytes(b"x")
    watcher = PollWatcher([tmp_path], 0.2, extensions=("png",), output_dir=None, overwrite=False)
    assert watcher.wait(0.05) == Signs([])  # before the interval: nothing walked
    signs = watcher.wait(None)
    assert signs.files == [Sign(str(tmp_path / "sub" / "new.png"))]
    watcher.close()


def test_a_watched_folder_deleted_or_moved_away_is_said(tmp_path: Path) -> None:
    for how in ("deleted", "moved"):
        root = tmp_path / how
        root.mkdir()
        try:
            watcher = KernelWatcher([root], ["png"])
        except Exception as exc:  # noqa: BLE001 - a machine without inotify
            pytest.skip(f"no kernel watches here: {exc}")
        try:
            if how == "deleted":
                root.rmdir()
            else:
                root.rename(tmp_path / "elsewhere")
            deadline, gone = time.monotonic() + 10, ()
            while not gone and time.monotonic() < deadline:
                gone = watcher.wait(0.2).gone
            assert gone == (str(root),), how
        finally:
            watcher.close()
    polled = tmp_path / "polled"
    polled.mkdir()
    poller = PollWatcher([polled], 0.05, extensions=("png",), output_dir=None, overwrite=False)
    polled.rmdir()
    assert poller.wait(None).gone == (str(polled),)


def test_network_file_systems_are_named(tmp_path: Path) -> None:
    mounts = tmp_path / "mounts"
    mounts.write_text(
        "/dev/sda1 / ext4 rw 0 0\n"
        "server:/renders /srv/sd nfs4 rw 0 0\n"
        "//nas/share /srv/sd/my\\040share cifs rw 0 0\n"
        "tmpfs /srv/sd/local tmpfs rw 0 0\n"
    )
    assert network_file_system(Path("/srv/sd/outputs"), str(mounts)) == "nfs4"
    assert network_file_system(Path("/srv/sd/my share/x"), str(mounts)) == "cifs"
    assert network_file_system(Path("/srv/sd/local/x"), str(mounts)) is None
    assert network_file_system(Path("/srv/sdx"), str(mounts)) is None
    assert network_file_system(Path("/"), str(tmp_path / "no-such-table")) is None
