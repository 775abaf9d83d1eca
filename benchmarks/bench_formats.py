"""Output formats (`--format`): bytes, encode time and peak memory per format against PNG, and a
whole `fix` run with `--format webp` against PNG.

Parts (`--parts sizes,encode,run`):

- sizes: the real renders in tests/fixtures/invokeai/ (`0000*.png`, the InvokeAI renders with
  their metadata) enlarged x2 with bicubic (what an upscaled output compresses like), written
  through facefix's own path (`output_chunks` + `embedded_metadata` + `OutputFormat.encode`),
  each format at its default quality; bytes per image and as a share of the PNG's (default
  --png-level 1).
- encode: one synthetic render-like image (smooth gradients, noise, an edge) of each --sizes
  side, encoded once per format in a fresh process: CPU seconds of the encode (including the
  float-to-8-bit quantize) and the process's peak RSS growth during it (`ru_maxrss`: what the
  encoder and its buffers add on top of the float pixels a worker already holds).
- run: `pipeline.fix` over --images copies of the renders at x2 (the stand-in x2plus weights in
  --weights-dir, else a one-block random x2 so the encode's share shows; `--workers 0`, the
  CPU), PNG then WebP, --rounds times; CPU seconds per run and the ratio.

    uv run python benchmarks/bench_formats.py --parts sizes,encode --sizes 2048,8192
    uv run python benchmarks/bench_formats.py --parts run --images 8 --rounds 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FIXTURES = ROOT / "tests" / "fixtures" / "invokeai"
RECORD = {"facefix_version": "bench", "operations": [], "source": {"file": "x", "sha256": "0"}}


def formats():
    from facefix_cli.io.outputs import OutputFormat

    return [f for f in OutputFormat if f.available()]


def encoded(fmt, pixels, chunks) -> bytes:
    from facefix_cli.io.encode import EncodeOptions
    from facefix_cli.metadata import embedded_metadata

    carried = chunks if fmt.carrier == "png chunks" else embedded_metadata(chunks, fmt)
    return fmt.encode(pixels, carried, EncodeOptions())


def sizes(scale: int) -> None:
    import cv2
    import numpy as np

    from facefix_cli.io.encode import OutputPixels
    from facefix_cli.io.read import read_image
    from facefix_cli.metadata import chunks_from_bytes, output_chunks

    print(f"\nsizes: real renders x{scale} (bicubic), default qualities, metadata included")
    print(f"{'image':28} {'MP':>5} " + " ".join(f"{f.value:>14}" for f in formats()))
    shares: dict[str, list[float]] = {f.value: [] for f in formats()}
    for path in sorted(FIXTURES.glob("0000*.png")):
        source = read_image(path, chunks_from_bytes)
        height, width = source.rgb.shape[:2]
        big = cv2.resize(source.rgb, (width * scale, height * scale), interpolation=cv2.INTER_CUBIC)
        pixels = OutputPixels(np.clip(big, 0, 1), None, source.bit_depth)
        chunks = output_chunks(source.chunks, [], RECORD)
        row = {f.value: len(encoded(f, pixels, chunks)) for f in formats()}
        for name, size in row.items():
            shares[name].append(size / row["png"])
        cells = " ".join(f"{size / 1e6:6.2f} MB {size / row['png']:4.0%}" for size in row.values())
        print(f"{path.name:28} {width * height * scale * scale / 1e6:5.2f} {cells}")
    mean = " ".join(f"{sum(v) / len(v):14.1%}" for v in shares.values())
    print(f"{'mean share of PNG':34} {mean}")


def synthetic(side: int):
    import numpy as np

    y, x = np.mgrid[0:side, 0:side].astype(np.float32) / side
    rng = np.random.default_rng(0)
    rgb = np.empty((side, side, 3), np.float32)
    rgb[:, :, 0] = 0.5 + 0.4 * np.sin(6 * x + 3 * y)
    rgb[:, :, 1] = 0.3 + 0.5 * y
    rgb[:, :, 2] = np.where(x + y > 1, 0.7, 0.2)
    rgb += rng.standard_normal(rgb.shape, dtype=np.float32) * 0.02
    np.clip(rgb, 0, 1, out=rgb)
    return rgb


def encode_once(fmt_name: str, pixels_file: str) -> dict:
    """In this (fresh) process: one encode of the float pixels saved in `pixels_file` (loaded
    without temporaries, so the high-water mark before the encode is the pixels themselves);
    CPU seconds and RSS growth."""
    import numpy as np

    from facefix_cli.io.encode import OutputPixels
    from facefix_cli.io.outputs import OutputFormat

    fmt = OutputFormat(fmt_name)
    pixels = OutputPixels(np.load(pixels_file), None, 8)
    encoded(fmt, OutputPixels(synthetic(64), None, 8), [])  # imports and first-call costs
    before = current_rss()
    peak = [before]
    done = threading.Event()

    def sample() -> None:  # the RSS's peak during the encode, every millisecond
        while not done.is_set():
            peak[0] = max(peak[0], current_rss())
            time.sleep(0.001)

    sampler = threading.Thread(target=sample)
    sampler.start()
    cpu, wall = time.process_time(), time.perf_counter()
    data = encoded(fmt, pixels, [])
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    done.set()
    sampler.join()
    peak[0] = max(peak[0], current_rss())
    growth = (peak[0] - before) / 2**20
    return {"cpu": cpu, "wall": wall, "peak_mib": growth, "mb": len(data) / 1e6}


def current_rss() -> int:
    """This process's resident bytes now (Linux: /proc/self/statm)."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def encode(sides: list[int]) -> None:
    print("\nencode: one image per format and size, each in a fresh process (1 process, "
          "the encoders' own threads)")  # fmt: skip
    print(f"{'side':>6} {'format':>6} {'CPU s':>8} {'wall s':>8} {'x PNG CPU':>10} "
          f"{'peak +MiB':>10} {'MB':>8}")  # fmt: skip
    import numpy as np

    for side in sides:
        png_cpu = None
        with tempfile.TemporaryDirectory() as scratch:
            pixels_file = str(Path(scratch) / "pixels.npy")
            np.save(pixels_file, synthetic(side))
            rows = []
            for fmt in formats():
                out = subprocess.run(
                    [sys.executable, __file__, "--encode-once", f"{fmt.value}:{pixels_file}"],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                rows.append((fmt, out))
        for fmt, out in rows:
            row = json.loads(out.stdout.strip().splitlines()[-1])
            png_cpu = row["cpu"] if png_cpu is None else png_cpu
            print(f"{side:6} {fmt.value:>6} {row['cpu']:8.2f} {row['wall']:8.2f} "
                  f"{row['cpu'] / png_cpu:10.2f} {row['peak_mib']:10.0f} {row['mb']:8.2f}")  # fmt: skip


def tiny_upscaler(folder: Path) -> Path:
    """A one-block random Real-ESRGAN x2 (the tests' builder): a network that costs little, so
    what the format costs shows in the whole run (the worst case for a slower encoder)."""
    import torch

    sys.path.insert(0, str(ROOT / "tests"))
    from checkpoints import realesrgan_state_dict

    path = folder / "tiny_x2.pth"
    torch.save(realesrgan_state_dict(2, num_block=1), path)
    return path


def run(images: int, weights_dir: Path | None, rounds: int) -> None:
    from facefix_cli import pipeline
    from facefix_cli.recipe import Recipe

    renders = sorted(FIXTURES.glob("0000*.png"))
    with tempfile.TemporaryDirectory() as scratch:
        if weights_dir is None:
            recipe = Recipe(upscaler_path=tiny_upscaler(Path(scratch)))
            network = "a one-block random x2 (so the encode's share shows)"
        else:
            recipe, network = Recipe(scale=2), f"x2plus from {weights_dir}"
        print(f"\nrun: fix on {images} renders (512 px and one 960x1920) at x2 with {network}, "
              "CPU, --workers 0; CPU seconds of the process")  # fmt: skip
        seconds: dict[str, list[tuple[float, float]]] = {"png": [], "webp": []}
        for round_ in range(rounds):
            for fmt in ("png", "webp"):
                folder = Path(scratch) / f"{fmt}{round_}"
                folder.mkdir()
                for i in range(images):
                    shutil.copy(renders[i % len(renders)], folder / f"{i:03d}.png")
                settings = pipeline.RunSettings(
                    weights_dir=weights_dir or Path(scratch) / "weights",
                    device="cpu",
                    offline=True,
                    workers=0,
                    output_format=fmt,  # type: ignore[arg-type]
                )
                cpu, wall = time.process_time(), time.perf_counter()
                summary = pipeline.fix([folder], recipe, settings)
                cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
                seconds[fmt].append((cpu, wall))
                assert summary.count(pipeline.Status.FIXED) == images, summary
                print(f"  round {round_ + 1} {fmt:>4}: {cpu:6.1f} CPU s, {wall:6.1f} wall s")
    best = {fmt: min(cpu for cpu, _wall in v) for fmt, v in seconds.items()}
    print(f"best of {rounds} (CPU s): png {best['png']:.1f}, webp {best['webp']:.1f}; "
          f"webp's speed / png's = {best['png'] / best['webp']:.2f}x")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="sizes,encode")
    parser.add_argument("--scale", type=int, default=2)
    parser.add_argument("--sizes", default="2048")
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--weights-dir", type=Path, default=None, help="run x2plus from here (default: tiny)"
    )
    parser.add_argument("--encode-once", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.encode_once:
        name, pixels_file = args.encode_once.split(":", 1)
        print(json.dumps(encode_once(name, pixels_file)))
        return
    import PIL

    cores = len(os.sched_getaffinity(0))
    print(f"{platform.processor() or platform.machine()}, {cores} cores, Python "
          f"{platform.python_version()}, Pillow {PIL.__version__}; formats: "
          f"{', '.join(f.value for f in formats())}")  # fmt: skip
    parts = args.parts.split(",")
    if "sizes" in parts:
        sizes(args.scale)
    if "encode" in parts:
        encode([int(side) for side in args.sizes.split(",")])
    if "run" in parts:
        run(args.images, args.weights_dir, args.rounds)


if __name__ == "__main__":
    main()
