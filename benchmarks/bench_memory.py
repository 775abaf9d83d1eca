"""Peak host memory (RSS) of a whole `fix` of one image, per input size, scale and
--detect-size, each in a fresh process.

Each case runs in a child process (this script with --child) that fixes one PNG through the
library's `fix` (the sequential executor: read, upscale, detect, restore, write) on the CPU
and reports `resource.getrusage(RUSAGE_SELF).ru_maxrss`, the process's peak resident set,
so a case's peak is never another's. Printed per case: peak RSS, the same for --detect-size 0
(today's behaviour before #20: RetinaFace on the whole upscaled image) and their ratio.

Networks: random-weight checkpoints in the released layouts (tests/checkpoints.py). RetinaFace
R50 runs for real on the image it is given (its memory is what this measures), then reports
two faces at fixed landmarks so GFPGAN v1.4 and ParseNet run too (random RetinaFace finds none
or hundreds). The upscaler is Real-ESRGAN's RRDBNet; `--blocks` (default 23, the released
size) can shrink its body for a quicker run on a slow machine: the blocks run one after the
other, so the peak of their feature maps, which the tile size bounds, does not depend on
their number; only the weights (64 MB for 23 blocks) do.

With --trace the child also samples its resident set every 5 ms and prints, per step of the
fix (read, upscale and its parts, detect, warp, restore, parse, paste, blend, encode, write,
the network loads), the largest sample taken while that step ran: where the peak is.

Usage:

    python benchmarks/bench_memory.py --sizes 512,1024 --scales 2,4
    python benchmarks/bench_memory.py --sizes 2048 --scales 2 --blocks 1 --threads 2
    python benchmarks/bench_memory.py --sizes 1024 --scales 4 --blocks 1 --tile 256 --trace
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

GIB = 1 << 30


def make_weights(folder: Path, blocks: int) -> None:
    from checkpoints import (
        build,
        realesrgan_state_dict,
        retinaface_state_dict,
        save_bare,
        save_params_ema,
    )

    folder.mkdir(parents=True, exist_ok=True)
    for name in ("GFPGANv1.4.pth", "parsing_parsenet.pth"):
        build(name, folder)
    detector = folder / "detection_Resnet50_Final.pth"
    if not detector.exists():
        # The whole network runs and decodes every anchor; it reports no face (the faces
        # come from fixed landmarks in the child).
        save_bare(retinaface_state_dict("resnet50", finds_faces=False), detector)
    for scale in (2, 4):
        path = folder / f"RealESRGAN_x{scale}plus.pth"
        marker = folder / f"x{scale}.blocks"
        if not path.exists() or marker.read_text() != str(blocks):
            save_params_ema(realesrgan_state_dict(scale, num_block=blocks), path)
            marker.write_text(str(blocks))


def make_input(path: Path, size: int) -> None:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(size)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    base = np.stack([x, y, (x + y) / 2], axis=2) * (255.0 / size)
    pixels = np.clip(base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8)
    Image.fromarray(pixels).save(path)


def child(args: argparse.Namespace) -> None:
    """One fix in this process; prints one JSON line with the peak RSS."""
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    from facefix_cli.networks.cache import Networks
    from facefix_cli.ops import align, detect
    from facefix_cli.pipeline import RunSettings, Status, fix
    from facefix_cli.recipe import Recipe

    real_detector = Networks.detector

    def fixed_faces(images: torch.Tensor) -> list[list[detect.Face]]:
        height, width = images.shape[2:]
        side = min(width / 3, height) * 0.9
        faces = [
            detect.Face(
                (width * k / 3 - side / 2, height / 2 - side / 2, width * k / 3 + side / 2,
                 height / 2 + side / 2),
                0.99,
                ((align.FFHQ_TEMPLATE_512 - 256) * (side / 512) + [width * k / 3, height / 2])
                .astype(np.float32),
            )
            for k in (1, 2)
        ]  # fmt: skip
        return [list(faces) for _ in range(images.shape[0])]

    seen: list[tuple[int, ...]] = []

    def detector(self: Networks):
        retina = real_detector.func(self)  # type: ignore[attr-defined]

        def detect_then_place(images: torch.Tensor) -> list[list[detect.Face]]:
            seen.append(tuple(images.shape))
            retina(images)  # the real network on the real input: its memory is measured
            return fixed_faces(images)

        return detect_then_place

    Networks.detector = property(detector)  # type: ignore[assignment,method-assign]
    phases = trace_phases() if args.trace else None
    recipe = Recipe(
        scale=args.scale,
        restore_with="gfpgan",
        restore_strength=0.8,
        detect_size=args.detect_size,
        tile=args.tile,
    )
    output = Path(args.output)
    started = time.perf_counter()
    summary = fix(
        [Path(args.input)],
        recipe,
        RunSettings(
            weights_dir=Path(args.weights),
            device="cpu",
            output_dir=output,
            overwrite=True,
            offline=True,
            workers=0,
        ),
    )
    seconds = time.perf_counter() - started
    (result,) = summary.results
    if result.status is not Status.FIXED:
        raise SystemExit(f"not fixed: {result.status} {result.reason}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    record = {"peak": peak, "seconds": seconds, "faces": result.faces, "detect": seen}
    if phases is not None:
        record["phases"] = phases.stop()
    print(json.dumps(record))


class PhaseTrace:
    """Samples the process's resident set every few milliseconds and keeps, per phase (the
    innermost traced function running), the largest sample: where a case's peak is."""

    def __init__(self) -> None:
        import threading

        self.stack: list[str] = ["other"]
        self.peaks: dict[str, int] = {}
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.sample, daemon=True)
        self.thread.start()

    def sample(self) -> None:
        page = os.sysconf("SC_PAGE_SIZE")
        with open("/proc/self/statm", "rb") as statm:
            while not self.done.wait(0.005):
                statm.seek(0)
                rss = int(statm.read().split()[1]) * page
                phase = self.stack[-1]
                self.peaks[phase] = max(self.peaks.get(phase, 0), rss)

    def wrap(self, name: str, function):
        import functools

        @functools.wraps(function)
        def traced(*args, **kwargs):
            self.stack.append(name)
            try:
                return function(*args, **kwargs)
            finally:
                self.stack.pop()

        return traced

    def stop(self) -> dict[str, int]:
        self.done.set()
        self.thread.join()
        return self.peaks


