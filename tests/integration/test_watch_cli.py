"""`facefix watch` as real processes (issue 29): the backlog, a render renamed in, a slow writer,
new sub-folders, a broken file reported once, a cron `fix` beside it, polling, SIGTERM idle and
mid-file, bad setup refused before waiting; outputs the bytes `fix` writes, originals untouched.

Two watch processes in all (each pays for importing torch once), with a tiny x2 upscaler; the
cron `fix` beside a watch runs in the test's own process, where torch is loaded already."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from checkpoints import realesrgan_state_dict, save_params_ema
from conftest import gradient_image
from PIL import Image
from watch_process import REPO, WatchProcess, facefix_argv, facefix_env

from facefix_cli.io.ledger import LEDGER_NAME
from facefix_cli.io.write import quantize

START_TIMEOUT = 240.0  # importing torch and loading on a busy 2-core machine


@pytest.fixture(scope="module")
def tiny_upscaler(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tiny")
    return save_params_ema(realesrgan_state_dict(2, num_block=1), folder / "tiny_x2.pth")


def png_bytes(seed: int, size: int = 12) -> bytes:
    out = io.BytesIO()
    Image.fromarray(quantize(gradient_image(size, size, seed), 8)).save(out, format="PNG")
    return out.getvalue()


def make_png(path: Path, seed: int = 0, size: int = 12) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png_bytes(seed, size))
    return path


def digests(folder: Path, pattern: str = "*.png") -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob(pattern))
        if not p.name.endswith(".fixed.png")
    }


def hidden_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob(".*") if p.is_file() and p.name != LEDGER_NAME]


def watching(upscaler: Path, *args: str) -> WatchProcess:
    """`facefix watch --json -v ARGS` with the tiny upscaler."""
    return WatchProcess(facefix_argv("watch", upscaler, "--json", "-v", *args))


def fixed(name: str) -> Callable[[dict[str, Any]], bool]:
    return lambda e: e["event"] == "file" and e["source"].endswith(name)


def test_watch_with_kernel_events(tmp_path, tiny_upscaler):
    from facefix_cli.errors import EXIT_FAILED
    from facefix_cli.pipeline import RunSettings, Status, fix
    from facefix_cli.recipe import Recipe

    recipe = Recipe(scale=1, upscaler_path=tiny_upscaler)
    tree, staging = tmp_path / "tree", tmp_path / "staging"
    make_png(tree / "old" / "a.png", seed=1)
    make_png(tree / "b.png", seed=2)
    make_png(tree / "done.png", seed=3)
    (tree / "done.fixed.png").write_bytes(b"an output from an earlier run")
    staging.mkdir()
    watch = watching(tiny_upscaler, str(tree))
    try:
        # the backlog, as fix would do it; the finished output left alone
        watch.wait_for(lambda e: e["event"] == "watching", timeout=START_TIMEOUT)
        backlog = next(e for e in watch.events if e["event"] == "backlog")
        assert (backlog["todo"], backlog["skipped"]) == (2, 1)
        assert watch.file_events("a.png")[0]["status"] == "fixed"
        assert (tree / "b.fixed.png").exists()
        assert (tree / "done.fixed.png").read_bytes() == b"an output from an earlier run"

        # a render renamed into place
        make_png(staging / "renamed.png", seed=4)
        os.rename(staging / "renamed.png", tree / "renamed.png")
        assert watch.wait_for(fixed("renamed.png"))["status"] == "fixed"

        # a slow writer: pieces over ~3 s, the file closed and reopened for each piece
        data = png_bytes(5, size=16)
        slow = tree / "slow.png"
        for piece in range(6):
            with open(slow, "ab") as fh:
                fh.write(data[len(data) * piece // 6 : len(data) * (piece + 1) // 6])
            time.sleep(0.5)
        assert watch.wait_for(fixed("slow.png"))["status"] == "fixed"

        # a new sub-folder, two deep, written into right away
        make_png(tree / "new" / "deeper" / "c.png", seed=6)
        assert watch.wait_for(fixed("c.png"))["status"] == "fixed"

        # a broken file: reported once, however long it sits there
        (tree / "broken.png").write_bytes(png_bytes(7)[:60])
        assert watch.wait_for(fixed("broken.png"))["status"] == "failed"

        # a cron `fix` beside the watch, over files that arrive as it starts: each once. The
        # fix runs in this process (torch is loaded here already): another process all the same
        for index in range(4):
            make_png(staging / f"cron{index}.png", seed=10 + index)
            os.rename(staging / f"cron{index}.png", tree / f"cron{index}.png")
        cron = fix([tree], recipe, RunSettings(weights_dir=tiny_upscaler.parent, workers=0))
        assert cron.exit_code == EXIT_FAILED  # it fails broken.png too
        assert {r.source.name for r in cron.results if r.status is Status.FAILED} == {"broken.png"}
        for index in range(4):
            watch.wait_for(fixed(f"cron{index}.png"))
        by_cron = {r.source.name for r in cron.results if r.status is Status.FIXED}
        for index in range(4):
            name = f"cron{index}.png"
            by_watch = [e for e in watch.file_events(name) if e["status"] == "fixed"]
            assert len(by_watch) + (name in by_cron) == 1, (name, by_watch, by_cron)

        # mid-file: a bigger image, SIGTERM as soon as it starts
        make_png(staging / "big.png", seed=20, size=384)
        os.rename(staging / "big.png", tree / "big.png")
        watch.wait_for(lambda e: e["event"] == "start" and e["source"].endswith("big.png"))
        code, summary, _ = watch.stop()
    finally:
        watch.process.kill()
    assert code == 0, watch.process.stderr.read() if watch.process.stderr else ""
    assert watch.unparsed == []  # stdout is JSON lines only
    assert summary["signal"] == signal.SIGTERM and summary["stopped"] == "stopped by SIGTERM"
    # no temporary file, no claim left; only the cron `fix`'s failure mark for the deliberately
    # broken file (README "What facefix remembers")
    assert hidden_files(tree) == [tree / ".broken.fixed.png.failed1"]
    big_output = tree / "big.fixed.png"
    if big_output.exists():  # finished before the signal landed: then whole
        with Image.open(big_output) as image:
            image.load()
    assert len(watch.file_events("broken.png")) == 1
    assert all(len(watch.file_events(n)) == 1 for n in ("slow.png", "renamed.png", "c.png"))
    assert not [e for e in watch.events if e["event"] == "file" and e["status"] == "crashed"]

    # the same bytes as `fix` writes for the same inputs
    again = tmp_path / "again"
    again.mkdir()
    for name in ("b.png", "slow.png", "renamed.png"):
        shutil.copyfile(tree / name, again / name)
    summary_fix = fix([again], recipe, RunSettings(weights_dir=tiny_upscaler.parent, workers=0))
    assert summary_fix.count(Status.FIXED) == 3
    for name in ("b", "slow", "renamed"):
        assert (again / f"{name}.fixed.png").read_bytes() == (
            tree / f"{name}.fixed.png"
        ).read_bytes()


def test_watch_polling_and_sigterm_idle(tmp_path, tiny_upscaler):
    tree = tmp_path / "tree"
    make_png(tree / "a.png", seed=1)
    before = digests(tree)
    watch = watching(tiny_upscaler, str(tree), "--poll", "0.5", "--settle", "1")
    try:
        event = watch.wait_for(lambda e: e["event"] == "watching", timeout=START_TIMEOUT)
        assert event["how"] == "polling every 0.5s"
        make_png(tree / "later" / "b.png", seed=2)  # no kernel event is looked at: a walk finds it
        seen = time.monotonic()
        assert watch.wait_for(fixed("b.png"))["status"] == "fixed"
        assert time.monotonic() - seen < 10
        code, summary, answered = watch.stop()
        assert answered < 5  # idle: the signal ends the wait at once (exit then unloads torch)
    finally:
        watch.process.kill()
    assert code == 0 and summary["processed"] == 2 and summary["signal"] == signal.SIGTERM
    assert watch.unparsed == []
    assert digests(tree) == before | {"later/b.png": digests(tree)["later/b.png"]}
    assert hidden_files(tree) == []


def test_bad_setup_exits_2_before_waiting(tmp_path, tiny_upscaler):
    tree = tmp_path / "tree"
    make_png(tree / "a.png")
    empty = tmp_path / "no-weights"
    empty.mkdir()
    started = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from facefix_cli.cli import main; main()",
            "watch",
            str(tree),
            "--upscale",
            "2",
            "--weights-dir",
            str(empty),
            "--order",
            "restore-first",  # ignored with one step: said as fix says it (issue #30)
            "--json",
        ],
        env=facefix_env(),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert events[-1]["event"] == "summary" and events[-1]["exit_code"] == 2
    assert any("missing model weights" in e.get("error", "") for e in events)
    warnings = [e["text"] for e in events if e["event"] == "warning"]
    assert any(text.startswith("--order restore-first is ignored") for text in warnings), events
    assert not list(tree.glob("*.fixed.png"))
    missing = subprocess.run(
        facefix_argv("watch", tiny_upscaler, str(tmp_path / "nowhere")),
        env=facefix_env(),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert missing.returncode == 2 and "is not one" in missing.stderr
    assert time.monotonic() - started < 120
