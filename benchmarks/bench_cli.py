"""End-to-end throughput of the real `facefix fix` CLI, against an upstream-style loop.

What it does, in one process:
1. Makes N PNGs of SIZE x SIZE with AUTOMATIC1111 `parameters` metadata (a smooth picture with
   noise, so PNG coding costs what a render costs) and builds random-weight checkpoints in the
   released layouts (tests/checkpoints.py; reused from --weights between runs). Random weights
   cost exactly what trained ones cost: same architectures, same shapes.
2. Runs the real CLI (the typer app, in-process, with real options: PNG read to atomic rename)
   once per `--workers` value, each into its own --output-dir, and prints images/s (total =
   files / wall time of the whole command; steady = files after the first / time from the first
   file finished to the last, so model load and warm-up are left out), the model load on its
   own, per-stage seconds from the executor's StageClock (decode, fix, encode, write; with
   --op-times also the ops inside `fix`: upscale, detect, align, restore, parse, paste, blend),
   GPU utilisation and memory sampled with NVML (pynvml) or nvidia-smi every 0.1 s, peak host
   RSS during the run, and the cores used.
3. Runs benchmarks/upstream/upstream_loop.py (RealESRGANer.enhance then GFPGANer.enhance per
   image, as AUTOMATIC1111 and InvokeAI call them) with its own venv
   (benchmarks/upstream/setup_env.sh makes it) on the same inputs and weights, and prints the
   ratio of facefix's steady images/s to the loop's.

Faces: random-weight RetinaFace finds either nothing or hundreds of faces, so the benchmark
stands a fixed-landmark detector in for it: `--faces` faces side by side at known landmarks in
the upscaled image. The seam is `Networks.detector` (the face detector a run uses): this script
replaces that property for the whole process, and gives the upstream loop the same landmarks
through its --faces-json file (file name -> list of faces, 5 landmarks each, in upscaled pixel
coordinates). Detection itself is then not timed; RESULTS.md gives RetinaFace's own cost.

Usage (CPU smoke run, then the GPU targets):

    uv run python benchmarks/bench_cli.py --images 8 --size 128 --scale 2 --gfpgan 0.8 --workers 0,auto
    uv run python benchmarks/bench_cli.py --images 256 --size 512 --faces 2 --scale 2 --gfpgan 0.8 --device cuda --workers 0,auto
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from PIL.PngImagePlugin import PngInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from checkpoints import build  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from facefix_cli.cli import app  # noqa: E402
from facefix_cli.networks.cache import Networks  # noqa: E402
from facefix_cli.networks.device import resolve_devices  # noqa: E402
from facefix_cli.ops import align, detect  # noqa: E402
from facefix_cli.pipeline import image as image_module  # noqa: E402
from facefix_cli.pipeline.clock import current_clock, record_stages  # noqa: E402
from facefix_cli.pipeline.executors.pipelined import default_workers  # noqa: E402
from facefix_cli.recipe import Recipe  # noqa: E402

UPSTREAM = ROOT / "benchmarks" / "upstream" / "upstream_loop.py"
UPSTREAM_PYTHON = ROOT / "benchmarks" / ".upstream-venv" / "bin" / "python"
A1111_PARAMETERS = (
    "portrait photo of two people, detailed faces\nNegative prompt: blurry\n"
    "Steps: 20, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: {seed}, Size: {size}x{size}, "
    "Model: v1-5-pruned-emaonly"
)
# The ops inside `fix_image` timed with --op-times, by the names pipeline/image.py imports them
# under; names it does not have are skipped, so this keeps working as that module changes.
OPS = {
    "upscale": ("upscale", "upscale_alpha"),
    "align": ("alignment_matrix", "warp_face"),
    "restore": ("restore_faces",),
    "parse": ("face_masks",),
    "paste": ("paste_face",),
    "blend": ("blend_restored",),
}


def face_landmarks(width: int, height: int, faces: int) -> list[np.ndarray]:
    """`faces` faces side by side across the middle of a width x height (upscaled) image."""
    side = min(width / (faces + 1), height) * 0.9  # each face's 512-template square, in pixels
    return [
        (align.FFHQ_TEMPLATE_512 - 256) * (side / 512)
        + np.array([width * (index + 1) / (faces + 1), height / 2])
        for index in range(faces)
    ]


def fixed_landmark_detector(faces: int, device: torch.device):
    """A FaceDetector reporting `faces` faces at `face_landmarks` (timed as `detect`)."""

    def detect_faces(images: torch.Tensor) -> list[list[detect.Face]]:
        """The batch-first FaceDetector protocol: N x 3 x H x W in, one face list per image."""
        with current_clock().stage("detect"):
            height, width = images.shape[-2:]
            one_image = [
                detect.Face((0, 0, width, height), 0.99, landmarks.astype(np.float32))
                for landmarks in face_landmarks(width, height, faces)
            ]
            return [list(one_image) for _ in range(images.shape[0])]

    return detect_faces


def make_inputs(folder: Path, count: int, size: int) -> None:
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    for index in range(count):
        base = np.stack([x, y, (x + y) / 2 + index * 7], axis=2) * (255.0 / size) % 255
        pixels = np.clip(base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8)
        info = PngInfo()
        info.add_text("parameters", A1111_PARAMETERS.format(seed=1000 + index, size=size))
        Image.fromarray(pixels).save(folder / f"{index:05d}.png", pnginfo=info)


def synced(device: torch.device, name: str, fn):
    """`fn` timed into the current clock as `name`, waiting for the GPU so the time is real."""

    @functools.wraps(fn)
    def timed(*args, **kwargs):
        clock = current_clock()
        with clock.stage(name):
            result = fn(*args, **kwargs)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
        return result

    return timed


class Sampler:
    """Samples GPU utilisation and memory (NVML, else nvidia-smi) and this process's RSS."""

    def __init__(self, devices: list[torch.device], interval: float = 0.1) -> None:
        self.indices = [d.index or 0 for d in devices if d.type == "cuda"]
        self.interval = interval
        self.samples: list[tuple[float, list[float], list[float]]] = []  # (t, util %, MiB)
        self.rss_peak = 0
        self.done = threading.Event()
        self.nvml = None
        if self.indices:
            try:
                import pynvml

                pynvml.nvmlInit()
                self.nvml = pynvml
                self.handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in self.indices]
            except Exception:  # noqa: BLE001 - no pynvml: fall back to nvidia-smi
                self.nvml = None

    def _gpu(self) -> tuple[list[float], list[float]]:
        if not self.indices:
            return [], []
        if self.nvml is not None:
            util = [self.nvml.nvmlDeviceGetUtilizationRates(h).gpu for h in self.handles]
            mem = [self.nvml.nvmlDeviceGetMemoryInfo(h).used / 2**20 for h in self.handles]
            return util, mem
        query = ["nvidia-smi", "--query-gpu=index,utilization.gpu,memory.used"]
        out = subprocess.run([*query, "--format=csv,noheader,nounits"], capture_output=True,
                             text=True, check=False).stdout  # fmt: skip
        rows = {int(r.split(",")[0]): r.split(",")[1:] for r in out.strip().splitlines() if r}
        util = [float(rows[i][0]) for i in self.indices if i in rows]
        mem = [float(rows[i][1]) for i in self.indices if i in rows]
        return util, mem

    def _rss(self) -> int:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def run(self) -> None:
        while not self.done.is_set():
            self.rss_peak = max(self.rss_peak, self._rss())
            util, mem = self._gpu()
            self.samples.append((time.perf_counter(), util, mem))
            self.done.wait(self.interval)

    def __enter__(self) -> Sampler:
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join()

    def gpu_between(self, start: float, end: float) -> tuple[float | None, float | None]:
        """Mean utilisation (%) and peak memory (MiB) over the samples in [start, end]."""
        window = [(u, m) for t, u, m in self.samples if start <= t <= end and u]
        if not window:
            return None, None
        return float(np.mean([np.mean(u) for u, _ in window])), max(max(m) for _, m in window)


