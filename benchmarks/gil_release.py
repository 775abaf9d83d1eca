"""Do PNG decode/encode and zlib release the GIL? The measurement behind the pipelined
executor's choice of threads over processes.

Two figures per operation:
- heartbeat gap: while one thread calls the operation in a loop, a pure-Python thread wakes
  every millisecond and records the longest time it had to wait. An operation that holds the
  GIL starves it for a whole call (gap ~ the call's duration); one that releases it lets it in
  within the interpreter's switch interval (5 ms) or the OS scheduler's slice. This figure does
  not depend on how busy the machine's cores are.
- speed-up: the same total work in 1 thread and in `--threads` threads (needs free cores; on
  a shared machine read it as a hint only). `sum(range(n))`, one C call that
  never releases the GIL, is the reference.
Usage:

    uv run python benchmarks/gil_release.py --size 512 --threads 2
"""

from __future__ import annotations

import argparse
import os
import threading
import time
import zlib
from collections.abc import Callable

import cv2
import numpy as np

cv2.setNumThreads(1)  # one OpenCV thread per call: only our threads give parallelism


def seconds(work: Callable[[], object], repeat: int, threads: int) -> float:
    per_thread = repeat // threads

    def loop() -> None:
        for _ in range(per_thread):
            work()

    pool = [threading.Thread(target=loop) for _ in range(threads)]
    start = time.perf_counter()
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return time.perf_counter() - start


def heartbeat_gap(work: Callable[[], object], repeat: int) -> tuple[float, float]:
    """(longest wait of a Python heartbeat thread, mean call time) while `work` loops."""
    done = threading.Event()
    longest = 0.0

    def heartbeat() -> None:
        nonlocal longest
        last = time.perf_counter()
        while not done.is_set():
            time.sleep(0.001)
            now = time.perf_counter()
            longest = max(longest, now - last)
            last = now

    beat = threading.Thread(target=heartbeat)
    beat.start()
    time.sleep(0.02)
    start = time.perf_counter()
    for _ in range(repeat):
        work()
    call = (time.perf_counter() - start) / repeat
    done.set()
    beat.join()
    return longest, call


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512, help="image side in pixels")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=8, help="calls in total per operation")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    # A smooth picture with noise compresses like a render (pure noise would not compress).
    y, x = np.mgrid[0 : args.size, 0 : args.size]
    base = np.stack([x, y, (x + y) // 2], axis=2) * (255.0 / args.size)
    image = np.clip(base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8)
    encoded = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 6])[1].tobytes()
    raw = image.tobytes()

    def holds_the_gil() -> int:
        return sum(range(3_000_000))  # one C call that never releases the GIL

    operations: dict[str, Callable[[], object]] = {
        "cv2.imdecode (PNG)": lambda: cv2.imdecode(np.frombuffer(encoded, np.uint8), -1),
        "cv2.imencode (PNG, level 6)": lambda: cv2.imencode(
            ".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 6]
        ),
        "zlib.compress (level 6)": lambda: zlib.compress(raw, 6),
        "numpy float32 convert + scale": lambda: image.astype(np.float32) / 255.0,
        "sum(range) (holds the GIL)": holds_the_gil,
    }
    print(
        f"{args.size}x{args.size} RGB, {args.repeat} calls, 1 vs {args.threads} threads, "
        f"{os.cpu_count()} cores visible"
    )
    print(
        f"{'operation':32s} {'call':>9s} {'heartbeat gap':>14s} "
        f"{'1 thread':>10s} {f'{args.threads} threads':>10s} {'speed-up':>9s}"
    )
    for name, work in operations.items():
        work()  # warm-up
        gap, call = heartbeat_gap(work, args.repeat)
        one = seconds(work, args.repeat, 1)
        many = seconds(work, args.repeat, args.threads)
        print(
            f"{name:32s} {call * 1000:7.1f}ms {gap * 1000:12.1f}ms "
            f"{one:9.3f}s {many:9.3f}s {one / many:8.2f}x"
        )


if __name__ == "__main__":
    main()
