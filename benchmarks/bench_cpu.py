"""The CPU path (issue #18), in CPU seconds (the development machine is shared), each figure
beside its baseline measured in the same run:

- imports: what an upscale-only `fix` imports (the pipeline, torch, the upscaler's loader), now
  (spandrel's ESRGAN alone) against before (spandrel's every architecture and the extra ones);
- load:    the four networks of `-U 4 --gfpgan` (x4plus, GFPGAN, RetinaFace, ParseNet), lean
           (memory-mapped, no random init, one architecture) against the ordinary loaders;
- executors: CPU seconds per image of the file work (after the load) and images/s for
           `default`, `workers 0` and `before` (pipelined, 1 worker beside torch's default
           threads, OpenMP's default wait policy), quiet and beside a load this script starts
           (one single-threaded torch matmul loop per core);
- faces:   GFPGAN v1.4, ParseNet and RetinaFace R50 in fp32 eager against channels_last,
           torch.compile (inductor), ONNX Runtime (CPU provider) and bf16 (random weights:
           speed, and how far each output moves from fp32 eager);
- precision: Real-ESRGAN x4plus on the CPU in fp32 and the bf16 variants (random weights:
           speed only; PSNR against fp32 on trained weights is benchmarks/bench_precision.py's).

Each measurement runs in a fresh child process. Random-weight checkpoints in the released
layouts are built once under --weights (default /tmp/facefix-bench-cpu).

    OMP_NUM_THREADS=1 python benchmarks/bench_cpu.py --parts imports,load --repeat 3
    python benchmarks/bench_cpu.py --parts executors --repeat 2 --size 48
    python benchmarks/bench_cpu.py --parts precision --repeat 2
    python benchmarks/bench_cpu.py --parts faces --repeat 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

LOAD_FILES = (
    "RealESRGAN_x4plus.pth",
    "RealESRGAN_x2plus.pth",
    "GFPGANv1.4.pth",
    "detection_Resnet50_Final.pth",
    "parsing_parsenet.pth",
)

IMPORTS_NOW = """
import time; t = time.process_time()
import facefix_cli.cli, facefix_cli.pipeline.image, facefix_cli.networks.load
from facefix_cli.networks.lean import spandrel_architecture
import spandrel; spandrel_architecture("ESRGAN", "ESRGANArch")
print(json.dumps({"cpu": time.process_time() - t, "torchvision": "torchvision" in sys.modules}))
"""
IMPORTS_BEFORE = """
import time; t = time.process_time()
import facefix_cli.cli, facefix_cli.pipeline.image, facefix_cli.networks.load
import spandrel; len(spandrel.MAIN_REGISTRY)  # every architecture, as `import spandrel` did
import spandrel_extra_arches; spandrel_extra_arches.install()
print(json.dumps({"cpu": time.process_time() - t, "torchvision": "torchvision" in sys.modules}))
"""
LOAD = """
import time, warnings
from pathlib import Path
import torch, spandrel, spandrel_extra_arches
len(spandrel.MAIN_REGISTRY)
from facexlib.detection.retinaface import RetinaFace
from facexlib.parsing.parsenet import ParseNet
from facefix_cli.networks import load
weights, lean, cpu = Path(sys.argv[1]), sys.argv[2] == "lean", torch.device("cpu")
warnings.simplefilter("ignore")
def ordinary(path):
    state = torch.load(path, map_location="cpu", weights_only=True)
    return spandrel.ModelLoader(cpu).load_from_state_dict(spandrel.canonicalize_state_dict(state))
times = {}
def timed(name, build):
    t = time.process_time(); build(); times[name] = time.process_time() - t
if lean:
    timed("x4plus", lambda: load.load_spandrel_model(weights / "RealESRGAN_x4plus.pth", cpu, "ESRGAN"))
    timed("gfpgan", lambda: load.load_spandrel_model(weights / "GFPGANv1.4.pth", cpu, "GFPGAN"))
    timed("retinaface", lambda: load.load_retinaface(weights / "detection_Resnet50_Final.pth", "resnet50", cpu))
    timed("parsenet", lambda: load.load_parsenet(weights / "parsing_parsenet.pth", cpu))
