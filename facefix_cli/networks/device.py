"""Pick the torch device(s) and the settings that follow from them: `--device` parsing (one
device or a comma-separated list, one GPU stage each), tiles and batch sizes from memory."""

from __future__ import annotations

import contextlib
import functools
import os
import re
from collections.abc import Iterator

import torch

from facefix_cli.errors import SetupError
from facefix_cli.networks.names import parse_devices
from facefix_cli.ops.restore import FACE_BATCH


def resolve_device(name: str = "auto") -> torch.device:
    """auto: CUDA if present, else Apple MPS, else CPU. An explicit device must exist."""
    name = name.strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "mps":
        if not torch.backends.mps.is_available():
            raise SetupError(
                "--device mps: Apple MPS is not available on this machine; use --device cpu"
            )
        return torch.device("mps")
    match = re.fullmatch(r"cuda(?::(\d+))?", name)
    if match:
        if not torch.cuda.is_available():
            raise SetupError(
                f"--device {name}: no CUDA GPU is available here; use --device cpu or auto"
            )
        index = int(match.group(1) or 0)
        if index >= torch.cuda.device_count():
            raise SetupError(
                f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) present"
            )
        return torch.device("cuda", index)
    raise SetupError(f"--device {name!r}: expected auto, cpu, cuda, cuda:N or mps")


def resolve_devices(text: str = "auto") -> list[torch.device]:
    """Every device a --device value names, each checked to exist. `cuda` (and `auto` on a
    machine with CUDA) means every visible GPU, so a multi-GPU machine gets one GPU stage per
    GPU; list them (`cuda:0,cuda:1`) or set CUDA_VISIBLE_DEVICES to use fewer."""
    devices: list[torch.device] = []
    for name in parse_devices(text):
        if name in ("auto", "cuda") and torch.cuda.is_available():
            devices.extend(torch.device("cuda", i) for i in range(torch.cuda.device_count()))
        else:
            devices.append(resolve_device(name))
    return devices


def describe_devices(devices: list[torch.device]) -> str:
    """The devices in words, with each GPU's name: `cuda:0 (NVIDIA H100 80GB HBM3), cuda:1 (...)`."""
    names = []
    for device in devices:
        if device.type == "cuda":
            index = device.index if device.index is not None else torch.cuda.current_device()
            names.append(f"cuda:{index} ({torch.cuda.get_device_name(index)})")
        else:
            names.append(str(device))
    return ", ".join(names)


