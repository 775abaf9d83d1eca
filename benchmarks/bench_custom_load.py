"""What loading a custom `--upscaler`/`--restorer` file costs before and after its
architecture is remembered in the digest sidecar (issue 26).

Each case runs in a fresh process (the cost is the imports, which a warm process hides) and
reports the modules imported and the process's CPU seconds (user + system, os.wait4), the
median of `--repeat` runs:

- `import torch`: the floor every load pays;
- a registry file with its known architecture (`load_spandrel_model(path, cpu, "ESRGAN")`);
- a custom file the first time: no architecture remembered (its sidecar removed before each
  run), so spandrel's whole registry identifies it;
- the same file once remembered: the sidecar names its architecture, imported alone.

The file is the random-weight Real-ESRGAN x2plus of tests/checkpoints.py in the released
layout (an RRDBNet: the same imports as the trained one), copied under another name.

    uv run python benchmarks/bench_custom_load.py --repeat 3
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

CHILD = """
import sys, pathlib
import torch
mode, path = sys.argv[1], pathlib.Path(sys.argv[2])
if mode != "torch":
    from facefix_cli.networks.load import load_spandrel_model
    load_spandrel_model(path, torch.device("cpu"), "ESRGAN" if mode == "known" else None)
print(len(sys.modules))
"""


def run_child(mode: str, path: Path) -> tuple[int, float]:
    """(modules imported, CPU seconds) of one fresh process."""
    process = subprocess.Popen(
        [sys.executable, "-c", CHILD, mode, str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert process.stdout is not None
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    if status != 0:
        raise SystemExit(f"{mode}: the child failed (status {status})")
    return int(output.split()[-1]), usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from checkpoints import build

    from facefix_cli.weights import digests

    with tempfile.TemporaryDirectory() as work:
        folder = Path(work)
        build("RealESRGAN_x2plus.pth", folder)
        registry_file = folder / "RealESRGAN_x2plus.pth"
        custom = folder / "my-upscaler.pth"
        shutil.copy(registry_file, custom)

        def first_time() -> tuple[int, float]:
            digests.sidecar_path(custom).unlink(missing_ok=True)
            return run_child("custom", custom)

        cases = {
            "import torch": lambda: run_child("torch", custom),
            "registry file, known architecture": lambda: run_child("known", registry_file),
            "custom file, first time (whole registry)": first_time,
            "custom file, architecture remembered": lambda: run_child("custom", custom),
        }
        results: dict[str, tuple[int, float]] = {}
        for name, case in cases.items():
            if name.endswith("remembered"):
                first_time()  # identify it once, so the sidecar names the architecture
                assert digests.cached_architecture(custom) is not None
            runs = [case() for _ in range(args.repeat)]
            results[name] = (runs[0][0], statistics.median(cpu for _, cpu in runs))

    first = results["custom file, first time (whole registry)"][1]
    print(f"{'case':44} {'modules':>8} {'CPU s':>7} {'vs first time':>14}")
    for name, (modules, cpu) in results.items():
        print(f"{name:44} {modules:8d} {cpu:7.2f} {cpu / first:13.2f}x")


if __name__ == "__main__":
    main()
