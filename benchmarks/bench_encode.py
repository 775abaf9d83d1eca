"""PNG encode time and size per --png-level: the CPU stage that bounds a fast GPU.

Inputs are the real InvokeAI renders in tests/fixtures/invokeai/, upscaled x2 with bicubic
(what an upscaled output compresses like), encoded with facefix's own `encode_png` (OpenCV's
libpng and zlib, one OpenCV thread, as each pipelined worker thread runs it). Prints, per level,
milliseconds per image (median of --repeat rounds), megabytes per image, and both as ratios
against level 6 (facefix 0.1's fixed level) measured in the same run.

    uv run python benchmarks/bench_encode.py --levels 0,1,3,6,9 --repeat 3
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from facefix_cli.io.read import read_image  # noqa: E402
from facefix_cli.io.write import encode_png  # noqa: E402
from facefix_cli.metadata import chunks_from_bytes  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "invokeai"


def upscaled_renders(scale: int) -> list[np.ndarray]:
    images = []
    for path in sorted(FIXTURES.glob("0000*.png")):
        rgb = read_image(path, chunks_from_bytes).rgb
        height, width = rgb.shape[:2]
        images.append(
            np.clip(cv2.resize(rgb, (width * scale, height * scale), cv2.INTER_CUBIC), 0, 1)
        )
    return images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="0,1,3,6,9")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--scale", type=int, default=2)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    images = upscaled_renders(args.scale)
    pixels = sum(i.shape[0] * i.shape[1] for i in images) / len(images)
    print(f"{platform.processor() or platform.machine()}, Python {platform.python_version()}, "
          f"OpenCV {cv2.__version__}; {len(images)} images, mean {pixels / 1e6:.2f} MP, 8-bit RGB, "
          "1 thread")  # fmt: skip
    rows = {}
    for level in (int(text) for text in args.levels.split(",")):
        rounds, size = [], 0
        for _ in range(args.repeat):
            started = time.perf_counter()
            size = sum(len(encode_png(image, None, 8, [], level)) for image in images)
            rounds.append((time.perf_counter() - started) / len(images))
        rows[level] = (statistics.median(rounds), size / len(images))
    base_seconds, base_bytes = rows.get(6, next(iter(rows.values())))
    print("| level | ms/image | MB/image | time vs 6 | size vs 6 |")
    print("|---:|---:|---:|---:|---:|")
    for level, (seconds, size) in rows.items():
        print(f"| {level} | {seconds * 1000:.0f} | {size / 1e6:.2f} | "
              f"{seconds / base_seconds:.2f}x | {size / base_bytes:.2f}x |")  # fmt: skip


if __name__ == "__main__":
    main()
