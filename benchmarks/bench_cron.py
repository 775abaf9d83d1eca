"""What a cron run of `facefix fix` costs (issue 19): a run with nothing to do, and the cold
start of a run with work.

1. No-op: trees of N tiny PNGs that all have their `.fixed.png` (folders of 1,000), and
   `facefix fix TREE -U 2` run as a real process: wall, CPU (user + system) and peak RSS of that
   process (os.wait4), against a Python process that only walks the same tree with os.scandir
   (the floor: interpreter start + the walk), printed as a ratio.
2. Cold start: the same trees plus one new image, with random-weight Real-ESRGAN x2plus
   weights in the released layout (tests/checkpoints.py; loading them costs what the trained
   ones cost). The CLI runs under a small wrapper that records, when the first image enters the
   networks (the executors' "fix" stage, through the StageClock seam), how long the process had
   been running.
   In the same run, a separate process measures `import torch` and the network load
   (`Networks.load_all`) apart: the target is start -> first image <= import + load + 1 s.

With `--baseline-tree DIR` (another checkout, e.g. the commit before a change), each no-op
run is also made with DIR's facefix_cli, the two alternating, and the CPU ratio printed.
With `--ledger same|other` every folder holds the ledger a real run leaves (io.ledger): made
by the no-op run's own recipe (cron's case: read, nothing stat'ed) or by another (every done
output stat'ed and given a reason).

Usage (a few minutes on 2 cores; the trees are made once in --work):

    python benchmarks/bench_cron.py --sizes 1000,10000,20000
    python benchmarks/bench_cron.py --sizes 20000 --no-cold --baseline-tree ../base
    python benchmarks/bench_cron.py --sizes 20000 --no-cold --ledger same --baseline-tree ../base
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PNG_FILES_PER_FOLDER = 1000

WALK = """
import os, sys
def walk(folder):
    n = 0
    for entry in os.scandir(folder):
        if entry.is_dir():
            n += walk(entry.path)
        else:
            n += 1
    return n
print(walk(sys.argv[1]))
"""

# The CLI, recording how old the process was when the first image entered the networks.
FIRST_IMAGE = """
import json, sys
from contextlib import contextmanager
report = sys.argv.pop(1)
from facefix_cli.pipeline import clock  # light: no torch before the CLI runs
class FirstImage(clock.StageClock):
    @contextmanager
    def stage(self, name, count=1):
        if name == "fix" and not self.counts.get("first"):
            self.counts["first"] = 1
            with open(report, "w") as fh:
                json.dump({"first_image": clock.process_age()}, fh)
        yield
clock._installed = FirstImage()
from facefix_cli.cli import main
main(sys.argv[1:])
"""

# import torch, then the networks' load, timed apart in a fresh process.
IMPORT_AND_LOAD = """
import json, sys, time
from pathlib import Path
t0 = time.perf_counter()
import torch
t1 = time.perf_counter()
from facefix_cli.networks.cache import Networks
from facefix_cli.recipe import Recipe
Networks(Recipe(scale=2), Path(sys.argv[1]), torch.device("cpu")).load_all()
t2 = time.perf_counter()
print(json.dumps({"import_torch": t1 - t0, "load": t2 - t1}))
"""


def tiny_png(width: int = 8, height: int = 8, grey: int = 0) -> bytes:
    """An RGB PNG, made without numpy or cv2: this process stays small, because a child's peak
    RSS on Linux starts from its parent's at fork."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body).to_bytes(4, "big")
        return len(body).to_bytes(4, "big") + kind + body + crc

    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    rows = b"".join(b"\0" + bytes([grey]) * (3 * width) for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def make_tree(root: Path, files: int, ledger: str = "none") -> Path:
    """`files` done inputs in folders of 1,000: each with its .fixed.png; with `ledger` "same"
    or "other", each folder's ledger (io.ledger) entered as a run of `-U 2` (the no-op run's
    own recipe: the cron case) or of `-U 4` (every done file then gets a stat and a reason)
    would have left it."""
    tree = root / (f"done_{files}" if ledger == "none" else f"done_{files}_ledger_{ledger}")
    if tree.exists():
        return tree
    data = tiny_png()
    partial = root / f".partial_{files}"
    shutil.rmtree(partial, ignore_errors=True)
    for index in range(files):
        folder = partial / f"d{index // PNG_FILES_PER_FOLDER:03d}"
        if index % PNG_FILES_PER_FOLDER == 0:
            folder.mkdir(parents=True)
        (folder / f"{index:06d}.png").write_bytes(data)
        (folder / f"{index:06d}.fixed.png").write_bytes(data)
    if ledger != "none":
        from facefix_cli.io.ledger import RecipeTag, record
        from facefix_cli.recipe import Recipe

        tag = RecipeTag(tuple(Recipe(scale=2 if ledger == "same" else 4).rows()))
        for folder in sorted(partial.iterdir()):
            record(folder, sorted(folder.glob("*.fixed.png")), tag)
    partial.rename(tree)
    return tree


def measure(argv: list[str], env: dict[str, str]) -> dict[str, float]:
    """Wall, CPU and peak RSS of one child process (its own rusage, from wait4). Run from the
    filesystem root, so `python -m` finds facefix_cli on PYTHONPATH, not in the current folder."""
    start = time.perf_counter()
    child = subprocess.Popen(
        argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd="/"
    )
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    stderr = child.stderr.read().decode() if child.stderr else ""
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"{argv[:4]}... exited {child.returncode}:\n{stderr}")
    return {
        "wall": wall,
        "cpu": usage.ru_utime + usage.ru_stime,
        "rss_mb": usage.ru_maxrss / 1024,  # KiB on Linux
    }


