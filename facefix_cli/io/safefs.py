"""File system steps that a user who can write the tree cannot turn against the run.

facefix often runs as root (cron) over folders other users can write. Those users can plant a
symlink at any name facefix is about to use, or swap a folder for a link between two steps.
This module is the one place that decides what is safe:

* `create_exclusive` creates a new file with O_CREAT|O_EXCL|O_NOFOLLOW, so it never opens
  through a link and never opens a file that was there before; `hidden_name` gives it a name
  nobody can guess (a random token, as `mkstemp`), so nobody can plant anything there first.
* `link_trusted` is Linux's `fs.protected_symlinks` rule, applied everywhere: a link is followed
  only when it belongs to the user facefix runs as, to root, or to the owner of its target. A
  user's own links keep working; another user's link cannot lead root to a file that user
  does not own.
* `open_input` opens a file for reading under that rule (the last component without following
  an untrusted link) and, given the inode the walk saw, refuses a file swapped since.
* `make_folders` creates folders below a trusted base one component at a time, each opened
  without following an untrusted link.

Every refusal is an `UntrustedLink` (an OSError with errno ELOOP), so callers that handle OS
errors per file go on working.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path

O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
# Reading never blocks on a FIFO planted where a file was (O_NONBLOCK: no effect on files).
READ_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | O_CLOEXEC
CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | O_NOFOLLOW | O_CLOEXEC
TOKEN_CHARS = 16  # hex digits of randomness in a hidden name: 64 bits, as mkstemp's 6 letters+


REPLACED = errno.ELOOP  # the errno of "not the file or folder the walk saw": a per-file problem


def replaced(what: str, path: Path | str) -> OSError:
    """The error for a file or folder that is not the one the walk saw (swapped since)."""
    return OSError(REPLACED, f"the {what} was replaced since the walk (not used)", str(path))


class UntrustedLink(OSError):
    """A link facefix will not follow: another user's link to what that user does not own."""

    def __init__(self, path: Path | str, link_uid: int, target_uid: int | None) -> None:
        target = "" if target_uid is None else f" to a file of uid {target_uid}"
        super().__init__(errno.ELOOP, f"a link of uid {link_uid}{target} (not followed)")
        self.filename = os.fspath(path)


