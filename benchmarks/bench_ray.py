"""The cost of `fix --ray` against a plain run of the same folder, as whole commands.

Builds random-weight checkpoints (as the tests do) and a folder of generated PNGs, then runs
`facefix fix DIR -U 2 --json` plain and with `--ray` (a local Ray instance: one worker per GPU,
or per CPU with --device cpu), each into its own output folder, and prints wall times, the
summaries' images/s and the ratio. Both runs' outputs are compared byte for byte. Usage:

    uv run --extra ray python benchmarks/bench_ray.py --device cpu --images 16 --size 64
    uv run --extra ray python benchmarks/bench_ray.py --device cuda --images 256 --size 512
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from checkpoints import build  # noqa: E402


def make_inputs(folder: Path, images: int, size: int) -> None:
    rng = np.random.default_rng(0)
    for index in range(images):
        y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
        rgb = np.stack([x, y, 0.5 + 0 * x], axis=2) * 0.8 + rng.random((size, size, 3)) * 0.2
        Image.fromarray((rgb * 255).astype(np.uint8)).save(folder / f"img{index:04d}.png")


def run(
    inputs: Path, out: Path, weights: Path, device: str, extra: list[str]
) -> tuple[float, dict]:
    command = [sys.executable, "-m", "facefix", "fix", str(inputs), "-U", "2", "--json"]
    command += ["--output-dir", str(out), "--weights-dir", str(weights), "--device", device]
    started = time.perf_counter()
    done = subprocess.run(command + extra, capture_output=True, text=True, env=os.environ)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{' '.join(command + extra)} failed ({done.returncode}):\n{done.stderr}")
    return wall, json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--size", type=int, default=64)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        weights, inputs = root / "weights", root / "in"
        weights.mkdir()
        inputs.mkdir()
        build("RealESRGAN_x2plus.pth", weights)
        make_inputs(inputs, args.images, args.size)
        plain_wall, plain = run(inputs, root / "plain", weights, args.device, [])
        ray_wall, ray = run(inputs, root / "ray", weights, args.device, ["--ray"])
        same = all(
            (root / "ray" / p.relative_to(root / "plain")).read_bytes() == p.read_bytes()
            for p in (root / "plain").rglob("*.png")
        )
    print(f"{args.images} images {args.size}x{args.size}, -U 2, --device {args.device}")
    print("run     wall s   fix s   images/s")
    for name, wall, summary in (("plain", plain_wall, plain), ("--ray", ray_wall, ray)):
        print(
            f"{name:6} {wall:7.1f} {summary['seconds']:7.1f} {summary['images_per_second']:10.2f}"
        )
    print(f"--ray / plain, wall: {ray_wall / plain_wall:.2f}; outputs identical: {same}")


if __name__ == "__main__":
    main()
