"""io.claims: who works on an output, taken over from dead or stuck runs, kept alive, swept."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from facefix_cli.io import claims
from facefix_cli.io.names import (
    claim_path,
    temporary_path,
)


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_claim_is_exclusive_until_released(tmp_path):
    output = tmp_path / "a.fixed.png"
    first = claims.acquire(output)
    assert first is not None and first.path.exists()
    owner = json.loads(first.path.read_text())
    assert owner["pid"] == os.getpid() and owner["host"] == claims.HOST
    assert claims.acquire(output) is None
    first.release()
    assert not first.path.exists()
    again = claims.acquire(output)
    assert again is not None
    again.release()


def test_a_claim_of_a_dead_process_is_taken_over_with_its_temporary_file(tmp_path):
    output = tmp_path / "a.fixed.png"
    pid = dead_pid()
    claim_path(output).write_text(json.dumps({"host": claims.HOST, "pid": pid, "token": "old"}))
    leftover = temporary_path(output, pid)
    leftover.write_bytes(b"truncated")
    claim = claims.acquire(output)
    assert claim is not None
    assert json.loads(claim.path.read_text())["pid"] == os.getpid()
    assert not leftover.exists()
    claim.release()


def test_a_live_claim_of_another_host_waits_for_the_age_limit(tmp_path):
    output = tmp_path / "a.fixed.png"
    path = claim_path(output)
    path.write_text(json.dumps({"host": "elsewhere", "pid": 1, "token": "t"}))
    assert claims.acquire(output) is None
    old = time.time() - claims.STALE_AFTER - 60
    os.utime(path, (old, old))
    claim = claims.acquire(output)
    assert claim is not None and json.loads(path.read_text())["host"] == claims.HOST
    claim.heartbeat()
    assert time.time() - path.stat().st_mtime < claims.STALE_AFTER
    claim.release()


def claim_of(output: Path, **owner: object) -> Path:
    path = claim_path(output)
    path.write_text(json.dumps({"host": claims.HOST, "token": "old", **owner}))
    return path


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux's /proc")
def test_a_claim_records_who_owns_it_beyond_the_pid(tmp_path):
    claim = claims.acquire(tmp_path / "a.fixed.png")
    assert claim is not None
    owner = json.loads(claim.path.read_text())
    own_start = claims.process_start(os.getpid())
    assert isinstance(own_start, int) and owner["start"] == own_start
    assert owner["boot"] == Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    claim.release()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux's /proc")
@pytest.mark.parametrize(
    "who",
    ["own pid, earlier process", "live pid, other process", "pid 1, other container", "rebooted"],
)
def test_a_claim_whose_pid_runs_another_process_is_taken_over(tmp_path, who):
    output = tmp_path / "a.fixed.png"
    own = claims.process_start(os.getpid())
    assert own is not None
    parent = os.getppid()
    owner = {
        "own pid, earlier process": {"pid": os.getpid(), "start": own - 1},
        "live pid, other process": {"pid": parent, "start": claims.process_start(parent) + 7},
        "pid 1, other container": {"pid": 1, "start": (claims.process_start(1) or 0) + 1},
        "rebooted": {"pid": os.getpid(), "start": own, "boot": "another-boot"},
    }[who]
    path = claim_of(output, **owner)
    assert claims.is_stale(path)
    claim = claims.acquire(output)
    assert claim is not None and json.loads(path.read_text())["token"] == claim.token
    claim.release()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux's /proc")
def test_a_claim_of_a_live_process_with_its_start_time_is_kept(tmp_path):
    output = tmp_path / "a.fixed.png"
    parent = os.getppid()
    path = claim_of(output, pid=parent, start=claims.process_start(parent), boot=claims.BOOT_ID)
    assert not claims.is_stale(path)
    assert claims.acquire(output) is None


def test_old_format_claims_are_judged_by_pid_alone(tmp_path):
    output = tmp_path / "a.fixed.png"
    path = claim_of(output, pid=os.getppid())  # no start time, no boot id: alive is alive
    assert not claims.is_stale(path) and claims.acquire(output) is None
    claim_of(output, pid=os.getpid())  # possibly this very process's own claim: kept
    assert claims.acquire(output) is None
    claim_of(output, pid=dead_pid())
    claim = claims.acquire(output)
    assert claim is not None
    claim.release()


def wait_until(condition, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False


def test_the_keeper_renews_held_claims_in_the_background_and_drops_released_ones(tmp_path):
    keeper = claims.ClaimKeeper(interval=0.02)
    held, released = (claims.acquire(tmp_path / f"{n}.fixed.png") for n in ("held", "released"))
    assert held is not None and released is not None
    keeper.add(held)
    keeper.add(released)
    keeper.discard(released)
    old = time.time() - claims.STALE_AFTER - 60  # what a frozen owner's claim would look like
    for claim in (held, released):
        os.utime(claim.path, (old, old))
    # With no call from the work itself, the held claim is fresh again; the other is left alone.
    assert wait_until(lambda: not claims.is_stale(held.path))
    assert claims.is_stale(released.path)
    assert keeper.held() == {held}
    keeper.discard(held)  # and its thread ends
    held.release()
    released.release()
    assert not held.path.exists() and not released.path.exists()


def test_acquire_hands_the_claim_to_the_process_keeper_and_release_takes_it_back(tmp_path):
    claim = claims.acquire(tmp_path / "a.fixed.png")
    assert claim in claims.KEEPER.held()
    claim.release()
    assert claim not in claims.KEEPER.held()


def test_release_leaves_a_claim_taken_over_by_another_run(tmp_path):
    output = tmp_path / "a.fixed.png"
    claim = claims.acquire(output)
    claim.path.write_text(json.dumps({"host": "elsewhere", "pid": 1, "token": "theirs"}))
    claim.release()
    assert claim.path.exists()


def test_a_takeover_that_loses_the_race_gives_the_fresh_claim_back(tmp_path):
    output = tmp_path / "a.fixed.png"
    path = claim_path(output)
    path.write_text(json.dumps({"host": "elsewhere", "pid": 1, "token": "fresh"}))
    assert not claims._take_over(path, b"the stale claim judged earlier")
    assert json.loads(path.read_text())["token"] == "fresh"
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_sweep_removes_orphans_and_keeps_live_work(tmp_path):
    live = claims.acquire(tmp_path / "live.fixed.png")
    live_temporary = temporary_path(tmp_path / "live.fixed.png", os.getpid())
    live_temporary.write_bytes(b"being written")
    orphan = temporary_path(tmp_path / "gone.fixed.png", dead_pid())
    orphan.write_bytes(b"half")
    stale = claim_path(tmp_path / "done.fixed.png")
    stale.write_text(json.dumps({"host": claims.HOST, "pid": dead_pid(), "token": "x"}))
    (tmp_path / ".keep-me").write_text("not ours")
    removed = claims.sweep_folder(tmp_path)
    assert sorted(p.name for p in removed) == sorted([orphan.name, stale.name])
    assert live_temporary.exists() and live.path.exists() and (tmp_path / ".keep-me").exists()
    live.release()


def test_sweep_given_the_walk_s_hidden_names_does_not_list_the_folder_again(tmp_path):
    seen = temporary_path(tmp_path / "a.fixed.png", dead_pid())
    unseen = temporary_path(tmp_path / "b.fixed.png", dead_pid())  # after the walk's listing
    seen.write_bytes(b"half")
    unseen.write_bytes(b"half")
    removed = claims.sweep_folder(tmp_path, hidden={seen.name, ".gone-since.claim"})
    assert removed == [seen]  # a name that vanished meanwhile is ignored
    assert unseen.exists()  # the next run's walk will see it
