"""Fault handling below the CLI: header limits, names, claims, the walk, writes and the one place
exceptions are classified. Hostile inputs are generated here; nothing touches the network."""

from __future__ import annotations

import errno
import io
import json
import os
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import cv2
import pytest
import torch
from helpers import discover
from PIL import Image

from facefix_cli.errors import (
    EXIT_CRASHED,
    EXIT_ENVIRONMENT,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_TERMINATED,
    EnvironmentFault,
    ImageError,
    Interrupted,
    OutputWriteError,
    SetupError,
)
from facefix_cli.io import claims, read, safefs
from facefix_cli.io.discover import Job
from facefix_cli.io.header import animation_frames, image_dimensions
from facefix_cli.io.names import (
    NAME_MAX,
    TEMPORARY_RE,
    claim_path,
    display_path,
    output_name,
    temporary_path,
)
from facefix_cli.io.write import write_atomic
from facefix_cli.metadata import chunks_from_bytes
from facefix_cli.pipeline.file import failure_result, read_job
from facefix_cli.pipeline.results import FileResult, FixSummary, Status, StopReason
from facefix_cli.pipeline.settings import RunSettings


def png_header_only(width: int, height: int, bit_depth: int = 1, colour: int = 0) -> bytes:
    """A valid PNG whose IHDR claims width x height, with one tiny IDAT: decoding would need
    width * height pixels of memory."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")
        )

    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def encoded(fmt: str, size: tuple[int, int], **params) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (10, 20, 30)).save(buffer, fmt, **params)
    return buffer.getvalue()


# --- header limits ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "params"),
    [
        ("PNG", {}),
        ("JPEG", {}),
        ("JPEG", {"progressive": True}),
        ("WEBP", {"lossless": True}),  # VP8L
        ("WEBP", {"quality": 80}),  # VP8
        ("WEBP", {"quality": 80, "exif": b"Exif\x00\x00II*\x00"}),  # VP8X
    ],
)
def test_header_dimensions_of_real_files(fmt, params):
    assert image_dimensions(encoded(fmt, (37, 23), **params)) == (37, 23)


def test_header_dimensions_of_junk_is_none():
    for junk in (b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xda" + bytes(10), b"RIFF....WEBPVP8 "):
        assert image_dimensions(junk) is None


def animation(fmt: str, frames: int, **params) -> bytes:
    images = [Image.new("RGB", (12, 10), (40 * i, 20, 30)) for i in range(frames)]
    buffer = io.BytesIO()
    images[0].save(buffer, fmt, save_all=True, append_images=images[1:], duration=80, **params)
    return buffer.getvalue()


@pytest.mark.parametrize(("fmt", "params"), [("PNG", {}), ("WEBP", {"lossless": True})])
def test_animations_are_told_from_stills_by_their_header(fmt, params):
    assert animation_frames(animation(fmt, 3, **params)) == 3
    assert animation_frames(animation(fmt, 1, **params)) is None  # one frame is a still
    assert animation_frames(encoded(fmt, (12, 10), **params)) is None
    assert animation_frames(encoded("JPEG", (12, 10))) is None
    for junk in (b"", b"\x89PNG\r\n\x1a\n" + b"\xff" * 12, b"RIFF\x00\x00\x00\x00WEBPVP8X"):
        assert animation_frames(junk) is None


def test_an_animation_is_skipped_with_its_reason_and_no_output(tmp_path):
    (tmp_path / "loop.png").write_bytes(animation("PNG", 4))
    job = Job(tmp_path / "loop.png", tmp_path / "loop.fixed.png")
    result = read_job(job, RunSettings(weights_dir=tmp_path))
    assert isinstance(result, FileResult) and result.status == "skipped"
    assert result.reason == "animated image (4 frames); facefix fixes still images"
    assert list(tmp_path.iterdir()) == [tmp_path / "loop.png"]  # no output, no claim left


def test_a_one_bit_30000_square_png_is_refused_before_decoding(tmp_path, monkeypatch):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_header_only(30000, 30000, bit_depth=1))
    assert path.stat().st_size < 1000

    def never(*args):
        raise AssertionError("decoded a file over the limit")

    monkeypatch.setattr(read.cv2, "imdecode", never)
    with pytest.raises(ImageError, match="900 megapixels, over the --max-pixels limit of 100"):
        read.read_image(path, chunks_from_bytes)


def test_a_header_over_opencvs_own_limit_is_a_file_error_not_a_crash(tmp_path):
    path = tmp_path / "huge.png"
    path.write_bytes(png_header_only(100000, 100000))
    with pytest.raises(ImageError, match="cannot decode"):
        read.read_image(
            path, chunks_from_bytes, max_pixels=0
        )  # no limit of ours: OpenCV's cv2.error is caught


def test_libpng_messages_become_the_files_reason(tmp_path, capfd):
    good = encoded("PNG", (16, 16))
    start = good.index(b"IDAT")
    (length,) = struct.unpack(">I", good[start - 4 : start])
    damaged = bytearray(good)
    damaged[start + 4 + length - 2] ^= 0xFF  # inside the zlib checksum
    damaged[start + 4 + length : start + 8 + length] = zlib.crc32(
        bytes(damaged[start : start + 4 + length])
    ).to_bytes(4, "big")  # a valid chunk CRC: only the decoder notices
    path = tmp_path / "flipped.png"
    path.write_bytes(bytes(damaged))
    with pytest.raises(ImageError, match="libpng error: IDAT"):
        read.read_image(path, chunks_from_bytes)
    assert "libpng" not in capfd.readouterr().err


# --- names ----------------------------------------------------------------------------------


def test_output_names_never_collide_across_extensions():
    assert output_name("a.png") == "a.fixed.png"
    assert output_name("a.PNG") == "a.fixed.png"
    assert output_name("a.jpg") == "a.jpg.fixed.png"
    assert output_name("a.webp") == "a.webp.fixed.png"
    assert len({output_name(n) for n in ("a.png", "a.jpg", "a.jpeg", "a.webp")}) == 4


def test_hidden_names_fit_however_long_the_output_name(tmp_path):
    output = tmp_path / ("x" * 250 + ".fixed.png")
    for hidden in (temporary_path(output, 4194304), claim_path(output)):
        assert len(os.fsencode(hidden.name)) <= NAME_MAX and hidden.name.startswith(".")
    short = tmp_path / "a.fixed.png"
    first, second = temporary_path(short, 12).name, temporary_path(short, 12).name
    # hidden, this pid's, and not guessable: a new random token each time
    assert first.startswith(".a.fixed.png.12.") and first.endswith(".tmp") and first != second
    assert TEMPORARY_RE.match(first)["stem"] == "a.fixed.png"
    assert TEMPORARY_RE.match(".a.fixed.png.12.tmp")["stem"] == "a.fixed.png"  # older runs
    assert claim_path(short).name == ".a.fixed.png.claim"


def test_display_path_escapes_undecodable_bytes_and_control_characters():
    name = os.fsdecode(b"bad\xff\x1bname.png")
    shown = display_path(Path("/x") / name)
    assert shown == "/x/bad\\xff\\x1bname.png"
    shown.encode("utf-8")  # always encodable: JSON and logs stay valid
    assert display_path("ünï.png") == "ünï.png"


# --- claims ---------------------------------------------------------------------------------


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


# --- the walk -------------------------------------------------------------------------------


def save(path: Path) -> Path:
    path.write_bytes(encoded("PNG", (8, 8)))
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


# --- writes ---------------------------------------------------------------------------------


def test_a_read_only_folder_is_one_clean_error_with_its_errno(tmp_path, monkeypatch):
    def refuse(name, *args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(name))

    monkeypatch.setattr(safefs, "create_exclusive", refuse)
    with pytest.raises(OutputWriteError, match="Read-only file system") as caught:
        write_atomic(tmp_path / "o.fixed.png", b"data")
    assert caught.value.errno == errno.EROFS


def test_a_name_too_long_fails_that_write_only(tmp_path):
    with pytest.raises(OutputWriteError, match="File name too long") as caught:
        write_atomic(tmp_path / ("x" * 250 + ".fixed.png"), b"data")
    assert caught.value.errno == errno.ENAMETOOLONG
    assert list(tmp_path.iterdir()) == []


# --- classification -------------------------------------------------------------------------

JOB = Job(Path("in/a.png"), Path("in/a.fixed.png"))
BESIDE = RunSettings(weights_dir=Path("w"))
TREE = RunSettings(weights_dir=Path("w"), output_dir=Path("out"))


@pytest.mark.parametrize(
    ("exc", "settings"),
    [
        (OutputWriteError("cannot write x: disk full", errno.ENOSPC), BESIDE),
        (OutputWriteError("cannot write x: Read-only file system", errno.EROFS), BESIDE),
        (OSError(errno.EDQUOT, "Disk quota exceeded"), BESIDE),
        (OutputWriteError("cannot write x: Permission denied", errno.EACCES), TREE),
        (RuntimeError("CUDA error: an illegal memory access was encountered"), BESIDE),
    ],
)
def test_environment_faults_stop_the_run(exc, settings):
    with pytest.raises(EnvironmentFault):
        failure_result(JOB, exc, settings)


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (ImageError("truncated PNG"), "truncated PNG"),
        (OutputWriteError("cannot write x: Permission denied", errno.EACCES), "Permission denied"),
        (OSError(errno.ENAMETOOLONG, "File name too long", "in/a.png"), "File name too long"),
        (OSError(errno.ELOOP, "Too many levels of symbolic links"), "symbolic links"),
        (cv2.error("OpenCV(5) error: (-215:Assertion failed)"), "error: Assertion failed"),
        (MemoryError(), "out of memory"),
        (torch.OutOfMemoryError("CUDA out of memory"), "out of GPU memory"),
        (zlib.error("Error -3 while decompressing"), "zlib"),
    ],
)
def test_file_problems_fail_that_file(exc, reason):
    result = failure_result(JOB, exc, BESIDE)
    assert result.status == "failed" and reason.split(":")[-1].strip() in result.reason
    assert "\n" not in result.reason and result.traceback is None


def test_unexpected_exceptions_are_crashes_with_type_hint_and_traceback():
    try:
        {}["missing"]
    except KeyError as exc:
        result = failure_result(JOB, exc, BESIDE)
    assert result.status == "crashed"
    assert result.reason.startswith("KeyError: 'missing'") and "please report it" in result.reason
    assert "Traceback" in result.traceback and "test_faults.py" in result.traceback


def test_interrupts_and_setup_errors_pass_through():
    for exc in (KeyboardInterrupt(), Interrupted(15), SetupError("no model")):
        with pytest.raises(type(exc)):
            failure_result(JOB, exc, BESIDE)


def test_exit_codes_are_distinct_and_follow_the_worst_outcome():
    def summary(*statuses: str, **fields) -> FixSummary:
        results = [FileResult(Path(s), None, Status(s)) for s in statuses]
        return FixSummary(results=results, **fields)

    assert summary("fixed", "skipped").exit_code == EXIT_OK == 0
    assert summary("fixed", "failed").exit_code == EXIT_FAILED == 1
    assert summary("failed", "crashed").exit_code == EXIT_CRASHED == 3
    assert summary("crashed", fault="disk full").exit_code == EXIT_ENVIRONMENT == 4
    assert summary("fixed", signal=15).exit_code == EXIT_TERMINATED == 143
    assert summary("fixed", signal=1).exit_code == 143
    assert summary(signal=2).exit_code == 130
    stopped = summary("fixed", stopped=StopReason.TIME_LIMIT, time_limit="--max-time 1h")
    assert stopped.exit_code == 0 and stopped.stop_text == "--max-time 1h reached"


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90), ("90s", 90), ("15m", 900), ("2h", 7200), ("1.5h", 5400)]
)
def test_durations(text, seconds):
    from facefix_cli.cli.options import parse_duration

    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "0", "-5", "10d", "soon"])
def test_bad_durations_are_setup_errors(text):
    from facefix_cli.cli.options import parse_duration

    with pytest.raises(SetupError, match="--max-time"):
        parse_duration(text)


def test_summary_json_names_undecodable_files_in_valid_utf8():
    name = Path(os.fsdecode(b"caf\xe9.png"))
    record = FixSummary(results=[FileResult(name, None, "failed", "bad")]).to_dict()
    text = json.dumps(record, ensure_ascii=False)
    text.encode("utf-8")
    assert json.loads(text)["files"][0]["source"] == "caf\\xe9.png"
