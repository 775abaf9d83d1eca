"""Real processes: runs killed with SIGKILL at several points then rerun, SIGTERM from outside,
and two runs over the same folder at once. Each run is `python faulty_cli.py fix ...` (the CLI
with one injected fault, see that file), upscale-only with a one-block upscaler on tiny images."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from checkpoints import realesrgan_state_dict, save_params_ema
from conftest import gradient_image, hidden_leftovers, snapshot
from PIL import Image

from facefix_cli.io.write import quantize

HERE = Path(__file__).resolve().parent
FILES = 4


@pytest.fixture(scope="module")
def tiny_upscaler(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tiny")
    return save_params_ema(realesrgan_state_dict(2, num_block=1), folder / "tiny_x2.pth")


@pytest.fixture
def folder(tmp_path) -> Path:
    inputs = tmp_path / "in"
    inputs.mkdir()
    for index in range(FILES):
        Image.fromarray(quantize(gradient_image(12, 12, index), 8)).save(inputs / f"{index}.png")
    return inputs


def start(
    folder: Path, upscaler: Path, fault: str = "", *extra: str, workers: int = 0
) -> subprocess.Popen:
    env = {**os.environ, "FACEFIX_FAULT": fault, "OMP_NUM_THREADS": "1"}
    argv = [sys.executable, str(HERE / "faulty_cli.py"), "fix", str(folder), "--upscaler"]
    argv += [str(upscaler), "--weights-dir", str(upscaler.parent), "--workers", str(workers)]
    argv += extra
    return subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=HERE.parent
    )


def finish(process: subprocess.Popen) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=300)
    return process.returncode, out, err


def originals(folder: Path) -> dict:
    return {p: v for p, v in snapshot(folder).items() if ".fixed." not in p.name}


def hidden(folder: Path) -> list[str]:
    return hidden_leftovers(folder)


def wait_for(condition, what: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_killed_and_terminated_runs_leave_nothing_a_rerun_cannot_finish(
    folder, tiny_upscaler, tmp_path
):
    before = originals(folder)
    # SIGTERM from outside while the second image is being fixed: exit 143, summary, no temp.
    sync = tmp_path / "sync"
    sync.mkdir()
    process = start(folder, tiny_upscaler, f"hang:2:{sync}", "--json")
    wait_for(lambda: (sync / "ready").exists(), "the second image")
    process.send_signal(signal.SIGTERM)
    code, out, err = finish(process)
    assert code == 143, err
    assert "interrupted by SIGTERM" in err and "processed 1," not in err  # --json: no line
    record = json.loads(out)
    assert record["processed"] == 1 and record["signal"] == signal.SIGTERM
    assert hidden(folder) == []
    # SIGKILL at two more points (each process costs seconds of imports): in the middle of an
    # image with its temporary file written, and with an output in place but its claim not yet
    # released.
    for fault, leaves in (("kill-write:1", ".tmp"), ("kill-release:1", ".1.fixed.png.claim")):
        code, _, err = finish(start(folder, tiny_upscaler, fault))
        assert code == -signal.SIGKILL, err
        assert any(name.endswith(leaves) for name in hidden(folder)), (fault, hidden(folder))
    assert (folder / "1.fixed.png").exists()  # the last kill came after the rename
    code, out, err = finish(start(folder, tiny_upscaler, "", "--json"))
    assert code == 0, err
    record = json.loads(out)
    assert (record["processed"], record["skipped"]) == (2, 2)
    for index in range(FILES):
        assert Image.open(folder / f"{index}.fixed.png").size == (24, 24)
    assert hidden(folder) == []
    assert originals(folder) == before


def test_pipelined_runs_killed_at_any_write_are_finished_by_the_next_run(folder, tiny_upscaler):
    """The default executor holds claims for the files it decoded ahead: a SIGKILL leaves them
    (and a temporary file) behind, and the next run takes them over and finishes the work."""
    before = originals(folder)
    for fault, leaves in (("kill-write:1", ".tmp"), ("kill-release:2", ".claim")):
        code, _, err = finish(start(folder, tiny_upscaler, fault, workers=2))
        assert code == -signal.SIGKILL, err
        assert any(name.endswith(leaves) for name in hidden(folder)), (fault, hidden(folder))
    code, out, err = finish(start(folder, tiny_upscaler, "", "--json", workers=2))
    assert code == 0, err
    record = json.loads(out)
    assert record["processed"] + record["skipped"] == FILES and record["failed"] == 0
    for index in range(FILES):
        assert Image.open(folder / f"{index}.fixed.png").size == (24, 24)
    assert hidden(folder) == [] and originals(folder) == before


@pytest.mark.parametrize("workers", [0, 2], ids=["sequential", "pipelined"])
def test_two_runs_at_once_fix_each_file_exactly_once(folder, tiny_upscaler, tmp_path, workers):
    # The pipelined executor claims the files it decodes ahead (a few per worker): with the
    # four files alone the first run would hold them all before the second one started.
    files = FILES if workers == 0 else 24
    for index in range(FILES, files):
        Image.fromarray(quantize(gradient_image(12, 12, index), 8)).save(folder / f"{index}.png")
    sync = tmp_path / "sync"
    sync.mkdir()
    runs = [
        start(folder, tiny_upscaler, f"wait:{sync}", "--json", "-v", workers=workers)
        for _ in range(2)
    ]
    wait_for(lambda: len(list(sync.glob("ready.*"))) == 2, "both runs to start an image")
    (sync / "go").touch()
    results = [finish(run) for run in runs]
    assert [code for code, _, _ in results] == [0, 0], [err for _, _, err in results]
    records = [json.loads(out) for _, out, _ in results]
    fixed = sorted(
        Path(f["source"]).name for r in records for f in r["files"] if f["status"] == "fixed"
    )
    assert fixed == sorted(f"{index}.png" for index in range(files))  # each once, between them
    assert all(r["processed"] >= 1 for r in records)  # both did work
    reasons = [f["reason"] for r in records for f in r["files"] if f["status"] == "skipped"]
    assert "being fixed by another run" in reasons
    assert hidden(folder) == []


# A run killed by the OOM killer as a container's PID 1 (or any run whose PID this one now
# has) left claims naming a PID that is alive again: the start time tells them apart.
CLAIMED_BY_OWN_PID = """
import json, os, sys
from pathlib import Path
from facefix_cli.io import claims
from facefix_cli.io.names import claim_path
output = Path(sys.argv[1])
start = claims.process_start(os.getpid()) - 1  # this pid, but an earlier process
claim_path(output).write_text(json.dumps({"host": claims.HOST, "pid": os.getpid(),
    "start": start, "boot": claims.BOOT_ID, "token": "killed"}))