def run_cli(inputs: Path, output: Path, weights: Path, args, workers: str) -> dict:
    command = ["fix", str(inputs), "--output-dir", str(output), "--weights-dir", str(weights),
               "--upscale", str(args.scale), "--device", args.device, "--offline", "--json", "-q"]  # fmt: skip
    if args.gfpgan:
        command += ["--gfpgan", str(args.gfpgan)]
    if workers != "auto":
        command += ["--workers", workers]
    if args.batch_size:
        command += ["--batch-size", str(args.batch_size)]
    if args.png_level is not None:
        command += ["--png-level", str(args.png_level)]
    devices = resolve_devices(args.device)
    with Sampler(devices) as sampler, record_stages() as clock:
        for device in devices:
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
        start = time.perf_counter()
        result = CliRunner().invoke(app, command, catch_exceptions=False)
        wall = time.perf_counter() - start
    if result.exit_code != 0:
        sys.exit(f"facefix fix exited {result.exit_code}: {result.output[-2000:]}")
    summary = json.loads(result.stdout)
    done = sorted(clock.finished_at)
    steady = (len(done) - 1) / (done[-1] - done[0]) if len(done) > 1 else None
    util, gpu_mib = sampler.gpu_between(done[0], done[-1]) if len(done) > 1 else (None, None)
    torch_peak = [torch.cuda.max_memory_allocated(d) / 2**20 for d in devices if d.type == "cuda"]
    return {
        "workers": workers if workers != "auto" else f"auto ({default_workers()})",
        "files": summary["processed"],
        "faces": summary["faces"],
        "wall_s": wall,
        "total_images_per_s": summary["processed"] / wall,
        "steady_images_per_s": steady,
        "stages_s": dict(sorted(clock.seconds.items())),
        "gpu_util_percent": util,
        "gpu_memory_used_mib": gpu_mib,
        "torch_peak_allocated_mib": torch_peak,
        "peak_rss_mib": sampler.rss_peak / 2**20,
    }


