"""Two users on one tree (io.safefs, io.write, io.claims, the walk): links planted by another user
never redirect a write or lead root to what that user does not own; a user's own links work.

The tests play the second user by giving files and links to another uid (root may chown to any
uid), so they need root: CI runs as root; elsewhere they are skipped, saying why."""

from __future__ import annotations

import errno
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from facefix_cli.errors import ImageError, OutputWriteError
from facefix_cli.io import claims, safefs
from facefix_cli.io import write as write_module
from facefix_cli.io.discover import LINK_REASON, Kind, scan
from facefix_cli.io.files import read_file
from facefix_cli.io.names import TEMPORARY_RE, claim_path
from facefix_cli.io.write import write_atomic

OTHER = 4242  # the other user: any uid but root's and ours will do
PNG = b"\x89PNG\r\n\x1a\n" + bytes(16)
SECRET = b"root's own bytes"

as_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="plays two users by chown, which needs root (CI runs as root)"
)


def other_users(path: Path, uid: int = OTHER) -> Path:
    """Give `path` (a link itself, not its target) to `uid`."""
    os.chown(path, uid, uid, follow_symlinks=False)
    return path


def planted_link(link: Path, target: Path, uid: int = OTHER) -> Path:
    os.symlink(target, link)
    return other_users(link, uid)


@pytest.fixture
def secret(tmp_path) -> Path:
    """A root-only file outside the tree: what a planted link points at."""
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    path = private / "secret.png"
    path.write_bytes(SECRET)
    path.chmod(0o600)
    return path


@pytest.fixture
def tree(tmp_path) -> Path:
    """A folder the other user owns and writes."""
    folder = tmp_path / "tree"
    folder.mkdir()
    folder.chmod(0o777)
    return other_users(folder)


# --- creating files -------------------------------------------------------------------------


@pytest.mark.parametrize("dangling", [False, True])
def test_a_new_file_is_never_made_through_a_link(tmp_path, secret, dangling):
    target = tmp_path / "nowhere.png" if dangling else secret
    planted_link(tmp_path / "name", target)
    with pytest.raises(FileExistsError):
        safefs.create_exclusive(tmp_path / "name")
    assert secret.read_bytes() == SECRET and not (tmp_path / "nowhere.png").exists()


def test_temporary_names_cannot_be_guessed_and_the_sweep_knows_them(tmp_path):
    seen: list[str] = []
    real = safefs.create_exclusive

    def spy(name, *args, **kwargs):
        seen.append(str(name))
        return real(name, *args, **kwargs)

    for _ in range(2):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(safefs, "create_exclusive", spy)
            write_atomic(tmp_path / "a.fixed.png", PNG)
    assert len(set(seen)) == 2  # a new random name each time
    for name in seen:
        match = TEMPORARY_RE.match(name)
        assert match and match["stem"] == "a.fixed.png" and int(match["pid"]) == os.getpid()
        assert match["token"] and len(match["token"]) == safefs.TOKEN_CHARS


@as_root
def test_links_planted_at_the_old_temporary_name_and_the_output_are_not_written_through(
    tree, secret
):
    output = tree / "a.fixed.png"
    planted_link(tree / f".a.fixed.png.{os.getpid()}.tmp", secret)  # the name before #27
    planted_link(output, secret)
    write_atomic(output, PNG)
    assert secret.read_bytes() == SECRET
    assert not output.is_symlink() and output.read_bytes() == PNG  # the link was replaced


@as_root
def test_a_link_planted_at_the_exact_temporary_name_fails_the_write_not_the_target(
    tree, secret, monkeypatch
):
    """Were the random name guessed, O_EXCL|O_NOFOLLOW still refuses the planted link."""
    real = write_module.temporary_path

    def guessed(output, pid=None):
        path = real(output, pid)
        planted_link(path, secret)
        return path

    monkeypatch.setattr(write_module, "temporary_path", guessed)
    with pytest.raises(OutputWriteError) as caught:
        write_atomic(tree / "a.fixed.png", PNG)
    assert caught.value.errno == errno.EEXIST
    assert secret.read_bytes() == SECRET and not (tree / "a.fixed.png").exists()


@pytest.mark.parametrize(("mode", "umask", "expected"), [(0o600, 0o022, 0o600), (0o644, 0o022, 0o644), (0o666, 0o077, 0o600), (0o640, 0o002, 0o640)])  # fmt: skip
def test_the_output_mode_is_the_one_asked_masked_by_the_umask(tmp_path, mode, umask, expected):
    old = os.umask(umask)
    try:
        write_atomic(tmp_path / "a.fixed.png", PNG, mode=mode)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.fixed.png").stat().st_mode) == expected


@as_root
def test_as_root_the_output_gets_the_owner_asked_before_it_is_in_place(tmp_path):
    write_atomic(tmp_path / "a.fixed.png", PNG, mode=0o600, owner=(OTHER, OTHER + 1))
    st = (tmp_path / "a.fixed.png").stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (OTHER, OTHER + 1, 0o600)