from facefix_cli.cli import main
main(["fix", *sys.argv[2:]])
"""


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux's /proc")
@pytest.mark.parametrize("owner", ["own pid", "pid 1", "live, same start"])
def test_claims_of_a_killed_run_whose_pid_is_alive_again_are_taken_over(
    folder, tiny_upscaler, owner
):
    from facefix_cli.io import claims
    from facefix_cli.io.names import claim_path

    output = folder / "0.fixed.png"
    args = [str(folder), "--upscaler", str(tiny_upscaler), "--weights-dir"]
    args += [str(tiny_upscaler.parent), "--workers", "0", "--json", "-v"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if owner == "own pid":
        argv = [sys.executable, "-c", CLAIMED_BY_OWN_PID, str(output), *args]
    else:
        pid = 1 if owner == "pid 1" else os.getpid()  # this test process: alive, and itself
        start = claims.process_start(pid)
        recorded = start if owner == "live, same start" else (start or 0) + 1
        claim_path(output).write_text(
            json.dumps({"host": claims.HOST, "pid": pid, "start": recorded, "token": "killed"})
        )
        argv = [sys.executable, "-m", "facefix_cli", "fix", *args]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    files = {Path(f["source"]).name: f for f in json.loads(done.stdout)["files"]}
    if owner == "live, same start":  # a live run holds it: left alone
        assert files["0.png"]["reason"] == "being fixed by another run"
        assert claim_path(output).exists() and not output.exists()
    else:
        assert files["0.png"]["status"] == "fixed" and output.exists()
        assert not claim_path(output).exists()
    assert all(files[f"{i}.png"]["status"] == "fixed" for i in range(1, FILES))