def run_upstream(inputs: Path, weights: Path, faces_json: Path, args) -> dict | None:
    python = Path(args.upstream_python)
    if not python.exists():
        print(f"upstream loop skipped: no {python} (make it with benchmarks/upstream/setup_env.sh)")
        return None
    device = "cuda" if resolve_devices(args.device)[0].type == "cuda" else "cpu"
    command = [str(python), str(UPSTREAM), "--inputs", str(inputs), "--weights", str(weights),
               "--scale", str(args.scale), "--gfpgan-strength", str(args.gfpgan or 1.0),
               "--device", device, "--faces-json", str(faces_json), "--json"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "")}
    env = {k: v for k, v in env.items() if v}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        print(f"upstream loop failed ({done.returncode}):\n{done.stderr[-3000:]}")
        return None
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--size", type=int, default=128, help="input side in pixels")
    parser.add_argument("--faces", type=int, default=2, help="faces per image")
    parser.add_argument("--scale", type=int, choices=(2, 4), default=2)
    parser.add_argument("--gfpgan", type=float, default=0.8, help="0 = upscale only")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--workers", default="0,auto", help="comma-separated --workers values")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--png-level", type=int, default=None, help="default: the CLI's")
    parser.add_argument("--weights", type=Path, default=ROOT / "benchmarks" / ".bench-weights",
                        help="random-weight checkpoints, built here if missing")  # fmt: skip
    parser.add_argument("--upstream", choices=("auto", "skip"), default="auto")
    parser.add_argument("--upstream-python", default=str(UPSTREAM_PYTHON))
    parser.add_argument("--op-times", action="store_true",
                        help="also time the ops inside fix_image (syncs the GPU after each)")  # fmt: skip
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    args = parser.parse_args()

    devices = resolve_devices(args.device)
    cores = len(os.sched_getaffinity(0))
    names = [f"RealESRGAN_x{args.scale}plus.pth", "detection_Resnet50_Final.pth",
             "parsing_parsenet.pth"] + (["GFPGANv1.4.pth"] if args.gfpgan else [])  # fmt: skip
    args.weights.mkdir(parents=True, exist_ok=True)
    for name in names:
        build(name, args.weights)
    gpu = ", ".join(torch.cuda.get_device_name(d) for d in devices if d.type == "cuda")
    print(f"devices {', '.join(map(str, devices))} {gpu}; {cores} cores, torch threads "
          f"{torch.get_num_threads()}; torch {torch.__version__}")  # fmt: skip
    print(f"{args.images} PNGs of {args.size}x{args.size}, x{args.scale}"
          + (f" + GFPGAN {args.gfpgan}, {args.faces} faces/image" if args.gfpgan else ""))  # fmt: skip

    # The seam: every Networks of this process detects the fixed faces (see the docstring).
    Networks.detector = property(lambda self: fixed_landmark_detector(args.faces, self.device))
    if args.op_times:
        for stage, attributes in OPS.items():
            for attribute in attributes:
                if hasattr(image_module, attribute):
                    wrapped = synced(devices[0], stage, getattr(image_module, attribute))
                    setattr(image_module, attribute, wrapped)

    report: dict = {"devices": [str(d) for d in devices], "gpu": gpu, "cores": cores,
                    "torch_threads": torch.get_num_threads(), "args": {k: str(v) for k, v in vars(args).items()}}  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        inputs = work / "in"
        inputs.mkdir()
        make_inputs(inputs, args.images, args.size)
        out_side = args.size * args.scale
        faces = [lm.tolist() for lm in face_landmarks(out_side, out_side, args.faces)]
        faces_json = work / "faces.json"
        faces_json.write_text(json.dumps({p.name: faces for p in sorted(inputs.glob("*.png"))}))

        recipe = Recipe(scale=args.scale, restore_with="gfpgan" if args.gfpgan else None,
                        restore_strength=args.gfpgan or 0.0)  # fmt: skip
        start = time.perf_counter()
        Networks(recipe, args.weights, devices[0]).load_all()
        if devices[0].type == "cuda":
            torch.cuda.synchronize(devices[0])
        report["model_load_s"] = time.perf_counter() - start
        print(f"model load (all networks, once): {report['model_load_s']:.2f} s")

        runs = []
        for workers in args.workers.split(","):
            output = work / f"out-{workers}"
            figures = run_cli(inputs, output, args.weights, args, workers.strip())
            runs.append(figures)
            shutil.rmtree(output)
            steady = figures["steady_images_per_s"]
            print(f"\nfacefix fix --workers {figures['workers']}: {figures['files']} files, "
                  f"{figures['faces']} faces, {figures['wall_s']:.2f} s wall")  # fmt: skip
            print(f"  images/s: total {figures['total_images_per_s']:.3f}, steady "
                  + (f"{steady:.3f}" if steady else "n/a (one file)"))  # fmt: skip
            stages = figures["stages_s"]
            print("  stage seconds (summed over threads): "
                  + ", ".join(f"{k} {v:.2f}" for k, v in stages.items()))  # fmt: skip
            if figures["gpu_util_percent"] is not None:
                print(f"  GPU: utilisation {figures['gpu_util_percent']:.0f} % (steady state), "
                      f"memory used {figures['gpu_memory_used_mib']:.0f} MiB, torch peak "
                      f"{', '.join(f'{m:.0f}' for m in figures['torch_peak_allocated_mib'])} MiB")  # fmt: skip
            print(f"  peak host RSS {figures['peak_rss_mib']:.0f} MiB")
        report["runs"] = runs
        if len(runs) > 1 and runs[0]["steady_images_per_s"] and runs[-1]["steady_images_per_s"]:
            ratio = runs[-1]["steady_images_per_s"] / runs[0]["steady_images_per_s"]
            print(f"\n--workers {runs[-1]['workers']} vs --workers {runs[0]['workers']}: "
                  f"{ratio:.2f}x steady images/s")  # fmt: skip

        if args.upstream == "auto" and args.gfpgan:
            upstream = run_upstream(inputs, args.weights, faces_json, args)
            report["upstream"] = upstream
            if upstream is not None:
                print(f"\nupstream loop ({upstream['device']}): load {upstream['load_s']:.2f} s, "
                      f"steady {upstream['images_per_s']:.3f} images/s over "
                      f"{upstream['steady_images']} images; stages "
                      + ", ".join(f"{k} {v:.3f} s" for k, v in upstream["stages_s"].items()))  # fmt: skip
                for figures in runs:
                    if figures["steady_images_per_s"]:
                        ratio = figures["steady_images_per_s"] / upstream["images_per_s"]
                        print(f"facefix --workers {figures['workers']} / upstream loop: "
                              f"{ratio:.2f}x (steady images/s)")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
