"""`facefix fix` as root over a tree another user writes (issue 27): that user's links never
redirect a write nor lead root to what they do not own, links of the same user still work,
outputs are no more readable than their inputs and belong to their inputs' owner.

The other user is played by chown (and, for links planted during a run, by a shell running as
that uid), which needs root: CI runs as root; elsewhere these tests are skipped, saying why.
Upscale-only with a one-block random upscaler on tiny images."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest
from checkpoints import realesrgan_state_dict, save_params_ema
from conftest import gradient_image
from PIL import Image
from typer.testing import CliRunner

from facefix_cli.cli import app
from facefix_cli.io.discover import LINK_REASON
from facefix_cli.io.write import quantize

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.geteuid() != 0, reason="plays two users by chown and setuid, which need root"
    ),
]
OTHER = 4242
SECRET = b"root's own bytes"
runner = CliRunner()


@pytest.fixture(scope="module")
def tiny_upscaler(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tiny")
    return save_params_ema(realesrgan_state_dict(2, num_block=1), folder / "tiny_x2.pth")


def fix(upscaler: Path, *args):
    argv = ["fix", *map(str, args), "--upscaler", str(upscaler)]
    argv += ["--weights-dir", str(upscaler.parent), "--json"]
    return runner.invoke(app, argv, catch_exceptions=False)


def make_png(path: Path, seed: int = 0, mode: int = 0o644, uid: int = OTHER) -> Path:
    Image.fromarray(quantize(gradient_image(12, 12, seed), 8)).save(path)
    path.chmod(mode)
    os.chown(path, uid, uid)
    return path


def planted_link(link: Path, target: Path) -> Path:
    os.symlink(target, link)
    os.chown(link, OTHER, OTHER, follow_symlinks=False)
    return link


@pytest.fixture
def private(tmp_path) -> Path:
    """A root-only folder outside the tree with a root-only image in it."""
    folder = tmp_path / "private"
    folder.mkdir(mode=0o700)
    make_png(folder / "secret.png", seed=9, mode=0o600, uid=0)
    return folder


@pytest.fixture
def tree(tmp_path) -> Path:
    folder = tmp_path / "tree"
    folder.mkdir()
    os.chown(folder, OTHER, OTHER)
    return folder


def listing(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_another_users_links_are_skipped_and_outputs_keep_the_inputs_mode_and_owner(
    tmp_path, tiny_upscaler, tree, private
):
    make_png(tree / "private.png", mode=0o600)
    make_png(tree / "shared.png", seed=1, mode=0o644)
    planted_link(tree / "root-only", private)  # a root-only folder
    planted_link(tree / "etc", Path("/etc"))  # a system folder
    planted_link(tree / "stolen.png", private / "secret.png")  # a root-only image
    (tree / "theirs").mkdir()
    make_png(tree / "theirs" / "t.png", seed=2)
    os.chown(tree / "theirs", OTHER, OTHER)
    planted_link(tree / "again", tree / "theirs")  # their own folder: followed (walked once)
    before, etc = listing(private), sorted(os.listdir("/etc"))
    result = fix(tiny_upscaler, tree, "-v")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["processed"] == 3
    assert summary["skipped_reasons"] == {LINK_REASON: 3}
    assert "stolen.png" in result.stderr and LINK_REASON in result.stderr  # -v lists them
    assert listing(private) == before and sorted(os.listdir("/etc")) == etc
    assert not (tree / "stolen.fixed.png").exists()
    for name, mode in (("private", 0o600), ("shared", 0o644)):
        st = (tree / f"{name}.fixed.png").stat()
        assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (mode, OTHER, OTHER)
    assert (tree / "theirs" / "t.fixed.png").stat().st_uid == OTHER


def test_with_an_output_dir_no_copy_of_a_root_only_image_lands_in_the_output_tree(
    tmp_path, tiny_upscaler, tree, private
):
    make_png(tree / "a.png", mode=0o640)
    planted_link(tree / "stolen.png", private / "secret.png")
    planted_link(tree / "root-only", private)
    out = tmp_path / "out"
    result = fix(tiny_upscaler, tree, "--output-dir", out)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.rglob("*") if not p.name.startswith(".")) == ["a.fixed.png"]
    st = (out / "a.fixed.png").stat()
    assert (stat.S_IMODE(st.st_mode), st.st_uid) == (0o640, OTHER)


def test_a_link_owned_by_the_user_running_still_works(tmp_path, tiny_upscaler):
    disk = tmp_path / "disk"
    disk.mkdir()
    make_png(disk / "a.png", uid=0)
    make_png(tmp_path / "c.png", uid=OTHER)  # root's link to another user's file: followed
    tree = tmp_path / "tree"
    tree.mkdir()
    os.symlink(disk, tree / "elsewhere")
    os.symlink(tmp_path / "c.png", tree / "b.png")
    result = fix(tiny_upscaler, tree)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["processed"] == 2
    assert (disk / "a.fixed.png").is_file() and (tree / "b.fixed.png").is_file()


def test_an_output_folder_that_is_another_users_link_is_not_written(
    tmp_path, tiny_upscaler, private
):
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    make_png(tree / "sub" / "a.png", uid=0)
    out = tmp_path / "out"
    out.mkdir(mode=0o777)
    planted_link(out / "sub", private)  # the other user got there first
    before = listing(private)
    result = fix(tiny_upscaler, tree, "--output-dir", out)
    assert result.exit_code == 1 and "not followed" in result.stderr, result.output
    assert listing(private) == before


# The other user, live: while the run works, plant a link to the root-only image at every name
# it can see or guess beside the outputs (the output itself, the pre-#27 temporary name), and
# swap every temporary file it sees for such a link.
PLANTER = r"""
cd "$1" || exit 1; secret=$2; stop=$3
while [ ! -e "$stop" ]; do
  for c in .*.claim; do
    [ -e "$c" ] || continue
    name=${c#.}; name=${name%.claim}
    ln -sfn "$secret" "$name" 2>/dev/null
  done
  for t in .*.tmp; do
    [ -e "$t" ] && [ ! -L "$t" ] || continue
    rm -f "$t" && ln -s "$secret" "$t" 2>/dev/null
  done
  sleep 0.005
done
"""


@pytest.fixture
def reachable_tree():
    """A folder the other user owns that their process can reach (pytest's own temporary
    folders are root's alone)."""
    top = Path(tempfile.mkdtemp(prefix="facefix-27-"))
    top.chmod(0o755)
    tree = top / "tree"
    tree.mkdir()
    os.chown(tree, OTHER, OTHER)
    yield tree
    shutil.rmtree(top)


def test_links_planted_during_the_run_never_redirect_a_write(
    tiny_upscaler, reachable_tree, private
):
    tree = reachable_tree
    for index in range(4):
        make_png(tree / f"{index}.png", seed=index)
        # the name a temporary file had before issue 27, planted ahead of the run
        planted_link(tree / f".{index}.fixed.png.{os.getpid()}.tmp", private / "secret.png")
    before = listing(private)
    stop = tree.parent / "stop"
    planter = subprocess.Popen(
        ["/bin/sh", "-c", PLANTER, "planter", str(tree), str(private / "secret.png"), str(stop)],
        user=OTHER,
        group=OTHER,
        extra_groups=[],
    )
    try:
        results = [fix(tiny_upscaler, tree, "--overwrite") for _ in range(2)]
    finally:
        stop.touch()
        try:
            planter.wait(timeout=30)
        except subprocess.TimeoutExpired:
            planter.kill()
            raise
    assert planter.returncode == 0  # it ran all along, in the tree
    assert all(r.exit_code in (0, 1) for r in results), [r.output for r in results]
    assert listing(private) == before  # nothing written through any link
    for path in tree.iterdir():  # whatever is not a planted link is a whole output or input
        if not path.is_symlink() and path.name.endswith(".fixed.png"):
            with Image.open(path) as image:
                assert image.size == (24, 24)