def best_of(runs: int, argv: list[str], env: dict[str, str]) -> dict[str, float]:
    """The run with the least CPU (the machine is shared: the least disturbed one)."""
    return min((measure(argv, env) for _ in range(runs)), key=lambda m: m["cpu"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,20000", help="done files per tree")
    parser.add_argument("--runs", type=int, default=3, help="no-op runs per size (best kept)")
    parser.add_argument("--work", type=Path, default=None, help="where trees and weights go")
    parser.add_argument("--no-cold", action="store_true", help="skip the cold-start runs")
    parser.add_argument("--no-noop", action="store_true", help="skip the no-op runs")
    parser.add_argument(
        "--baseline-tree", type=Path, default=None, help="another checkout to compare no-ops with"
    )
    parser.add_argument(
        "--ledger",
        choices=("none", "same", "other"),
        default="none",
        help="each folder's ledger as a -U 2 (same) or -U 4 (other) run would have left it",
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    work = args.work or Path(tempfile.gettempdir()) / "facefix_bench_cron"
    work.mkdir(parents=True, exist_ok=True)
    weights = work / "weights"
    weights.mkdir(exist_ok=True)
    env = {**os.environ, "FACEFIX_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    # In a child: this process never imports torch (see tiny_png).
    subprocess.run(
        [sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]); "
         "from checkpoints import build; build('RealESRGAN_x2plus.pth', __import__('pathlib').Path(sys.argv[2]))",
         str(ROOT / "tests"), str(weights)],
        check=True,
    )  # fmt: skip
    python = sys.executable
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"cores {cores}, load average {load:.1f}, python {sys.version.split()[0]}")
    if args.no_noop:
        sizes_noop: list[int] = []
    else:
        sizes_noop = sizes
        print(f"\nno-op: every file already has its .fixed.png (best of {args.runs} by CPU)")
        print(f"{'files':>7} | {'facefix wall':>12} {'CPU':>7} {'RSS':>8} | "
              f"{'scandir wall':>12} {'CPU':>7} | {'CPU ratio':>9} {'us/file':>8}")  # fmt: skip
    for files in sizes_noop:
        tree = make_tree(work, files, args.ledger)
        cli = [python, "-m", "facefix_cli", "fix", str(tree), "-U", "2"]
        cli += ["--weights-dir", str(weights)]
        if args.baseline_tree is not None:
            before_env = {**env, "PYTHONPATH": str(args.baseline_tree.resolve())}
            pairs = [(measure(cli, env), measure(cli, before_env)) for _ in range(args.runs)]
            noop = min((after for after, _ in pairs), key=lambda m: m["cpu"])
            before = min((b for _, b in pairs), key=lambda m: m["cpu"])
            print(
                f"{files:>7} | baseline {args.baseline_tree}: {before['wall']:.2f}s wall "
                f"{before['cpu']:.2f}s CPU; this tree {noop['cpu']:.2f}s CPU: "
                f"{noop['cpu'] / before['cpu']:.3f}x"
            )
        else:
            noop = best_of(args.runs, cli, env)
        walk = best_of(args.runs, [python, "-c", WALK, str(tree)], env)
        per_file = (noop["cpu"] - walk["cpu"]) / files * 1e6
        print(
            f"{files:>7} | {noop['wall']:>11.2f}s {noop['cpu']:>6.2f}s {noop['rss_mb']:>6.0f}MB | "
            f"{walk['wall']:>11.2f}s {walk['cpu']:>6.2f}s | {noop['cpu'] / walk['cpu']:>8.1f}x "
            f"{per_file:>8.1f}"
        )
    if args.no_cold:
        return
    run_cold(sizes, work, weights, env, python)


def run_cold(sizes: list[int], work: Path, weights: Path, env: dict[str, str], python: str) -> None:
    print("\ncold start: the tree plus one new image (Real-ESRGAN x2plus, random weights, CPU)")
    print("import torch and the network load measured apart just before each run")
    print(f"{'files':>7} | {'import torch':>12} {'load':>7} | {'start -> first image':>20} | "
          f"{'vs import+load':>14}")  # fmt: skip
    report = work / "first_image.json"
    for files in sizes:
        tree = make_tree(work, files)
        new = tree / "new.png"
        fixed = tree / "new.fixed.png"
        fixed.unlink(missing_ok=True)
        new.write_bytes(tiny_png(64, 64, grey=128))
        report.unlink(missing_ok=True)
        cli = [python, "-c", FIRST_IMAGE, str(report), "fix", str(tree), "-U", "2"]
        cli += ["--weights-dir", str(weights), "--device", "cpu"]
        apart = json.loads(
            subprocess.run(
                [python, "-c", IMPORT_AND_LOAD, str(weights)],
                env=env, capture_output=True, text=True, check=True,
            ).stdout
        )  # fmt: skip
        budget = apart["import_torch"] + apart["load"]
        measure(cli, env)
        first = json.loads(report.read_text())["first_image"]
        print(
            f"{files:>7} | {apart['import_torch']:>11.2f}s {apart['load']:>6.2f}s | "
            f"{first:>19.2f}s | {first - budget:>+13.2f}s (target <= +1 s)"
        )
        new.unlink()
        fixed.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