else:
    def retinaface():
        net = RetinaFace(network_name="resnet50", half=False, device=cpu)
        state = torch.load(weights / "detection_Resnet50_Final.pth", map_location="cpu", weights_only=True)
        net.load_state_dict({k.removeprefix("module."): v for k, v in state.items()})
    def parsenet():
        net = ParseNet(in_size=512, out_size=512, parsing_ch=19)
        net.load_state_dict(torch.load(weights / "parsing_parsenet.pth", map_location="cpu", weights_only=True))
    timed("x4plus", lambda: ordinary(weights / "RealESRGAN_x4plus.pth"))
    timed("gfpgan", lambda: ordinary(weights / "GFPGANv1.4.pth"))
    timed("retinaface", retinaface)
    timed("parsenet", parsenet)
print(json.dumps(times))
"""
# The file work of one run, in CPU seconds of the whole process from the end of the network
# load (the `waiting(None)` event) to the end of the run.
EXECUTOR = """
from pathlib import Path
mode, folder, weights = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
if mode == "before":
    import torch  # OpenMP reads its wait policy at load: the default one, as before
    import contextlib
    import facefix_cli.pipeline.executors.pipelined as pipelined
    pipelined.torch_threads = lambda count: contextlib.nullcontext()  # torch's own threads
import facefix_cli.cli  # the CLI's environment (OMP_WAIT_POLICY=PASSIVE unless set)
import time
from facefix_cli.pipeline import RunSettings, fix
from facefix_cli.pipeline.results import Status
from facefix_cli.recipe import Recipe
from facefix_cli.silent import Silent
class Events(Silent):
    loaded_at = None
    def waiting(self, what):
        if what is None:
            self.loaded_at = (time.process_time(), time.perf_counter())
workers = {"default": None, "workers 0": 0, "before": 1}[mode]
events = Events()
summary = fix([folder], Recipe(scale=2), RunSettings(weights_dir=weights, device="cpu", workers=workers, overwrite=True), events=events)
cpu, wall = time.process_time() - events.loaded_at[0], time.perf_counter() - events.loaded_at[1]
print(json.dumps({"cpu": cpu, "wall": wall, "processed": summary.count(Status.FIXED)}))
"""
# x4plus (random weights: speed only) on one input, each variant timed in CPU seconds after a
# warm-up at a small size; PSNR against fp32 is printed for the record, not judged here.
PRECISION = """
import copy, time, warnings
from pathlib import Path
import torch
from facefix_cli.networks.device import cpu_has_native_bf16
from facefix_cli.networks.load import load_spandrel_model
from facefix_cli.ops.upscale import super_resolve_checked
warnings.simplefilter("ignore")
weights, size, repeat = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
wanted = sys.argv[4].split(",")
fp32 = load_spandrel_model(weights / "RealESRGAN_x4plus.pth", torch.device("cpu"), "ESRGAN")
def variant(dtype, channels_last):
    model = copy.deepcopy(fp32).to(dtype)
    if channels_last:
        model.model.to(memory_format=torch.channels_last)
    return model