def default_batch_size(device: torch.device, size: tuple[int, int], scale: int) -> int:
    """Images per GPU pass when --batch-size is not given: 1 off CUDA (a CPU gains nothing from
    batching); on CUDA, as many as fit in half of the free memory at an estimated 3 KiB per
    output pixel (three 64-channel fp32 feature maps of the upscaler at output resolution, the
    largest live set), at most 16. E.g. 512x512 inputs at x2 on an H100 with 79 GiB free: 13;
    at x4: 3. A first estimate, to be tuned by measurement on the GPU."""
    if device.type != "cuda":
        return 1
    free, _total = torch.cuda.mem_get_info(device)
    width, height = size
    per_image = width * height * scale * scale * 3 * 1024
    return max(1, min(16, int(free * 0.5 // per_image)))


DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo flags of native bf16 arithmetic


def cpuinfo_has_bf16(cpuinfo: str) -> bool:
    """Whether /proc/cpuinfo's text lists a native bf16 flag on its first `flags` line."""
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            return any(flag in line.split() for flag in CPU_BF16_FLAGS)
    return False


@functools.cache
def _this_cpu_has_bf16() -> bool:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as cpuinfo:
            return cpuinfo_has_bf16(cpuinfo.read())
    except OSError:
        return False  # not Linux: fp32, the safe choice


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX), where bf16 convolutions
    are ~5x faster than fp32 (benchmarks/RESULTS.md, "CPU path"). FACEFIX_CPU_BF16=0 or 1
    overrides the detection (the tests pin 0, so their outputs stay fp32-exact)."""
    override = os.environ.get("FACEFIX_CPU_BF16", "").strip()
    if override in ("0", "1"):
        return override == "1"
    return _this_cpu_has_bf16()


def upscaler_dtype(precision: str, device: torch.device) -> torch.dtype:
    """auto: fp16 on CUDA, as Real-ESRGAN's own inference script runs by default (with a fp32
    retry for an image whose fp16 output is not finite); on a CPU with native bf16, bf16 (with
    the same fp32 retry): ~5x faster than fp32 for Real-ESRGAN x4plus at PSNR ~55 dB against
    fp32 on the trained weights; fp32 elsewhere (other CPUs gain nothing from reduced
    precision, MPS is unmeasured)."""
    if precision == "auto":
        if device.type == "cuda":
            return torch.float16
        if device.type == "cpu" and cpu_has_native_bf16():
            return torch.bfloat16
        return torch.float32
    return DTYPES[precision]


def channels_last_upscaler(dtype: torch.dtype, device: torch.device) -> bool:
    """Whether the upscaler's weights go channels_last: for bf16 on the CPU, where oneDNN's
    bf16 convolutions run fastest in that layout (1.73 against 3.41 CPU-s for x4plus at
    128 px). Not for fp32: 1.02x on an AVX2 CPU, 1.37x on one with AVX-512, and not
    byte-identical to today's outputs (`benchmarks/RESULTS.md`, "CPU path")."""
    return device.type == "cpu" and dtype == torch.bfloat16


def face_batch(device: torch.device) -> int:
    """Faces per restorer and parser pass: one at a time on a CPU, where two faces in one pass
    cost ~10 % more CPU time per face than one after the other (GFPGAN 0.90x, ParseNet 0.91x:
    `benchmarks/bench_cpu.py --parts faces`) and hold every face's activations at once (the
    peak of a 1024 px x4 fix); FACE_BATCH on a GPU, where batches fill the device."""
    return 1 if device.type == "cpu" else FACE_BATCH


def channels_last_parser(device: torch.device) -> bool:
    """Whether ParseNet's weights go channels_last: on a CPU, where oneDNN runs it 1.2-1.3x
    faster in that layout with the same face classes (logits within 3e-7; `bench_cpu.py
    --parts faces`). Its masks are what the paste is weighted by, so this stays within 1/255."""
    return device.type == "cpu"


def face_dtype(precision: str, device: torch.device) -> torch.dtype:
    """The face restorer's dtype. auto keeps fp32: GFPGAN and CodeFormer in reduced precision
    have not been measured against the output tolerances yet (on a GPU, or in bf16 on a CPU). RetinaFace and ParseNet
    always run in fp32 (detection thresholds and mask argmax are the sensitive steps, and they
    are cheap)."""
    return torch.float32 if precision == "auto" else DTYPES[precision]


# Share of the free memory one upscaler pass may use, and the most it may use on a CPU: the
# rest is for the full-size images around it (and, on a CPU, other processes).
MEMORY_SHARE = 0.25
CPU_BUDGET_CAP = 2 * 2**30
CPU_FALLBACK_AVAILABLE = 4 * 2**30  # when the OS does not say


def available_host_memory() -> int:
    """Bytes of host memory available to a new allocation: MemAvailable from /proc/meminfo,
    else the free physical pages, else a modest guess (psutil is not a dependency)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return CPU_FALLBACK_AVAILABLE


def upscale_memory_budget(device: torch.device) -> int | None:
    """Bytes one upscaler pass may use on `device`; None where tiles are fixed (MPS)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        return int((free + cached) * 0.7)  # out of memory still retries with smaller tiles
    if device.type == "cpu":
        return int(min(available_host_memory() * MEMORY_SHARE, CPU_BUDGET_CAP))
    return None


def make_deterministic() -> None:
    # Same input, options, weights and device must give the same bytes.
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """torch's intra-op threads set to `count` for the block (the run's thread budget), then
    back to what they were: the library leaves the process as it found it."""
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
