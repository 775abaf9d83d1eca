"""weights.sources against real servers: a host or folder that refused or stalled is not
tried again in the run."""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path

from facefix_cli.weights import download as dl
from tests.weights_server import (
    CUT_AT,
    DEAD_TIMEOUT,
    RecordingProgress,
    stand_ins,
)


def test_stalled_mirror_costs_one_timeout_for_the_whole_run(server, other_server, tmp_path):
    rows = stand_ins(4, f"{server.base}/ok", size=4000)
    for model, data in rows:
        server.add(model, data)
        other_server.add(model, data)
    progress = RecordingProgress()
    started = time.monotonic()

    dl.download(
        [model for model, _ in rows],
        tmp_path,
        mirrors=[f"{other_server.base}/stall"],
        progress=progress,
        timeout=DEAD_TIMEOUT,
        retries=3,
        backoff=0.01,
    )

    # Before: 4 files x 4 attempts on the stalled mirror. Now one attempt in the whole run.
    assert len(other_server.requests) == 1
    assert [r.path for r in server.requests] == [f"/ok/file{i}.pth" for i in range(4)]
    for model, data in rows:
        assert (tmp_path / model.file).read_bytes() == data
    assert sum("not tried, http://127.0.0.1:" in m for m in progress.messages) == 3
    assert time.monotonic() - started < 2 * DEAD_TIMEOUT + 2


def test_a_host_that_stalls_twice_is_dropped_for_the_run(server, other_server, tmp_path):
    rows = stand_ins(2, f"{server.base}/ok")
    for model, data in rows:
        server.add(model, data)
        other_server.add(model, data)
    progress = RecordingProgress()

    dl.download(
        [model for model, _ in rows],
        tmp_path,
        mirrors=[f"{other_server.base}/stallalways"],
        progress=progress,
        timeout=DEAD_TIMEOUT,
        retries=3,
        backoff=0.01,
    )

    # The first stall mid-body is forgiven (a slow server resumes), the second ends it.
    assert len(other_server.requests) == 2
    assert any("stalled again; not tried again in this run" in m for m in progress.messages)
    # The part kept from the stalls is resumed from the release URL.
    assert [r.range for r in server.hits("file0.pth")] == [f"bytes={CUT_AT}-"]
    assert [r.range for r in server.hits("file1.pth")] == [None]
    for model, data in rows:
        assert (tmp_path / model.file).read_bytes() == data


def test_refusing_host_is_tried_once_for_all_files(server, refusing_url, tmp_path):
    rows = stand_ins(3, f"{server.base}/ok", size=4000)
    for model, data in rows:
        server.add(model, data)
    progress = RecordingProgress()

    dl.download(
        [model for model, _ in rows],
        tmp_path,
        mirrors=[refusing_url],
        progress=progress,
        retries=3,
        backoff=0.01,
    )

    assert len(server.requests) == 3
    skipped = [m for m in progress.messages if f"not tried, {refusing_url} did not answer" in m]
    assert len(skipped) == 2
    assert not any("retry" in m for m in progress.messages)
    for model, data in rows:
        assert (tmp_path / model.file).read_bytes() == data


def test_mirror_folder_whose_mount_is_gone_is_tried_once(server, tmp_path, monkeypatch):
    rows = stand_ins(3, f"{server.base}/ok", size=4000)
    for model, data in rows:
        server.add(model, data)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    real_stat = Path.stat
    touched: list[Path] = []

    def stale_stat(path: Path, *args, **kwargs):
        # What a dead NFS server gives for every file under the mount.
        if path.parent == mirror:
            touched.append(path)
            raise OSError(errno.ESTALE, os.strerror(errno.ESTALE), str(path))
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(Path, "stat", stale_stat)
    dl.download([m for m, _ in rows], tmp_path / "weights", mirrors=[str(mirror)], retries=3)

    assert touched == [mirror / "file0.pth"]
    assert len(server.requests) == 3
    for model, data in rows:
        assert (tmp_path / "weights" / model.file).read_bytes() == data