variants = {
    "fp32": (torch.float32, False, False),
    "fp32 channels_last": (torch.float32, True, False),
    "bf16": (torch.bfloat16, False, False),
    "bf16 channels_last": (torch.bfloat16, True, False),
    "autocast bf16 channels_last": (torch.float32, True, True),
}
variants = {k: (variant(d, cl), a) for k, (d, cl, a) in variants.items() if k == "fp32" or k in wanted}
image = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(1))
small = image[:, :, :32, :32]
out, reference = {}, None
for name, (model, autocast) in variants.items():
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        super_resolve_checked(small, model)  # warm-up: oneDNN primitives for this layout
        times = []
        for _ in range(repeat):
            t = time.process_time(); result = super_resolve_checked(image, model); times.append(time.process_time() - t)
    if reference is None:
        reference = result
    mse = float(((result - reference) ** 2).mean())
    out[name] = {"cpu": sorted(times)[len(times) // 2], "psnr": 99.0 if mse == 0 else float(10 * torch.log10(torch.tensor(1.0 / mse))), "max": float((result - reference).abs().max())}
print(json.dumps({"native_bf16": cpu_has_native_bf16(), "threads": torch.get_num_threads(), "variants": out}))
"""
# GFPGAN v1.4, ParseNet and RetinaFace R50 (random weights, as loaded by facefix) on one input,
# each backend variant timed in CPU seconds after an untimed first call (which builds a
# compiled or exported variant), and compared with fp32 eager on the same input: the largest
# difference of the output (GFPGAN's image in [-1, 1], ParseNet's and RetinaFace's raw
# outputs) and, for ParseNet, the share of pixels whose face class (argmax) changes.
FACES = """
import copy, time, warnings
from pathlib import Path
import torch
from facefix_cli.networks.load import load_parsenet, load_retinaface, load_spandrel_model
warnings.simplefilter("ignore")
weights, repeat, wanted, budget = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3].split(","), float(sys.argv[4])
cpu = torch.device("cpu")
nets = {
    "gfpgan": (load_spandrel_model(weights / "GFPGANv1.4.pth", cpu, "GFPGAN").model, (1, 3, 512, 512)),
    "parsenet": (load_parsenet(weights / "parsing_parsenet.pth", cpu), (1, 3, 512, 512)),
    "retinaface": (load_retinaface(weights / "detection_Resnet50_Final.pth", "resnet50", cpu), (1, 3, 1024, 1024)),
}
def first(output):
    return output[0] if isinstance(output, (tuple, list)) else output
def cast(net, dtype, channels_last):
    model = copy.deepcopy(net).to(dtype)
    if channels_last:  # convolution weights only: GFPGAN's modulated weights are 5-D
        for module in model.modules():
            if isinstance(module, torch.nn.Conv2d):
                module.to(memory_format=torch.channels_last)
    def run(x):
        x = x.to(dtype)
        return first(model(x.contiguous(memory_format=torch.channels_last) if channels_last else x)).float()
    return run
def compiled(net):
    model = torch.compile(net, dynamic=False)
    return lambda x: first(model(x)).float()
def onnx_runtime(net, shape):
    from backends import onnx_runtime_call  # benchmarks/backends.py
    return onnx_runtime_call(net, torch.rand(shape))
def two_at_once(net):
    # Two copies of the input in one pass, timed per input: does batching faces pay on a CPU?
    run = cast(net, torch.float32, False)
    return lambda x: run(torch.cat([x, x]))[:1]
makers = {
    "fp32": lambda net, shape: cast(net, torch.float32, False),
    "fp32 batch of 2 (per input)": lambda net, shape: two_at_once(net),
    "fp32 channels_last": lambda net, shape: cast(net, torch.float32, True),
    "fp32 torch.compile": lambda net, shape: compiled(net),
    "fp32 ONNX Runtime": onnx_runtime,
    "bf16": lambda net, shape: cast(net, torch.bfloat16, False),
    "bf16 channels_last": lambda net, shape: cast(net, torch.bfloat16, True),
}
out = {}
for name, (net, shape) in nets.items():
    if name not in wanted:
        continue
    x = torch.rand(shape, generator=torch.Generator().manual_seed(1)) * 2 - 1
    reference = None
    for variant, make in makers.items():
        if variant != "fp32" and variant not in wanted:
            continue
        try:
            with torch.inference_mode(variant != "fp32 ONNX Runtime"):
                t = time.process_time(); run = make(net, shape); result = run(x); setup = time.process_time() - t
                if setup > budget:
                    raise TimeoutError(f"first call took {setup:.0f} CPU-s")
                times = []
                for _ in range(repeat):
                    t = time.process_time(); result = run(x); times.append(time.process_time() - t)
                if variant.startswith("fp32 batch of 2"):
                    times = [t / 2 for t in times]
        except Exception as exc:
            out[f"{name} {variant}"] = {"error": str(exc).splitlines()[0][:100] if str(exc) else type(exc).__name__}
            continue
        if reference is None:
            reference = result
        row = {"cpu": sorted(times)[len(times) // 2], "setup": setup, "max": float((result - reference).abs().max())}
        if name == "parsenet":
            row["labels"] = float((result.argmax(1) != reference.argmax(1)).float().mean())
        out[f"{name} {variant}"] = row
        print(json.dumps({f"{name} {variant}": row}), file=sys.stderr, flush=True)
print(json.dumps({"threads": torch.get_num_threads(), "variants": out}))
"""
HOG = """
import torch
torch.set_num_threads(1)
a = torch.rand(256, 256)
while True:
    a = (a @ a).clamp_(0, 1)
"""


def child(code: str, *args: str, env: dict[str, str] | None = None, timeout: int = 900) -> dict:
    path = os.pathsep.join([str(REPO), str(REPO / "benchmarks")])  # facefix_cli, backends.py
    environ = dict(os.environ, PYTHONPATH=path, FACEFIX_OFFLINE="1", **(env or {}))
    done = subprocess.run(
        [sys.executable, "-c", "import json, sys\n" + code, *args],
        capture_output=True,
        text=True,
        env=environ,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def ensure_weights(folder: Path, names: tuple[str, ...]) -> None:
    from checkpoints import build

    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        build(name, folder)


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def header(args: argparse.Namespace) -> None:
    print(
        f"cores available: {cores()}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}"
        f", repeat {args.repeat} (median)"
    )


def part_imports(args: argparse.Namespace) -> None:
    rows = {"now": IMPORTS_NOW, "before": IMPORTS_BEFORE}
    results = {name: [child(code) for _ in range(args.repeat)] for name, code in rows.items()}
    median = {name: statistics.median(r["cpu"] for r in runs) for name, runs in results.items()}
    for name, runs in results.items():
        print(f"imports {name:7s} {median[name]:6.2f} CPU-s  torchvision: {runs[0]['torchvision']}")
    print(f"imports now / before: {median['now'] / median['before']:.2f}")


def part_load(args: argparse.Namespace) -> None:
    ensure_weights(args.weights, LOAD_FILES)
    runs = {
        m: [child(LOAD, str(args.weights), m) for _ in range(args.repeat)]
        for m in ("lean", "before")
    }
    totals = {}
    for mode, results in runs.items():
        per = {k: statistics.median(r[k] for r in results) for k in results[0]}
        totals[mode] = statistics.median(sum(r.values()) for r in results)
        print(
            f"load {mode:6s} {totals[mode]:6.2f} CPU-s  "
            + "  ".join(f"{k} {v:.2f}" for k, v in per.items())
        )
    print(f"load lean / before: {totals['lean'] / totals['before']:.2f}")


def make_images(folder: Path, count: int, size: int) -> None:
    import cv2
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(3)
    for index in range(count):
        image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        cv2.imwrite(str(folder / f"{index}.png"), cv2.GaussianBlur(image, (5, 5), 2))


def part_executors(args: argparse.Namespace) -> None:
    ensure_weights(args.weights, ("RealESRGAN_x2plus.pth",))
    modes = [m.strip() for m in args.executors.split(",")]
    table: dict[tuple[str, str], dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "in"
        make_images(folder, args.images, args.size)
        for condition in ("quiet", "loaded"):
            hogs = []
            if condition == "loaded":
                hogs = [
                    subprocess.Popen(
                        [sys.executable, "-c", HOG], env=dict(os.environ, OMP_NUM_THREADS="1")
                    )
                    for _ in range(cores())
                ]
                time.sleep(1.0)
            try:
                for mode in modes:
                    runs = [
                        child(EXECUTOR, mode, str(folder), str(args.weights))
                        for _ in range(args.repeat)
                    ]
                    table[condition, mode] = {
                        "cpu": statistics.median(r["cpu"] for r in runs) / args.images,
                        "ips": args.images / statistics.median(r["wall"] for r in runs),
                    }
            finally:
                for hog in hogs:
                    hog.kill()
                    hog.wait()
    print(f"{args.images} images of {args.size} px, -U 2, --device cpu; per image, after the load")
    for (condition, mode), row in table.items():
        print(
            f"{condition:6s} {mode:10s} {row['cpu']:6.2f} CPU-s/image  {row['ips']:6.2f} images/s"
        )
    for condition in ("quiet", "loaded"):
        base = table[condition, "workers 0"]["ips"] if "workers 0" in modes else None
        for mode in modes:
            if base and mode != "workers 0":
                print(
                    f"{condition}: {mode} / workers 0 images/s: {table[condition, mode]['ips'] / base:.2f}"
                )
    for mode in modes:
        ratio = table["loaded", mode]["cpu"] / table["quiet", mode]["cpu"]
        print(f"{mode}: CPU-s per image loaded / quiet: {ratio:.2f}")


def part_precision(args: argparse.Namespace) -> None:
    ensure_weights(args.weights, ("RealESRGAN_x4plus.pth",))
    result = child(PRECISION, str(args.weights), str(args.precision_size), str(args.repeat), args.variants, env={"FACEFIX_CPU_BF16": ""})  # fmt: skip
    print(
        f"x4plus (random weights), {args.precision_size} px, torch threads {result['threads']}, "
        f"native bf16 on this CPU: {result['native_bf16']}"
    )
    base = result["variants"]["fp32"]["cpu"]
    for name, row in result["variants"].items():
        print(
            f"{name:28s} {row['cpu']:6.2f} CPU-s  speed x{base / row['cpu']:.2f} of fp32  "
            f"max diff {row['max']:.2g}  PSNR {row['psnr']:.1f} dB (random weights)"
        )


def part_faces(args: argparse.Namespace) -> None:
    ensure_weights(args.weights, LOAD_FILES[2:])
    wanted = f"{args.face_networks},{args.face_variants}"
    result = child(
        FACES, str(args.weights), str(args.repeat), wanted, str(args.budget), timeout=7200
    )
    print(f"face networks (random weights), torch threads {result['threads']}")
    base: dict[str, float] = {}
    for name, row in result["variants"].items():
        network = name.split()[0]
        if "error" in row:
            print(f"{name:34s} not run: {row['error']}")
            continue
        base.setdefault(network, row["cpu"])
        labels = f"  face classes changed {row['labels']:.2e}" if "labels" in row else ""
        print(
            f"{name:34s} {row['cpu']:6.2f} CPU-s  speed x{base[network] / row['cpu']:.2f} of fp32"
            f"  first call {row['setup']:6.1f} CPU-s  max diff {row['max']:.2g}{labels}"
        )


PARTS = {
    "imports": part_imports,
    "load": part_load,
    "executors": part_executors,
    "precision": part_precision,
    "faces": part_faces,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", default="imports,load,executors,precision")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--size", type=int, default=48, help="executors: image side")
    parser.add_argument("--images", type=int, default=4, help="executors: images per run")
    parser.add_argument("--executors", default="default,workers 0,before")
    parser.add_argument("--precision-size", type=int, default=64, help="precision: input side")
    parser.add_argument(
        "--variants",
        default="fp32 channels_last,bf16,bf16 channels_last,autocast bf16 channels_last",
        help="precision: variants beside fp32 (bf16 without native support is slow)",
    )
    parser.add_argument("--face-networks", default="gfpgan,parsenet,retinaface")
    parser.add_argument(
        "--face-variants",
        default="fp32 batch of 2 (per input),fp32 channels_last,fp32 torch.compile,"
        "fp32 ONNX Runtime,bf16 channels_last",
        help="faces: variants beside fp32 eager",
    )
    parser.add_argument(
        "--budget", type=float, default=300.0, help="faces: CPU-s a variant's first call may take"
    )
    parser.add_argument(
        "--weights", type=Path, default=Path(tempfile.gettempdir()) / "facefix-bench-cpu"
    )
    args = parser.parse_args()
    header(args)
    for part in args.parts.split(","):
        PARTS[part.strip()](args)


if __name__ == "__main__":
    main()