def trace_phases() -> PhaseTrace:
    """Trace the per-image steps under the names the modules that call them import them by
    (`fix_image`: the rest of the image work, e.g. the copy back to the host)."""
    from facefix_cli.networks import cache, restorers
    from facefix_cli.ops import upscale
    from facefix_cli.pipeline import file, image

    trace = PhaseTrace()
    steps = (
        (file, ("read_image", "fix_image", "encode_png", "write_atomic")),
        (cache, ("load_spandrel_model", "load_parsenet", "load_retinaface")),
        (restorers.SpandrelRestorer, ("restore",)),
        (image, ("upscale", "detect_faces", "warp_faces", "face_masks", "paste_faces",
                 "blend_restored")),
        (upscale, ("super_resolve_checked", "resize_bicubic", "blend")),
    )  # fmt: skip
    for module, names in steps:
        for name in names:
            setattr(module, name, trace.wrap(name, getattr(module, name)))
    return trace


def run_case(args, weights: Path, folder: Path, size: int, scale: int, detect_size: int) -> dict:
    image = folder / f"in{size}.png"
    if not image.exists():
        make_input(image, size)
    command = [
        sys.executable,
        __file__,
        "--child",
        "--input", str(image),
        "--output", str(folder / "out"),
        "--weights", str(weights),
        "--scale", str(scale),
        "--detect-size", str(detect_size),
        "--threads", str(args.threads),
        *(["--tile", str(args.tile)] if args.tile is not None else []),
        *(["--trace"] if args.trace else []),
    ]  # fmt: skip
    env = dict(os.environ, FACEFIX_OFFLINE="1", PYTHONPATH=str(ROOT))
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise SystemExit(f"case {size} x{scale} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="512,1024", help="input sides, comma-separated")
    parser.add_argument("--scales", default="2,4")
    parser.add_argument("--detect-size", type=int, default=2048, help="the setting measured")
    parser.add_argument("--no-baseline", action="store_true", help="skip --detect-size 0")
    parser.add_argument("--blocks", type=int, default=23, help="RRDBNet blocks (23: released)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads per case")
    parser.add_argument(
        "--tile",
        type=int,
        default=None,
        help="upscaler tile (default: auto, from the free memory, so it varies by machine)",
    )
    parser.add_argument("--weights", type=Path, default=None, help="reuse this weights folder")
    parser.add_argument(
        "--trace", action="store_true", help="also print each step's peak RSS (where it goes)"
    )
    # The child's own arguments.
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--input", help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    parser.add_argument("--scale", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        weights = args.weights or folder / "weights"
        make_weights(weights, args.blocks)
        print(
            f"# peak RSS of one whole fix (GFPGAN 1.4, 2 faces), CPU, {args.threads} torch "
            f"threads, RRDBNet with {args.blocks} blocks, tile {args.tile or 'auto'}, "
            f"cores {os.cpu_count()}"
        )
        print("| input | scale | output | detected at | peak RSS | --detect-size 0 | ratio |")
        print("|---|---|---|---|---:|---:|---:|")
        for size in (int(s) for s in args.sizes.split(",")):
            for scale in (int(s) for s in args.scales.split(",")):
                new = run_case(args, weights, folder, size, scale, args.detect_size)
                old = None if args.no_baseline else run_case(args, weights, folder, size, scale, 0)
                at = "x".join(str(v) for v in new["detect"][0][2:][::-1])
                ratio = f"{new['peak'] / old['peak']:.2f}" if old else "-"
                before = f"{old['peak'] / GIB:.2f} GiB" if old else "-"
                print(
                    f"| {size}² | x{scale} | {size * scale}² | {at} | {new['peak'] / GIB:.2f} GiB"
                    f" ({new['seconds']:.0f} s) | {before} | {ratio} |",
                    flush=True,
                )
                if args.trace:
                    steps = sorted(new["phases"].items(), key=lambda item: -item[1])
                    print("  peak RSS by step: " + ", ".join(
                        f"{name} {peak / GIB:.2f} GiB" for name, peak in steps
                    ), flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
