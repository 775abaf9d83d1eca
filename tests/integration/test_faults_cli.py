"""`facefix fix` under faults, in process: hostile files, crashes, environment faults, signals,
--max-time, output names, logs and --json. Upscale-only with a one-block random upscaler on tiny
images, so each run takes a fraction of a second."""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import signal
import struct
import zlib
from pathlib import Path
from types import SimpleNamespace

import pytest
from checkpoints import realesrgan_state_dict, save_params_ema
from conftest import gradient_image, hidden_leftovers, snapshot
from PIL import Image
from typer.testing import CliRunner

from facefix_cli.cli import app
from facefix_cli.io import claims, safefs
from facefix_cli.io.names import claim_path
from facefix_cli.io.write import quantize

runner = CliRunner()
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d ")


@pytest.fixture(scope="module")
def tiny_upscaler(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tiny")
    return save_params_ema(realesrgan_state_dict(2, num_block=1), folder / "tiny_x2.pth")


def fix(upscaler: Path, *args, env: dict | None = None, workers: int = 0):
    # The sequential executor unless asked: most tests patch the per-file steps and count their
    # calls; those marked for both executors also run the default, pipelined one.
    argv = [
        "fix",
        "--workers",
        str(workers),
        *map(str, args),
        "--upscaler",
        str(upscaler),
        "--weights-dir",
        str(upscaler.parent),
    ]
    return runner.invoke(app, argv, catch_exceptions=False, env=env)


def make_png(path: Path, size: int = 12, seed: int = 0) -> Path:
    Image.fromarray(quantize(gradient_image(size, size, seed), 8)).save(path)
    return path


def header_only_png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    idat = chunk(b"IDAT", zlib.compress(b"\x00" * 256))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + idat + chunk(b"IEND", b"")


def flip_idat_checksum(data: bytes) -> bytes:
    start = data.index(b"IDAT")
    (length,) = struct.unpack(">I", data[start - 4 : start])
    out = bytearray(data)
    out[start + 4 + length - 1] ^= 0xFF
    out[start + 4 + length : start + 8 + length] = zlib.crc32(
        bytes(out[start : start + 4 + length])
    ).to_bytes(4, "big")
    return bytes(out)


def originals(folder: Path) -> dict:
    return {p: v for p, v in snapshot(folder).items() if not p.name.endswith(".fixed.png")}


def hidden_files(folder: Path) -> list[str]:
    return hidden_leftovers(folder, recursive=True)


@pytest.mark.parametrize("workers", [0, 2], ids=["sequential", "pipelined"])
def test_hostile_files_each_fail_alone_and_the_batch_completes(
    tmp_path, tiny_upscaler, capfd, monkeypatch, workers
):
    folder = tmp_path / "in"
    folder.mkdir()
    good = [make_png(folder / "a.png"), make_png(folder / "z.png", seed=1)]
    good.append(make_png(folder / ("l" * 236 + ".png")))  # 240 bytes: temporary name too long
    good.append(make_png(Path(os.fsdecode(bytes(folder) + b"/caf\xe9.png"))))  # not UTF-8
    data = (folder / "a.png").read_bytes()
    bad = {
        "huge.png": header_only_png(100000, 100000),
        "bomb.png": header_only_png(30000, 30000),
        "flipped.png": flip_idat_checksum(data),
        "truncated.png": data[: len(data) // 2],
        "m" * 246 + ".png": data,  # 250 bytes: its output name does not fit
    }
    for name, content in bad.items():
        (folder / name).write_bytes(content)
    os.symlink(folder / "loop2.png", folder / "loop1.png")
    os.symlink(folder / "loop1.png", folder / "loop2.png")
    (folder / "locked").mkdir()
    make_png(folder / "locked" / "hidden.png")
    real_scandir = os.scandir

    def scandir(path):  # we run as root: a chmod would not stop the walk
        if Path(path).name == "locked":
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    before = originals(folder)
    result = fix(tiny_upscaler, folder, "--json", workers=workers)
    assert result.exit_code == 1, result.output
    summary = json.loads(result.stdout)
    assert summary["processed"] == len(good)
    failed = {
        Path(f["source"]).name: f["reason"] for f in summary["files"] if f["status"] == "failed"
    }
    assert set(failed) == {*bad, "loop1.png", "loop2.png", "locked"}
    assert "over the --max-pixels limit" in failed["huge.png"]
    assert "900 megapixels" in failed["bomb.png"]
    assert "libpng error: IDAT" in failed["flipped.png"]
    assert "truncated PNG" in failed["truncated.png"]
    assert "File name too long" in failed["m" * 246 + ".png"]
    assert "symbolic links" in failed["loop1.png"]
    assert failed["locked"] == "cannot read folder: Permission denied"
    for name in failed:  # one line per bad file
        assert sum(f"failed: {folder / name}" in line for line in result.stderr.splitlines()) == 1
    sources = [f["source"] for f in summary["files"]]
    assert f"{folder}/caf\\xe9.png" in sources  # escaped: the JSON stays valid UTF-8
    assert "libpng" not in capfd.readouterr().err  # attributed to the file, not printed loose
    for source in good:
        assert Image.open(source.with_name(source.name[:-4] + ".fixed.png")).size == (24, 24)
    # a failure mark for each bad image that has an output name (README "What facefix
    # remembers"); no temporary file, no claim; the too-long name, links and folder get none
    failed_marks = [
        f".{name}.fixed.png.failed1" for name in ("bomb", "flipped", "huge", "truncated")
    ]
    assert hidden_files(folder) == failed_marks
    assert {p: v for p, v in originals(folder).items() if p.name not in failed_marks} == before


def test_a_crash_is_counted_with_its_own_exit_code_and_the_batch_goes_on(
    tmp_path, tiny_upscaler, monkeypatch
):
    import facefix_cli.pipeline.file as file_module

    for name in ("a", "b", "c"):
        make_png(tmp_path / f"{name}.png")
    real = file_module.fix_image

    def buggy(source, options, networks):
        if source.path.name == "b.png":
            return {}["a bug"]
        return real(source, options, networks)

    monkeypatch.setattr(file_module, "fix_image", buggy)
    result = fix(tiny_upscaler, tmp_path)
    assert result.exit_code == 3, result.output
    (line,) = [line for line in result.stderr.splitlines() if "crashed: " in line]
    assert "b.png" in line and "KeyError: 'a bug'" in line and "please report it" in line
    assert "Traceback" not in result.stderr
    assert "crashed 1" in result.stderr
    assert (tmp_path / "a.fixed.png").exists() and (tmp_path / "c.fixed.png").exists()
    verbose = fix(tiny_upscaler, tmp_path, "-v")
    assert verbose.exit_code == 3 and "Traceback (most recent call last)" in verbose.stderr


def test_a_crash_in_a_batch_of_the_pipelined_executor_is_that_file_s_alone(
    tmp_path, tiny_upscaler, monkeypatch
):
    """A batch that raises is redone one image at a time: only the buggy file crashes."""
    import facefix_cli.pipeline.executors.pipelined as pipelined

    for name in ("a", "b", "c", "d"):
        make_png(tmp_path / f"{name}.png")
    real = pipelined.fix_images
    batches: list[list[str]] = []

    def buggy(sources, options, networks):
        batches.append([s.path.name for s in sources])
        if any(s.path.name == "b.png" for s in sources):
            return {}["a bug"]
        return real(sources, options, networks)

    monkeypatch.setattr(pipelined, "fix_images", buggy)
    result = fix(tiny_upscaler, tmp_path, "--batch-size", "4", "--json", workers=2)
    assert result.exit_code == 3, result.output
    summary = json.loads(result.stdout)
    assert (summary["processed"], summary["crashed"]) == (3, 1)
    (crashed,) = [f for f in summary["files"] if f["status"] == "crashed"]
    assert Path(crashed["source"]).name == "b.png" and "KeyError: 'a bug'" in crashed["reason"]
    assert ["b.png"] in batches  # redone alone
    assert sorted(p.name for p in tmp_path.glob("*.fixed.png")) == [
        "a.fixed.png", "c.fixed.png", "d.fixed.png"
    ]  # fmt: skip
    assert hidden_files(tmp_path) == []


def count_calls(monkeypatch) -> list[str]:
    import facefix_cli.pipeline.file as file_module

    calls: list[str] = []
    real = file_module.fix_image

    def counted(source, options, networks):
        calls.append(source.path.name)
        return real(source, options, networks)

    monkeypatch.setattr(file_module, "fix_image", counted)
    return calls


FAULT_LINES = {"disk full": "disk full", "read-only output-dir": "Read-only", "gpu gone": "GPU is unusable"}  # fmt: skip


def inject_environment_fault(fault: str, monkeypatch, tmp_path: Path, executor: str) -> list[str]:
    """Make every write (or every GPU call) fail the way `fault` does; the extra CLI args."""
    import facefix_cli.pipeline.executors.pipelined as pipelined
    import facefix_cli.pipeline.file as file_module

    if fault == "disk full":

        def full(fd):
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(os, "fsync", full)
        return []
    if fault == "read-only output-dir":
        real_create = safefs.create_exclusive

        def read_only(name, *args, **kwargs):
            if str(name).endswith(".tmp"):
                raise OSError(errno.EROFS, "Read-only file system", str(name))
            return real_create(name, *args, **kwargs)

        monkeypatch.setattr(safefs, "create_exclusive", read_only)
        return ["--output-dir", str(tmp_path / "out")]
    # gpu gone: the sequential executor calls fix_image per file, the pipelined fix_images
    module, name = (file_module, "fix_image") if executor == "sequential" else (pipelined, "fix_images")  # fmt: skip
    real = getattr(module, name)

    def gone(sources, options, networks):
        real(sources, options, networks)
        raise RuntimeError("CUDA error: unspecified launch failure")

    monkeypatch.setattr(module, name, gone)
    return []


@pytest.mark.parametrize("executor", ["sequential", "pipelined"])
@pytest.mark.parametrize("fault", list(FAULT_LINES))
def test_environment_faults_stop_the_run_with_one_line_and_the_summary(
    tmp_path, tiny_upscaler, monkeypatch, fault, executor
):
    """Disk full, a read-only --output-dir or a lost GPU end the run (exit 4) with one error
    line and the summary; no file counts as failed, nothing partial or hidden is left behind,
    originals are untouched. Sequentially the run stops at the first file; the pipelined
    executor gives back, unwritten, the files it had decoded ahead."""
    folder = tmp_path / "in"
    folder.mkdir()
    count = 4 if executor == "sequential" else 8
    for index in range(count):
        make_png(folder / f"{index}.png", seed=index)
    before = originals(folder)
    calls = count_calls(monkeypatch)
    extra = inject_environment_fault(fault, monkeypatch, tmp_path, executor)
    workers = 0 if executor == "sequential" else 2
    result = fix(tiny_upscaler, folder, *extra, workers=workers)
    assert result.exit_code == 4, result.output
    errors = [line for line in result.stderr.splitlines() if " error: " in line]
    assert all(ISO.match(line) for line in errors)  # timestamped like every other line
    assert len(errors) == 1 and " error: stopped: " in errors[0]
    assert FAULT_LINES[fault] in errors[0]
    assert "processed 0, skipped 0, failed 0" in result.stderr
    if fault == "read-only output-dir":
        # README: before any network loads, an --output-dir that cannot be written stops the
        # run; the write probe there is refused like every output would be
        assert calls == [] and f"not started {count}" in result.stderr
    elif executor == "sequential":
        assert len(calls) == 1  # stopped at the first write, not after upscaling everything
        assert "not started 3" in result.stderr  # the file the fault hit was attempted
    assert originals(folder) == before and hidden_files(tmp_path) == []
    assert not list(tmp_path.rglob("*.fixed.png"))


def test_a_permission_error_beside_the_inputs_fails_that_file_only(
    tmp_path, tiny_upscaler, monkeypatch
):
    for index in range(3):
        make_png(tmp_path / f"{index}.png", seed=index)
    real_create = safefs.create_exclusive

    def refuse_one(name, *args, **kwargs):
        if str(name).endswith(".tmp") and "1.fixed" in str(name):
            raise PermissionError(errno.EACCES, "Permission denied", str(name))
        return real_create(name, *args, **kwargs)

    monkeypatch.setattr(safefs, "create_exclusive", refuse_one)
    result = fix(tiny_upscaler, tmp_path, "--json")
    summary = json.loads(result.stdout)
    assert result.exit_code == 1 and (summary["processed"], summary["failed"]) == (2, 1)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_stop_like_ctrl_c_with_summary_json_and_exit_143(
    tmp_path, tiny_upscaler, monkeypatch, signum
):
    for index in range(3):
        make_png(tmp_path / f"{index}.png", seed=index)
    real_fsync = os.fsync
    fsyncs: list[int] = []

    def signalled(fd):  # the signal arrives while the second output's temporary file is open
        fsyncs.append(fd)
        real_fsync(fd)
        if len(fsyncs) == 2:
            os.kill(os.getpid(), signum)

    monkeypatch.setattr(os, "fsync", signalled)
    handler = signal.getsignal(signum)
    result = fix(tiny_upscaler, tmp_path, "--json")
    assert signal.getsignal(signum) == handler  # restored after the run
    assert result.exit_code == 143, result.output
    summary = json.loads(result.stdout)
    assert summary["signal"] == signum and summary["processed"] == 1
    assert summary["not_started"] == 2 and summary["exit_code"] == 143
    assert f"interrupted by {signal.Signals(signum).name}" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir() if "fixed" in p.name) == ["0.fixed.png"]
    assert hidden_files(tmp_path) == []


def test_max_time_stops_starting_files_and_exits_0(tmp_path, tiny_upscaler, monkeypatch):
    import facefix_cli.pipeline.settings as settings_module

    for index in range(3):
        make_png(tmp_path / f"{index}.png", seed=index)
    clock = iter(range(0, 10_000, 100))  # every look at the clock is 100 s later
    monkeypatch.setattr(settings_module, "time", SimpleNamespace(monotonic=lambda: next(clock)))
    # in this test process "since the process started" would be since pytest started
    monkeypatch.setattr("facefix_cli.pipeline.clock.process_age", lambda: 0.0)
    result = fix(tiny_upscaler, tmp_path, "--max-time", "2.5m")
    assert result.exit_code == 0, result.output
    assert "stopped: --max-time 2.5m reached; 2 files left for the next run" in result.stderr
    assert "processed 1," in result.stderr and "not started 2" in result.stderr
    assert len(list(tmp_path.glob("*.fixed.png"))) == 1
    assert fix(tiny_upscaler, tmp_path, "--max-time", "soon").exit_code == 2


def test_two_inputs_never_share_an_output_and_dry_run_shows_the_names(tmp_path, tiny_upscaler):
    folder = tmp_path / "one"
    folder.mkdir()
    make_png(folder / "a.png")
    Image.fromarray(quantize(gradient_image(12, 12, 5), 8)).save(folder / "a.jpg")
    other = tmp_path / "two" / "one"
    other.mkdir(parents=True)
    make_png(other / "a.png", seed=2)
    out = tmp_path / "out"
    args = (folder, tmp_path / "two", "--ext", "png,jpg", "--output-dir", out)
    dry = fix(tiny_upscaler, *args, "--dry-run")
    assert dry.exit_code == 0, dry.output
    for expected in ("one/a.fixed.png", "one/a.jpg.fixed.png", "two/one/a.fixed.png"):
        assert f"-> {out / expected}" in dry.stderr
    result = fix(tiny_upscaler, *args, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["processed"] == 3
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png")) == [
        "one/a.fixed.png",
        "one/a.jpg.fixed.png",
        "two/one/a.fixed.png",
    ]


def test_a_file_claimed_by_a_live_run_is_skipped(tmp_path, tiny_upscaler):
    make_png(tmp_path / "a.png")
    make_png(tmp_path / "b.png")
    claimed = claim_path(tmp_path / "a.fixed.png")
    claimed.write_text(json.dumps({"host": claims.HOST, "pid": os.getpid(), "token": "other"}))
    result = fix(tiny_upscaler, tmp_path, "--json", "-v")
    assert result.exit_code == 0, result.output
    reasons = {Path(f["source"]).name: f["reason"] for f in json.loads(result.stdout)["files"]}
    assert reasons["a.png"] == "being fixed by another run"
    assert "skipped: " in result.stderr and claimed.exists()
    assert not (tmp_path / "a.fixed.png").exists() and (tmp_path / "b.fixed.png").exists()


def test_cron_logs_timestamps_run_start_line_and_no_skip_lines(tmp_path, tiny_upscaler):
    # its own copy: the shared file's sidecar remembers that an earlier test's log warned today
    own = tmp_path / "weights" / tiny_upscaler.name
    own.parent.mkdir()
    shutil.copy(tiny_upscaler, own)
    tiny_upscaler = own
    make_png(tmp_path / "a.png")
    first = fix(tiny_upscaler, tmp_path).stderr.splitlines()
    # --upscaler PATH is no released file: one warning line about it (README "Output, logs and
    # exit codes"), as the first file finishes, just before its line
    warnings = [index for index, line in enumerate(first) if " warning: " in line]
    assert warnings == [len(first) - 3], first
    assert first[-3].endswith(
        " warning: tiny_x2.pth is not a release; outputs record its own SHA-256"
        " (facefix models --verify)"
    )
    make_png(tmp_path / "b.png", seed=1)
    result = fix(tiny_upscaler, tmp_path)
    lines = result.stderr.splitlines()
    assert result.exit_code == 0 and all(ISO.match(line) for line in lines), lines
    # the next cron run, minutes later, does not say it again: once a day in a log (issue #30)
    assert not any(" warning: " in line for line in lines), lines
    # the start line first, before the walk; the load starts as the walk finds work
    assert "fix: upscaler tiny_x2.pth" in lines[0] and lines[0].endswith("; finding images")
    assert lines[1].endswith(" found files to do: loading the networks while finding the rest")
    assert lines[2].endswith(" found 2, to do 1, skipped 1, failed 0; device cpu")
    # then what the run waits for, if the load is still going: the load, with its age
    waits = lines[3:-2]
    assert all(" loading tiny_x2.pth on cpu (started " in line for line in waits), lines
    assert not any("skipped: " in line for line in lines) and "fixed: " in lines[-2]
    assert "processed 1, skipped 1" in lines[-1] and len(lines) <= 6
    verbose = fix(tiny_upscaler, tmp_path, "-v")
    assert sum("skipped: " in line for line in verbose.stderr.splitlines()) == 2


def test_json_is_printed_on_exit_2_and_offline_setup_errors_print_nothing_before(tmp_path):
    make_png(tmp_path / "a.png")
    make_png(tmp_path / "b.png")
    make_png(tmp_path / "b.fixed.png")  # would be a "skipped" line
    empty = tmp_path / "none"
    result = runner.invoke(
        app, ["fix", str(tmp_path), "-U", "2", "--offline", "--json", "--weights-dir", str(empty)]
    )
    assert result.exit_code == 2
    # the start line, then the error (README: each missing file on its own line and one next
    # step that works offline); no file line before it
    lines = result.stderr.splitlines()
    assert len(lines) == 4 and lines[0].endswith("; finding images")
    assert all(ISO.match(line) for line in lines)
    assert lines[1].endswith(
        f" error: missing model weights in {empty} (offline, not downloading):"
    )
    assert lines[2].endswith("   RealESRGAN_x2plus.pth")
    assert " next: copy them there, pass --mirror DIR" in lines[3]
    assert "facefix models --find" in lines[3]
    record = json.loads(result.stdout)
    assert record["exit_code"] == 2
    assert record["error"].startswith(
        f"missing model weights in {empty} (offline, not downloading):\n  RealESRGAN_x2plus.pth\nnext: "
    )


def test_a_run_with_nothing_to_do_still_removes_what_killed_runs_left(tmp_path, tiny_upscaler):
    import subprocess
    import sys

    from facefix_cli.io.names import temporary_path

    make_png(tmp_path / "a.png")
    make_png(tmp_path / "a.fixed.png")
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # a pid that is certainly gone
    owner = {"host": claims.HOST, "pid": child.pid, "token": "dead"}
    claim_path(tmp_path / "a.fixed.png").write_text(json.dumps(owner))
    temporary_path(tmp_path / "b.fixed.png", child.pid).write_bytes(b"truncated")
    result = fix(tiny_upscaler, tmp_path)
    assert result.exit_code == 0, result.output
    assert hidden_files(tmp_path) == []