def test_a_folder_replaced_since_it_was_checked_is_not_written(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    other = tmp_path / "other"
    other.mkdir()
    st = other.stat()
    with pytest.raises(OutputWriteError) as caught:
        write_atomic(folder / "a.fixed.png", PNG, folder=(st.st_dev, st.st_ino))
    assert caught.value.errno == errno.ELOOP and list(folder.iterdir()) == []


# --- claims ---------------------------------------------------------------------------------


@as_root
def test_a_link_planted_at_a_claim_is_neither_followed_nor_read(tree, secret):
    output = tree / "a.fixed.png"
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # a dead owner: read, the claim would be stale and taken over
    secret.write_bytes(json.dumps({"host": claims.HOST, "pid": child.pid, "token": "x"}).encode())
    before = secret.read_bytes()
    planted_link(claim_path(output), secret)
    assert claims.acquire(output) is None  # held: by a link nobody may follow
    assert not claims.is_stale(claim_path(output))  # its content (a dead pid) was not read
    assert secret.read_bytes() == before


# --- reading inputs -------------------------------------------------------------------------


@as_root
def test_another_users_link_to_a_root_only_file_is_not_read(tree, secret):
    planted_link(tree / "a.png", secret)
    with pytest.raises(ImageError, match="not followed"):
        read_file(tree / "a.png")


@as_root
@pytest.mark.parametrize("link_owner", [0, OTHER])
def test_links_of_root_or_of_the_targets_owner_are_followed(tree, tmp_path, link_owner):
    target = tmp_path / "theirs.png"
    target.write_bytes(PNG)
    other_users(target)
    planted_link(tree / "a.png", target, link_owner)
    data, st = read_file(tree / "a.png")
    assert data == PNG and st.st_uid == OTHER


def test_a_file_swapped_since_the_walk_is_not_read(tmp_path):
    (tmp_path / "a.png").write_bytes(PNG)
    seen = (tmp_path / "a.png").stat().st_ino
    (tmp_path / "b.png").write_bytes(PNG)
    os.replace(tmp_path / "b.png", tmp_path / "a.png")
    with pytest.raises(ImageError, match="replaced since the walk"):
        read_file(tmp_path / "a.png", seen)


def test_a_fifo_planted_as_an_input_does_not_block(tmp_path):
    os.mkfifo(tmp_path / "a.png")
    with pytest.raises(ImageError, match="not a regular file"):
        read_file(tmp_path / "a.png")


# --- folders --------------------------------------------------------------------------------


@as_root
def test_folders_under_the_output_tree_are_not_made_through_another_users_link(tmp_path, secret):
    out = tmp_path / "out"
    out.mkdir()
    planted_link(out / "sub", secret.parent)
    with pytest.raises(safefs.UntrustedLink):
        safefs.make_folders(out, Path("sub/deeper"))
    assert list(secret.parent.iterdir()) == [secret]


def test_folders_under_the_output_tree_follow_ones_own_links(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "disk").mkdir()
    os.symlink(tmp_path / "disk", out / "sub")
    safefs.make_folders(out, Path("sub/deeper/still"))
    assert (tmp_path / "disk" / "deeper" / "still").is_dir()


# --- the walk -------------------------------------------------------------------------------


def found(paths) -> dict[str, tuple[Kind, str]]:
    return {f.source.name: (f.kind, f.reason) for f in scan(paths)}


@as_root
def test_the_walk_skips_another_users_links_into_root_only_and_system_folders(tree, secret):
    (tree / "mine.png").write_bytes(PNG)
    planted_link(tree / "private", secret.parent)  # a root-only folder
    planted_link(tree / "etc", Path("/etc"))  # a system folder
    planted_link(tree / "stolen.png", secret)  # a root-only file
    walked = found([tree])
    assert walked["mine.png"][0] is Kind.TODO
    for name in ("private", "etc", "stolen.png"):
        assert walked[name] == (Kind.NOT_FOLLOWED, LINK_REASON)
    assert "secret.png" not in walked


@as_root
def test_the_walk_follows_links_of_the_runner_root_or_the_targets_owner(tree, tmp_path):
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "t.png").write_bytes(PNG)
    other_users(theirs)
    other_users(theirs / "t.png")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "m.png").write_bytes(PNG)
    planted_link(tree / "theirs", theirs)  # the other user's link to their own folder
    os.symlink(mine, tree / "mine")  # root's (ours)
    walked = found([tree])
    assert walked["t.png"][0] is Kind.TODO and walked["m.png"][0] is Kind.TODO


@as_root
def test_a_named_path_that_is_another_users_link_is_not_followed(tree, secret):
    planted_link(tree / "stolen.png", secret)
    assert found([tree / "stolen.png"]) == {"stolen.png": (Kind.NOT_FOLLOWED, LINK_REASON)}


def test_a_job_carries_what_the_walk_saw(tmp_path):
    (tmp_path / "a.png").write_bytes(PNG)
    (job,) = [f.job for f in scan([tmp_path])]
    folder = tmp_path.stat()
    assert job.inode == (tmp_path / "a.png").stat().st_ino
    assert job.folder == (folder.st_dev, folder.st_ino)
