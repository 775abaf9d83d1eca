"""What the machine must offer before a run pays for loading networks: an output tree it can
write and a file system with room. Checked once, on the first file to do, so that a run that
cannot write a single output says so in a second, not after the networks load.

The faults are those the run would stop on at its first write anyway (`ENVIRONMENT_ERRNOS`
anywhere; `OUTPUT_TREE_ERRNOS` too with --output-dir, where every output goes into one tree):
a check that passes changes nothing, and one that fails gives the same exit (4)."""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

from facefix_cli.io import safefs
from facefix_cli.io.names import display_path

# Write errors that no later file can escape: the storage itself is full, failing or read-only.
ENVIRONMENT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO}
# With --output-dir every output goes to one tree: if it refuses writes or vanished, all will.
OUTPUT_TREE_ERRNOS = {errno.EACCES, errno.EPERM, errno.ENOENT, errno.ESTALE}
MIN_FREE_BYTES = 1_000_000  # less than this is a full disk: no output would fit


def output_fault(first_output: Path, output_dir: Path | None, *, dry: bool = False) -> str | None:
    """The one line that stops the run before any network loads, or None: with `output_dir`,
    the tree cannot be made or written; anywhere, the file system of `first_output` is full.
    `dry` (a dry run) creates nothing: the output tree, or the folder that would hold it, must
    be writable by this process."""
    folder = output_dir if output_dir is not None else first_output.parent
    faults = ENVIRONMENT_ERRNOS | (OUTPUT_TREE_ERRNOS if output_dir is not None else set())
    if dry:
        existing = folder
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if not os.access(existing, os.W_OK | os.X_OK):
            return f"cannot write to {display_path(existing)}: Permission denied"
        folder = existing
    elif output_dir is not None:
        try:
            output_dir.mkdir(parents=True, exist_ok=True)
            _probe(output_dir)
        except OSError as exc:
            if exc.errno in faults:
                return f"cannot write to {display_path(output_dir)}: {exc.strerror or exc}"
            return None  # about some files only: each one's write says so
    try:
        stats = os.statvfs(folder)
    except (OSError, AttributeError):  # gone meanwhile, or no statvfs (Windows)
        return None
    free = stats.f_bavail * stats.f_frsize
    if free < MIN_FREE_BYTES:
        return f"disk full: {display_path(folder)} ({free // 1000} kB free)"
    return None


def _probe(folder: Path) -> None:
    """Create and remove a hidden temporary file in `folder` (named like the run's own, so a
    run killed in between leaves nothing the next run does not sweep)."""
    probe = folder / safefs.hidden_name("facefix-probe")  # never through a planted link
    fd = safefs.create_exclusive(probe, 0o600)
    os.close(fd)
    with contextlib.suppress(OSError):
        probe.unlink()