def random_token() -> str:
    return secrets.token_hex(TOKEN_CHARS // 2)


def euid() -> int:
    return os.geteuid() if hasattr(os, "geteuid") else -1


def link_trusted(link_uid: int, target_uid: int) -> bool:
    """fs.protected_symlinks: follow a link owned by us, by root, or by its target's owner."""
    return link_uid in (euid(), 0) or link_uid == target_uid


def entry_link_trusted(entry: os.DirEntry[str]) -> tuple[bool, int, int | None]:
    """(trusted, link's uid, target's uid or None when the target is missing) for a symlink
    found in a listing; the link's lstat is the only new system call (the target's stat the
    walk pays for anyway)."""
    link_uid = entry.stat(follow_symlinks=False).st_uid
    if link_uid in (euid(), 0):
        return True, link_uid, None
    try:
        target_uid = entry.stat().st_uid
    except OSError:
        return True, link_uid, None  # dangling or a loop: the walk reports it as it is
    return link_uid == target_uid, link_uid, target_uid


def check_link(path: Path | str, *, dir_fd: int | None = None) -> None:
    """Raise UntrustedLink when `path` is a symlink the trust rule refuses; return otherwise
    (not a link, a trusted link, or nothing there)."""
    try:
        link = os.stat(path, dir_fd=dir_fd, follow_symlinks=False)
    except OSError:
        return
    if not stat.S_ISLNK(link.st_mode) or link.st_uid in (euid(), 0):
        return
    try:
        target = os.stat(path, dir_fd=dir_fd)
    except OSError:
        return
    if not link_trusted(link.st_uid, target.st_uid):
        raise UntrustedLink(path, link.st_uid, target.st_uid)


def open_input(path: Path | str, inode: int | None = None) -> int:
    """A read-only descriptor on `path`: opened without following a link, or through a link
    the trust rule allows (its target must belong to the link's owner unless the link is ours
    or root's: checked on the file actually opened). With `inode` (what the walk saw), a
    different file (swapped since, or reached through a folder swapped since) is refused."""
    try:
        fd = os.open(path, READ_FLAGS | O_NOFOLLOW)
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise
        link = os.lstat(path)
        if not stat.S_ISLNK(link.st_mode):
            raise
        fd = os.open(path, READ_FLAGS)
        opened = os.fstat(fd)
        if not link_trusted(link.st_uid, opened.st_uid):
            os.close(fd)
            raise UntrustedLink(path, link.st_uid, opened.st_uid) from None
    if inode is not None:
        opened = os.fstat(fd)
        if opened.st_ino != inode:
            os.close(fd)
            raise replaced("file", path)
    return fd


def read_input(path: Path | str, inode: int | None = None) -> tuple[bytes, os.stat_result]:
    """The bytes of `path` opened by `open_input`, with the opened file's stat."""
    fd = open_input(path, inode)
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        return fh.read(), st


def hidden_name(stem: str, suffix: str = ".tmp") -> str:
    """`.STEM.PID.TOKEN.tmp`: hidden, this process's, and not guessable."""
    return f".{stem}.{os.getpid()}.{random_token()}{suffix}"


def create_exclusive(name: str | Path, mode: int = 0o600, *, dir_fd: int | None = None) -> int:
    """A write descriptor on a new file `name` (relative to `dir_fd` when given): never through
    a link, never a file that existed. `mode` is masked by the umask, as for any new file."""
    return os.open(name, CREATE_FLAGS, mode, dir_fd=dir_fd)


def open_folder(path: Path | str, *, dir_fd: int | None = None, follow: bool = True) -> int:
    """A descriptor on the folder `path`; with `follow=False` a link there is refused (ELOOP)."""
    flags = os.O_RDONLY | O_DIRECTORY | O_CLOEXEC | (0 if follow else O_NOFOLLOW)
    return os.open(path, flags, dir_fd=dir_fd)


@contextlib.contextmanager
def folder_fd(path: Path | str) -> Iterator[int]:
    fd = open_folder(path)
    try:
        yield fd
    finally:
        os.close(fd)


def open_folder_trusted(path: Path | str) -> int:
    """A descriptor on the existing folder `path`, reached from the root one component at a
    time, each opened without following a link unless the trust rule allows that link (for
    files written where no trusted base is known, such as marks). OSError (UntrustedLink for
    a refused link) when a component cannot be opened."""
    absolute = Path(os.path.abspath(path))
    return _descend(open_folder(absolute.anchor or os.sep), absolute.parts[1:])


def make_folders(base: Path, relative: Path, mode: int = 0o777) -> None:
    """Create `base/relative` one component at a time below `base` (trusted: the user named
    it), each component opened without following a link unless the trust rule allows that
    link. OSError (UntrustedLink for a refused link) when a component cannot be made."""

    def parts() -> Iterator[str]:
        for part in relative.parts:
            if part == "..":
                raise OSError(errno.EINVAL, "'..' in an output path", str(base / relative))
            if part not in ("", "."):
                yield part

    os.close(_descend(open_folder(base), parts(), mode=mode))


def _descend(fd: int, parts: Iterable[str], *, mode: int | None = None) -> int:
    """From the folder open as `fd` (this takes it over), down `parts` one at a time: each
    opened without following a link unless the trust rule allows that link, and with `mode`
    made first where missing. A descriptor on the last; every other one is closed, on error
    too."""
    try:
        for part in parts:
            if mode is not None:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, mode, dir_fd=fd)
            try:
                child = open_folder(part, dir_fd=fd, follow=False)
            except OSError as exc:
                if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                    raise
                check_link(part, dir_fd=fd)  # raises for a link not to follow
                child = open_folder(part, dir_fd=fd)
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd
