"""How long `facefix fix --report` spends building the report, per image, on the CPU.

Writes N originals and their `.fixed.png` outputs (each with faces in its record, as `fix`
writes them), then times `write_report` over them against a baseline measured in the same
run: decoding the same output and original PNGs with Pillow, which the report must do anyway.
Usage:

    OMP_NUM_THREADS=2 uv run python benchmarks/bench_report.py --images 20 --size 512 --scale 2
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from helpers import fixed_output_with_faces  # noqa: E402

from facefix_cli.report.build import inputs_from_paths, write_report  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--size", type=int, default=512, help="the originals' side, pixels")
    parser.add_argument("--scale", type=int, default=2)
    parser.add_argument("--faces", type=int, default=2)
    parser.add_argument("--workers", type=int, default=None, help="default: up to 4 threads")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        out_side = args.size * args.scale
        step = out_side // (args.faces + 1)
        boxes = [(step * i + step // 2, out_side // 3, step * i + step, out_side // 2)
                 for i in range(args.faces)]  # fmt: skip
        outputs = [
            fixed_output_with_faces(
                folder, f"img{i:04d}", f"prompt {i}", boxes, (args.size, args.size), args.scale, i
            )
            for i in range(args.images)
        ]
        started = time.perf_counter()
        for output in outputs:
            for path in (output, output.with_name(output.name.replace(".fixed", ""))):
                Image.open(io.BytesIO(path.read_bytes())).load()
        decode = (time.perf_counter() - started) / args.images
        result = write_report(
            folder / "report.html", inputs_from_paths([folder]), workers=args.workers
        )
        per_image = result.seconds / args.images
        thumbs = sorted((folder / "report_files").iterdir())
        largest = max(p.stat().st_size for p in thumbs)
    print(
        f"{args.images} images, {args.size}px x{args.scale} -> {out_side}px, {args.faces} faces each"
    )
    print(f"decode output + original (baseline): {decode * 1000:7.1f} ms/image")
    print(f"build the report:                    {per_image * 1000:7.1f} ms/image "
          f"({per_image / decode:.1f}x the baseline)")  # fmt: skip
    print(f"thumbnails: {len(thumbs)}, largest {largest / 1000:.0f} kB")


if __name__ == "__main__":
    main()
