"""weights.download against a real HTTP server: locks, two processes, full and read-only
disks, and ensure_weights (what `fix` calls before any image work)."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from facefix_cli.errors import EXIT_SETUP, MissingWeightsError, SetupError
from facefix_cli.weights import download as dl
from tests.weights_server import (
    FAST,
    RecordingProgress,
    leftovers,
    payload,
    stand_in,
    with_url,
)


def test_second_download_waits_for_the_lock_then_finds_the_file(server, one, tmp_path):
    import fcntl

    model, data = one
    model = with_url(model, server.url("ok", model))
    waiting = threading.Event()

    class Progress(RecordingProgress):
        def message(self, text: str) -> None:
            super().message(text)
            if "waiting for another" in text:
                waiting.set()

    progress = Progress()
    lock_fd = os.open(tmp_path / (model.file + ".lock"), os.O_RDWR | os.O_CREAT)
    fcntl.flock(lock_fd, fcntl.LOCK_EX)  # "another process" is fetching
    worker = threading.Thread(
        target=dl.download, args=([model], tmp_path), kwargs={"progress": progress}
    )
    worker.start()
    try:
        assert waiting.wait(5)
        (tmp_path / "done.tmp").write_bytes(data)
        os.replace(tmp_path / "done.tmp", tmp_path / model.file)
    finally:
        os.close(lock_fd)
    worker.join(5)

    assert not worker.is_alive()
    assert server.requests == []
    assert any("fetched by another facefix process" in m for m in progress.messages)


CONCURRENT_SCRIPT = """
import dataclasses, sys
from pathlib import Path
from facefix_cli.weights.download import download
from facefix_cli.weights.registry import get_model
from facefix_cli.cli.console import PlainDownloadProgress
url, size, sha256, name, folder = sys.argv[1:]
model = dataclasses.replace(
    get_model("gfpgan-1.4"), name=name, file=name + ".pth", urls=(url,), size=int(size),
    sha256=sha256,
)
download([model], Path(folder), progress=PlainDownloadProgress(sys.stdout), timeout=5, retries=0)
"""


def test_two_processes_downloading_one_file_do_not_corrupt_it(server, one, tmp_path):
    model, data = one
    args = [server.url("slow", model), str(model.size), model.sha256, model.name, str(tmp_path)]
    jobs = [
        subprocess.Popen(
            [sys.executable, "-c", CONCURRENT_SCRIPT, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [job.communicate(timeout=60)[0] for job in jobs]

    assert [job.returncode for job in jobs] == [0, 0], outputs
    assert (tmp_path / model.file).read_bytes() == data
    assert len(server.hits(model.file)) == 1
    assert sum("downloading " in out for out in outputs) == 1
    assert sum("fetched by another" in out or "already present" in out for out in outputs) == 1
    assert leftovers(tmp_path) == [model.file]


def test_disk_full_gives_a_clear_error_and_leaves_nothing(server, one, tmp_path, monkeypatch):
    if not Path("/dev/full").exists():
        pytest.skip("needs /dev/full")
    from facefix_cli.weights import store

    model, _ = one
    part = tmp_path / (model.file + ".part")
    real_open_part = store.open_part
    opened: list[Path] = []

    def full_part(path: Path, resume: bool):
        # The real .part is made (a link planted at its name would be replaced, never written
        # through), then every write to it fails with ENOSPC, as on a full disk.
        out = real_open_part(path, resume)
        full = os.open("/dev/full", os.O_WRONLY)
        os.dup2(full, out.fileno())
        os.close(full)
        opened.append(path)
        return out

    monkeypatch.setattr(store, "open_part", full_part)
    with pytest.raises(SetupError, match="no space left in .* for standin.pth"):
        dl.download([with_url(model, server.url("ok", model))], tmp_path, **FAST)
    assert opened == [part]  # the fault hit the download's own part file
    assert not part.exists() and not part.is_symlink()
    assert leftovers(tmp_path) == []


def test_read_only_weights_folder_gives_a_clear_error(server, one, tmp_path, monkeypatch):
    model, _ = one
    weights = tmp_path / "weights"
    weights.mkdir()
    if os.geteuid() == 0:
        # root ignores permission bits: make creating files in the folder fail as on a
        # read-only mount.
        real_open = os.open

        def read_only_open(path, flags, *args, **kwargs):
            if Path(path).parent == weights and flags & os.O_CREAT:
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
            return real_open(path, flags, *args, **kwargs)

        monkeypatch.setattr(os, "open", read_only_open)
    else:
        weights.chmod(0o555)
    try:
        with pytest.raises(SetupError, match="cannot write to weights folder"):
            dl.download([with_url(model, server.url("ok", model))], weights, **FAST)
    finally:
        weights.chmod(0o755)
    assert leftovers(weights) == []
    assert server.requests == []


def test_weights_folder_that_cannot_be_created(tmp_path, one):
    model, _ = one
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(SetupError, match="cannot create weights folder"):
        dl.download([model], tmp_path / "file" / "weights")


def test_ensure_weights_offline_names_files_and_exact_command(server, one, tmp_path):
    model, data = one
    other = stand_in("other", payload(8))
    (tmp_path / other.file).write_bytes(payload(8))
    weights = tmp_path
    with pytest.raises(MissingWeightsError) as caught:
        dl.ensure_weights([other, with_url(model, server.url("ok", model))], weights, offline=True)
    exc = caught.value
    assert exc.exit_code == EXIT_SETUP
    assert exc.files == [model.file]
    assert exc.command == f"facefix download {model.name} --weights-dir {weights}"
    assert model.file in str(exc) and "offline" in str(exc) and "--mirror DIR" in str(exc)
    assert server.requests == []


def test_ensure_weights_downloads_what_is_missing(server, one, tmp_path):
    model, data = one
    progress = RecordingProgress()
    dl.ensure_weights(
        [with_url(model, server.url("ok", model))], tmp_path, offline=False, progress=progress
    )
    assert (tmp_path / model.file).read_bytes() == data
    assert progress.finished == [tmp_path / model.file]
    # Present now: a second call does nothing at all.
    dl.ensure_weights([model], tmp_path, offline=True)
    assert len(server.requests) == 1


def test_ensure_weights_uses_mirrors_from_the_environment(server, one, tmp_path, monkeypatch):
    model, data = one
    monkeypatch.setenv("FACEFIX_MIRROR", f"{server.base}/ok")
    dl.ensure_weights([with_url(model, server.url("missing", model))], tmp_path, offline=False)
    assert (tmp_path / model.file).read_bytes() == data
    assert [r.path for r in server.requests] == [f"/ok/{model.file}"]


def test_ensure_weights_failed_download_is_a_missing_weights_error(server, one, tmp_path):
    model, _ = one
    with pytest.raises(MissingWeightsError) as caught:
        dl.ensure_weights(
            [with_url(model, server.url("missing", model))], tmp_path, offline=False, retries=0
        )
    assert caught.value.files == [model.file]
    assert "download failed" in str(caught.value) and "HTTP 404" in str(caught.value)
    assert caught.value.command.startswith(f"facefix download {model.name} --weights-dir ")
