"""The local weights folder: where each model's file lives and what state it is in.

Guarantees, with no network code involved (`fix`, `models` and workers import only this):

* A file under its final name got there by `install`, an atomic rename of a verified `.part`
  (or was put there by a person); bytes in flight live only in `<file>.part`.
* `is_present` trusts a file with the pinned size without hashing it; `model_states(verify=True)`
  and `check` hash every byte (and refresh the digest cache, `digests`); without `verify`,
  `model_states` uses a cached digest that still matches the file, and never hashes.
* `file_lock` serialises processes working on one file (flock on `<file>.lock`, removed by
  its holder once done: no lock file is left behind).
* No write follows a link: a new `.part` is made under a name nobody can guess
  (`safefs.create_exclusive`) and renamed to `<file>.part`; a `.part` resumed, and the lock
  file, are opened without following a link (one planted there is an error, not a write).
* OS errors writing the folder become one-line SetupErrors (`disk_error`).
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

from facefix_cli.errors import SetupError
from facefix_cli.io import hashing, safefs
from facefix_cli.weights import digests
from facefix_cli.weights.registry import ModelInfo

try:
    import fcntl
except ImportError:  # not on Windows; there we go without the cross-process lock
    fcntl = None  # type: ignore[assignment]

PART_SUFFIX = ".part"
LOCK_SUFFIX = ".lock"

State = Literal["missing", "present", "verified", "corrupt"]


@dataclass(frozen=True)
class ModelState:
    model: ModelInfo
    path: Path
    # missing; present (right size, not hashed); verified (size and SHA-256 match); corrupt.
    state: State
    detail: str = ""  # why it is corrupt
    sha256: str | None = None  # the file's own digest, when hashed or cached for its bytes


def weights_path(model: ModelInfo, weights_dir: Path) -> Path:
    return Path(weights_dir) / model.file


def part_path(final: Path) -> Path:
    """Where the bytes of `final` collect until they are verified."""
    return _sibling(final, PART_SUFFIX)


def lock_path(final: Path) -> Path:
    return _sibling(final, LOCK_SUFFIX)


def is_present(model: ModelInfo, weights_dir: Path) -> bool:
    """The file is in place with the pinned size. Not hashed: the atomic rename after
    verification is what makes a file under the final name trustworthy."""
    try:
        st = weights_path(model, weights_dir).stat()
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and st.st_size == model.size


def model_states(
    models: Sequence[ModelInfo], weights_dir: Path, *, verify: bool = False
) -> list[ModelState]:
    """The state of each model's file. Without `verify` a right-sized file is "present";
    with it, the file is hashed and comes out "verified" or "corrupt"."""
    states = []
    for model in models:
        path = weights_path(model, weights_dir)
        try:
            st = path.stat()
        except FileNotFoundError:
            states.append(ModelState(model, path, "missing"))
            continue
        except OSError as exc:
            states.append(ModelState(model, path, "corrupt", f"cannot read: {exc.strerror}"))
            continue
        if not stat.S_ISREG(st.st_mode):
            states.append(ModelState(model, path, "corrupt", "not a regular file"))
            continue
        digest = digests.cached_sha256(path)
        if verify:
            try:
                digest = hashing.sha256_file(path)
            except OSError as exc:
                states.append(ModelState(model, path, "corrupt", f"cannot read: {exc.strerror}"))
                continue
            digests.remember_sha256(path, digest, st)
        if st.st_size != model.size:
            detail = f"{st.st_size} bytes, expected {model.size}"
            if digest is not None:
                detail += f"; SHA-256 {digest}"
            states.append(ModelState(model, path, "corrupt", detail, digest))
        elif digest is None:
            states.append(ModelState(model, path, "present"))
        elif digest == model.sha256:
            states.append(ModelState(model, path, "verified", sha256=digest))
        else:
            detail = f"SHA-256 {digest}, expected {model.sha256}"
            states.append(ModelState(model, path, "corrupt", detail, digest))
    return states


def check(models: Sequence[ModelInfo], weights_dir: Path) -> list[ModelState]:
    """Re-hash every file: each comes out missing, verified or corrupt."""
    return model_states(models, weights_dir, verify=True)


def make_weights_dir(weights_dir: Path) -> None:
    try:
        weights_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SetupError(f"cannot create weights folder {weights_dir}: {exc.strerror}") from None


@contextmanager
def file_lock(lock: Path, model: ModelInfo, on_wait: Callable[[], None]) -> Iterator[None]:
    """Hold an exclusive flock on `lock`; call `on_wait` once if another process has it, then
    wait for it. The lock file is removed on the way out, so no `*.lock` is left behind.

    Removing it is safe because a holder only counts once the path still names the file it
    locked: a process that waited on a lock file its holder removed finds the path gone (or
    another file there) and locks anew, so two processes never hold "the" lock at once."""
    waited = False
    while True:
        try:
            # Not O_EXCL: every process opens the one lock file; but never through a link.
            flags = os.O_RDWR | os.O_CREAT | safefs.O_NOFOLLOW | safefs.O_CLOEXEC
            fd = os.open(lock, flags, 0o600)
        except OSError as exc:
            raise disk_error(exc, lock, model) from None
        if fcntl is None:
            break
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not waited:
                on_wait()
                waited = True
            fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            named = os.stat(lock, follow_symlinks=False)
        except FileNotFoundError:
            named = None
        held = os.fstat(fd)
        if named is not None and (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino):
            break
        os.close(fd)  # the holder before us removed it: lock the path's new file
    try:
        yield
    finally:
        unlink_quietly(lock)  # while still holding it: waiters on this file start over
        os.close(fd)  # closing the descriptor releases the lock


def resumable_size(model: ModelInfo, part: Path) -> int:
    """Bytes of `part` worth resuming from; 0 (and the part removed) when it cannot be used."""
    try:
        st = part.lstat()
    except OSError:
        return 0
    if not stat.S_ISREG(st.st_mode):
        unlink_quietly(part)  # a link or anything else planted there: start afresh
        return 0
    if st.st_size > model.size:
        unlink_quietly(part)
        return 0
    return st.st_size


def open_part(part: Path, resume: bool) -> BinaryIO:
    """The `.part` to write into: the one there, to append to (`resume`), opened without
    following a link; or a new one, made under a name nobody can guess and renamed over
    whatever was at `part` (a link planted there is replaced, never written through)."""
    if resume:
        fd = os.open(part, os.O_WRONLY | os.O_APPEND | safefs.O_NOFOLLOW | safefs.O_CLOEXEC)
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
            os.close(fd)
            raise OSError(errno.ELOOP, "not a file of its own (a link?)", str(part))
    else:
        temporary = part.with_name(safefs.hidden_name(part.name))
        fd = safefs.create_exclusive(temporary, 0o644)
        try:
            os.replace(temporary, part)
        except OSError:
            os.close(fd)
            unlink_quietly(temporary)
            raise
    return os.fdopen(fd, "ab")


def install(part: Path, final: Path, model: ModelInfo) -> None:
    """Rename the verified .part into place and make the rename durable; its digest (just
    verified) goes into the cache, so the first run after a download does not hash it again."""
    try:
        os.replace(part, final)
    except OSError as exc:
        unlink_quietly(part)
        raise disk_error(exc, final, model) from None
    digests.remember_sha256(final, model.sha256)
    try:
        dir_fd = os.open(final.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass  # some filesystems cannot fsync a directory; the rename itself is atomic
    finally:
        os.close(dir_fd)


def disk_error(exc: OSError, path: Path, model: ModelInfo) -> SetupError:
    """The one-line error for an OS error writing `path` in the weights folder."""
    folder = path.parent
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return SetupError(
            f"no space left in {folder} for {model.file} ({model.size} bytes needed); "
            "nothing was kept, free some space and run again"
        )
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return SetupError(f"cannot write to weights folder {folder}: {exc.strerror}")
    return SetupError(f"cannot write {path}: {exc.strerror or exc}")


def unlink_quietly(path: Path) -> None:
    with suppress(OSError):
        path.unlink(missing_ok=True)


def _sibling(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)
