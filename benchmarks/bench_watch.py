"""What `facefix watch` costs and how fast it answers (issue 29), against `fix`, as real processes.

1. Latency: a render written in a staging folder and renamed into the watched tree; from the
   rename to its output in place (the output's appearance seen by polling stat every 5 ms),
   minus the file's own processing time (its `seconds` in the watch's JSON event). Median and
   worst over --files renders, with kernel events and with --poll.
2. Idle: CPU-seconds (user + system, /proc/PID/stat) of a watch doing nothing for --idle
   seconds, per minute: with kernel events over a small tree, and polling every 10 s over a
   tree of --done-files finished files (empty `x.png` + `x.fixed.png` pairs: the walk decides
   from the listings and opens none of them).
3. Memory: VmRSS after --rss-small files and after --rss-large files, dropped in batches.
4. Backlog: --backlog files present at start; seconds from process start to the last output,
   `fix` against `watch` (both pay the same imports and load), on the same inputs.

Every process runs `--workers 0 --threads N` on a random-weight tiny x2 Real-ESRGAN
(tests/checkpoints.py: one RRDB block) and 16x16 PNGs, so the figures are the watch's own
overhead, not the networks'.

Usage (a few minutes on 2 cores):

    python benchmarks/bench_watch.py --files 20 --idle 60 --rss-small 100 --rss-large 1000
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from watch_process import WatchProcess, facefix_argv, facefix_env, named  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")


def png(seed: int, size: int = 16) -> bytes:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    out = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(out, "PNG")
    return out.getvalue()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cli(command: str, upscaler: Path, threads: int, *args: str) -> list[str]:
    return facefix_argv(command, upscaler, "--threads", str(threads), *args)


def start_watch(upscaler: Path, threads: int, env: dict[str, str], *args: str) -> WatchProcess:
    """`facefix watch --json` over ARGS, once it watches (its backlog done)."""
    watch = WatchProcess(cli("watch", upscaler, threads, "--json", *args), env, subprocess.DEVNULL)
    watch.next(named("watching"), timeout=600)
    return watch


def wait_exists(path: Path, timeout: float = 120) -> float:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(path)
        time.sleep(0.005)
    return time.monotonic()


def latency(
    upscaler: Path, work: Path, env: dict[str, str], args: argparse.Namespace, poll: float | None
) -> dict[str, float]:
    tree, staging = work / "lat-tree", work / "lat-staging"
    shutil.rmtree(tree, ignore_errors=True)
    tree.mkdir(parents=True)
    staging.mkdir(parents=True, exist_ok=True)
    extra = ["--poll", str(poll)] if poll is not None else []
    watch = start_watch(upscaler, args.threads, env, str(tree), *extra)
    beyond: list[float] = []
    for index in range(args.files):
        (staging / f"{index}.png").write_bytes(png(index))
        begun = time.monotonic()
        os.rename(staging / f"{index}.png", tree / f"{index}.png")
        seen = wait_exists(tree / f"{index}.fixed.png")
        event = watch.next(named("file"), timeout=600)
        beyond.append(seen - begun - event["seconds"])
        time.sleep(0.2)
    watch.stop()
    return {"median": statistics.median(beyond), "worst": max(beyond)}


def idle(
    upscaler: Path, work: Path, env: dict[str, str], args: argparse.Namespace, poll: float | None
) -> float:
    tree = work / ("idle-poll-tree" if poll else "idle-tree")
    if not tree.exists():
        tree.mkdir(parents=True)
        pairs = args.done_files // 2 if poll else 5
        for index in range(pairs):
            folder = tree / f"d{index // 1000}"
            folder.mkdir(exist_ok=True)
            (folder / f"{index}.png").touch()
            (folder / f"{index}.fixed.png").touch()
    extra = ["--poll", str(poll)] if poll is not None else []
    watch = start_watch(upscaler, args.threads, env, str(tree), *extra)
    time.sleep(2)  # the end of the start-up
    before = cpu_seconds(watch.process.pid)
    time.sleep(args.idle)
    used = cpu_seconds(watch.process.pid) - before
    watch.stop()
    return used * 60 / args.idle


def memory(
    upscaler: Path, work: Path, env: dict[str, str], args: argparse.Namespace
) -> tuple[float, float]:
    tree, staging = work / "rss-tree", work / "rss-staging"
    shutil.rmtree(tree, ignore_errors=True)
    tree.mkdir(parents=True)
    staging.mkdir(parents=True, exist_ok=True)
    data = png(0)
    watch = start_watch(upscaler, args.threads, env, str(tree))
    rss: dict[int, float] = {}
    done = 0
    for target in (args.rss_small, args.rss_large):
        while done < target:
            batch = min(50, target - done)
            folder = tree / f"b{done // 500}"
            folder.mkdir(exist_ok=True)
            for index in range(done, done + batch):
                (staging / f"{index}.png").write_bytes(data)
                os.rename(staging / f"{index}.png", folder / f"{index}.png")
            for _ in range(batch):
                watch.next(named("file"), timeout=600)
            done += batch
        time.sleep(1)
        rss[target] = rss_mb(watch.process.pid)
    watch.stop()
    return rss[args.rss_small], rss[args.rss_large]


def backlog(
    upscaler: Path, work: Path, env: dict[str, str], args: argparse.Namespace
) -> tuple[float, float]:
    seconds = []
    for command in ("fix", "watch"):
        tree = work / f"backlog-{command}"
        shutil.rmtree(tree, ignore_errors=True)
        tree.mkdir(parents=True)
        for index in range(args.backlog):
            (tree / f"{index}.png").write_bytes(png(index))
        if command == "fix":
            begun = time.monotonic()
            subprocess.run(
                cli("fix", upscaler, args.threads, str(tree)),
                env=env,
                check=True,
                capture_output=True,
            )
            seconds.append(time.monotonic() - begun)
        else:
            watch = start_watch(upscaler, args.threads, env, str(tree))
            seconds.append(time.monotonic() - watch.started)
            watch.stop()
        assert len(list(tree.glob("*.fixed.png"))) == args.backlog
    return seconds[0], seconds[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--poll", type=float, default=1.0)
    parser.add_argument("--idle", type=float, default=60.0)
    parser.add_argument("--done-files", type=int, default=20_000)
    parser.add_argument("--rss-small", type=int, default=100)
    parser.add_argument("--rss-large", type=int, default=1000)
    parser.add_argument("--backlog", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--parts", default="latency,idle,memory,backlog")
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    parts = set(args.parts.split(","))

    from checkpoints import realesrgan_state_dict, save_params_ema

    work = args.work or Path(tempfile.mkdtemp(prefix="bench-watch-"))
    work.mkdir(parents=True, exist_ok=True)
    upscaler = save_params_ema(realesrgan_state_dict(2, num_block=1), work / "tiny_x2.pth")
    env = facefix_env(args.threads)
    print(f"cores {os.cpu_count()}, threads {args.threads}, work {work}")
    if "latency" in parts:
        kernel = latency(upscaler, work, env, args, None)
        print(
            f"latency beyond the file's own time, kernel events, {args.files} files: "
            f"median {kernel['median']:.3f} s, worst {kernel['worst']:.3f} s (target 0.5 s)"
        )
        polled = latency(upscaler, work, env, args, args.poll)
        print(
            f"latency beyond the file's own time, --poll {args.poll:g}, {args.files} files: "
            f"median {polled['median']:.3f} s, worst {polled['worst']:.3f} s "
            f"(target {args.poll + 0.5:g} s)"
        )
    if "idle" in parts:
        kernel_idle = idle(upscaler, work, env, args, None)
        print(f"idle, kernel events: {kernel_idle:.3f} CPU-s per minute (target 0.5)")
        poll_idle = idle(upscaler, work, env, args, 10.0)
        print(
            f"idle, --poll 10 over {args.done_files} done files: {poll_idle:.2f} CPU-s per "
            f"minute = {poll_idle / 60 * 100:.1f} % of one core (target 5 %)"
        )
    if "memory" in parts:
        small, large = memory(upscaler, work, env, args)
        print(
            f"RSS after {args.rss_small} files {small:.1f} MB, after {args.rss_large} files "
            f"{large:.1f} MB: {(large / small - 1) * 100:+.1f} % (target within 5 %)"
        )
    if "backlog" in parts:
        fix_s, watch_s = backlog(upscaler, work, env, args)
        print(
            f"backlog of {args.backlog} files, process start to the last output: fix "
            f"{fix_s:.1f} s, watch {watch_s:.1f} s (watch/fix {watch_s / fix_s:.2f})"
        )


if __name__ == "__main__":
    main()
