"""facefix from cron, as real processes: a run with nothing to do never imports torch, symlinked
folders are fixed, and what a run logs and prints stays small and timestamped (issue 19)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from checkpoints import realesrgan_state_dict, save_params_ema
from conftest import gradient_image, hidden_leftovers
from PIL import Image

from facefix_cli.io.ledger import LEDGER_NAME
from facefix_cli.io.write import quantize

REPO = Path(__file__).resolve().parents[2]

# The CLI in this process, then, at exit, whether torch was ever imported.
WRAPPER = """
import atexit, sys
report = sys.argv.pop(1)
def imported():
    with open(report, "w") as fh:
        fh.write(" ".join(sorted(m for m in ("torch", "cv2", "spandrel") if m in sys.modules)))
atexit.register(imported)
from facefix_cli.cli import main
main(sys.argv[1:])
"""


@pytest.fixture(scope="module")
def tiny_upscaler(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tiny")
    return save_params_ema(realesrgan_state_dict(2, num_block=1), folder / "tiny_x2.pth")


def make_png(path: Path, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(quantize(gradient_image(12, 12, seed), 8)).save(path)
    return path


def facefix(upscaler: Path, tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess, str]:
    report = tmp_path / "imported.txt"
    argv = [sys.executable, "-c", WRAPPER, str(report), "fix", "--upscaler", str(upscaler)]
    argv += ["--weights-dir", str(upscaler.parent), *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300, cwd=REPO)
    return done, report.read_text()


def test_a_run_with_nothing_to_do_never_imports_torch(tmp_path, tiny_upscaler):
    tree = tmp_path / "tree"
    for index in range(30):
        make_png(tree / f"d{index % 3}" / f"{index}.png", seed=index)
        make_png(tree / f"d{index % 3}" / f"{index}.fixed.png", seed=index)
    done, imported = facefix(tiny_upscaler, tmp_path, str(tree), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["skipped"] == 30
    assert "torch" not in imported.split() and "spandrel" not in imported.split()
    # the same wrapper sees torch when there is work (the check can fail)
    make_png(tree / "new.png")
    done, imported = facefix(tiny_upscaler, tmp_path, str(tree), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["processed"] == 1 and "torch" in imported.split()


def test_a_dry_run_imports_no_torch_and_says_how_many_it_would_do(tmp_path, tiny_upscaler):
    make_png(tmp_path / "in" / "a.png")
    make_png(tmp_path / "in" / "b.png")
    done, imported = facefix(tiny_upscaler, tmp_path, str(tmp_path / "in"), "--dry-run")
    assert done.returncode == 0, done.stderr
    assert "torch" not in imported.split()
    assert not list((tmp_path / "in").glob("*.fixed.png"))
    assert "would do 2, processed 0" in done.stderr.splitlines()[-1]


def test_symlinked_render_folders_are_fixed_once(tmp_path, tiny_upscaler):
    make_png(tmp_path / "disk" / "renders" / "a.png")
    tree = tmp_path / "tree"
    make_png(tree / "b.png", seed=1)
    os.symlink(tmp_path / "disk" / "renders", tree / "renders")
    os.symlink(tmp_path / "disk" / "renders", tree / "renders_again")
    os.symlink(tree, tree / "loop")
    done, _ = facefix(tiny_upscaler, tmp_path, str(tree), "--json", "--workers", "0")
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert record["processed"] == 2 and record["failed"] == 0
    assert (tmp_path / "disk" / "renders" / "a.fixed.png").exists()
    assert (tree / "b.fixed.png").exists()


def test_json_counts_skipped_files_by_reason_and_lists_them_only_with_verbose(
    tmp_path, tiny_upscaler
):
    for index in range(5):
        make_png(tmp_path / "in" / f"{index}.png", seed=index)
        make_png(tmp_path / "in" / f"{index}.fixed.png", seed=index)
    (tmp_path / "in" / "x.webp").write_bytes(b"RIFF\0\0\0\0WEBP")
    done, _ = facefix(tiny_upscaler, tmp_path, str(tmp_path / "in"), "--json")
    record = json.loads(done.stdout)
    assert done.returncode == 0 and record["skipped"] == 6 and record["files"] == []
    assert record["skipped_reasons"] == {
        "output exists (use --overwrite)": 5,
        ".webp is not in --ext": 1,
    }
    done, _ = facefix(tiny_upscaler, tmp_path, str(tmp_path / "in"), "--json", "-v")
    assert len(json.loads(done.stdout)["files"]) == 6


def test_a_full_disk_or_unwritable_output_tree_stops_before_any_network_loads(
    tmp_path, tiny_upscaler
):
    make_png(tmp_path / "in" / "a.png")
    blocked = Path("/sys/facefix-test-output")  # sysfs: mkdir refused even to root
    try:
        blocked.mkdir()
    except OSError as exc:
        refused = exc.errno
    else:
        blocked.rmdir()
        pytest.skip("this machine lets /sys be written")
    import errno

    if refused not in (errno.EPERM, errno.EACCES, errno.EROFS):
        pytest.skip(f"mkdir in /sys fails with {errno.errorcode[refused]} here")
    done, imported = facefix(
        tiny_upscaler, tmp_path, str(tmp_path / "in"), "--output-dir", str(blocked), "--json"
    )
    assert done.returncode == 4, done.stderr
    record = json.loads(done.stdout)
    assert record["fault"].startswith(f"cannot write to {blocked}")
    assert record["not_started"] == 1 and record["processed"] == 0
    assert "torch" not in imported.split()  # nothing loaded: it said so at once
    assert "loading" not in done.stderr


STARTS_LATE = """
import sys, time
time.sleep(float(sys.argv.pop(1)))  # a slow start (imports on a loaded machine)
from facefix_cli.cli import main
main(sys.argv[1:])
"""


def test_max_time_counts_from_process_start(tmp_path, tiny_upscaler):
    for index in range(2):
        make_png(tmp_path / "in" / f"{index}.png", seed=index)
    argv = [sys.executable, "-c", STARTS_LATE, "2.5", "fix", str(tmp_path / "in"), "--upscaler"]
    argv += [str(tiny_upscaler), "--weights-dir", str(tiny_upscaler.parent), "--max-time", "2s"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    done = subprocess.run(argv + ["--json"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert record["stopped"] == "--max-time 2s reached"
    assert record["processed"] == 0 and record["not_started"] == 2
    assert not list((tmp_path / "in").glob("*.fixed.png"))
    assert hidden_leftovers(tmp_path / "in") == []  # no claims


# A real full disk: a small tmpfs as the output tree, mounted in a private mount namespace (an
# unprivileged user namespace, so no root is needed); the results are copied out before the
# namespace ends.
FULL_DISK = """
set -u
out=$1; saved=$2; shift 2
mount -t tmpfs -o size=2500k facefix-test "$out" || exit 97
"$@"
rc=$?
cp -a "$out/." "$saved/"
exit $rc
"""


def namespaces_work() -> bool:
    try:
        probe = ["unshare", "--user", "--map-root-user", "--mount", "true"]
        return subprocess.run(probe, capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def test_a_disk_that_fills_mid_run_stops_with_one_line_and_leaves_every_output_whole(
    tmp_path, tiny_upscaler
):
    if not namespaces_work():
        pytest.skip("no unprivileged mount namespaces here (unshare --user --mount)")
    rng = np.random.default_rng(0)
    originals = {}
    for index in range(3):  # noise: each 720 px output is ~1.5 MB even as a PNG
        path = tmp_path / "in" / f"{index}.png"
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (360, 360, 3), dtype=np.uint8)).save(path)
        originals[path] = path.read_bytes()
    out, saved = tmp_path / "out", tmp_path / "saved"
    out.mkdir()
    saved.mkdir()
    cli = [sys.executable, "-m", "facefix_cli", "fix", str(tmp_path / "in"), "-U", "2"]
    cli += ["--upscaler", str(tiny_upscaler), "--weights-dir", str(tiny_upscaler.parent)]
    cli += ["--output-dir", str(out), "--upscale-strength", "0", "--json"]
    argv = ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", FULL_DISK, "sh"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        argv + [str(out), str(saved), *cli], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 4, done.stderr  # an environment fault, not a per-file failure
    record = json.loads(done.stdout)
    assert record["fault"] == f"cannot write {out / '1.fixed.png'}: disk full"
    # 2.5 MB takes one output and not two: one written, one attempted, one never started
    assert (record["processed"], record["not_started"]) == (1, 1)
    errors = [line for line in done.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and "disk full" in errors[0], done.stderr
    written = sorted(p for p in saved.iterdir() if p.name != LEDGER_NAME)  # io.ledger: a hint
    assert [p.name for p in written] == ["0.fixed.png"]  # no temporary file, no claim left
    with Image.open(written[0]) as fixed:
        assert fixed.size == (720, 720) and "facefix" in fixed.info
        fixed.load()  # whole: it decodes to the end
    assert all(path.read_bytes() == data for path, data in originals.items())
