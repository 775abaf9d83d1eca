"""Marks: what one run leaves for the next about an input that has no output, so a cron job
over a tree does not redo the same useless work every run. Documented in the README ("What
facefix remembers").

A mark is a small hidden file beside where the output would be, named after the output:

- `.NAME.fixed.png.noface`: restoration alone (no upscale) found no face to restore, so no
  output was written (it would have been a copy of the input); the next run with restoration
  alone skips the input without detecting again.
- `.NAME.fixed.png.failed1` .. `.failed3`: the input failed that many runs in a row (the file
  holds the last reason). At `FAIL_LIMIT` the input is set aside: skipped, with that reason.

`--overwrite` ignores marks (redoes everything), `--retry-failed` ignores failure marks;
deleting a mark file redoes that one input. An output written removes its input's marks.

Guarantees: the walk decides from the folder listing it already made (hidden names), never
opening a mark; marks are created with O_CREAT|O_EXCL|O_NOFOLLOW (no write follows a link, a
file already there is never overwritten) in a folder reached without following another user's
link (the link-trust rule of `io.safefs`), no more readable than the input, and owned by the
input's owner when facefix runs as root; writing or removing a mark never fails a run (a
read-only folder only means the next run does the work again).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Collection
from pathlib import Path

from facefix_cli.io import safefs
from facefix_cli.io.names import NAME_MAX, OUTPUT_SUFFIX

FAIL_LIMIT = 3  # runs in a row an input may fail before it is set aside
NOFACE = "noface"
FAILED = "failed"


def mark_name(output_name: str, kind: str) -> str:
    """`.NAME.kind` for the output name `NAME` (a digest stands in for a name too long)."""
    room = len(kind) + 4  # the dot before, the dot between, and up to two digits
    if len(os.fsencode(output_name)) + room > NAME_MAX:
        output_name = hashlib.sha256(os.fsencode(output_name)).hexdigest()[:32] + OUTPUT_SUFFIX
    return f".{output_name}.{kind}"


def failures(hidden: Collection[str], output_name: str) -> int:
    """How many runs in a row the input of `output_name` failed, from its folder's hidden
    names (`FAIL_LIMIT` at most)."""
    base = mark_name(output_name, FAILED)
    for count in range(FAIL_LIMIT, 0, -1):
        if f"{base}{count}" in hidden:
            return count
    return 0


def faceless(hidden: Collection[str], output_name: str) -> bool:
    """An earlier run found no face in the input of `output_name` (restoration alone)."""
    return mark_name(output_name, NOFACE) in hidden


def hidden_names(output: Path) -> frozenset[str]:
    """The marks of `output` that exist, for an input named on the command line (no listing
    of its folder was made): a few `lstat`s."""
    names = [mark_name(output.name, NOFACE)] + [
        f"{mark_name(output.name, FAILED)}{n}" for n in range(1, FAIL_LIMIT + 1)
    ]
    return frozenset(name for name in names if os.path.lexists(output.with_name(name)))


def remember_faceless(output: Path, source: Path) -> None:
    """Leave `.NAME.noface` beside `output`: `source` has no face to restore."""
    _create(
        output.with_name(mark_name(output.name, NOFACE)),
        source,
        f"facefix found no face to restore in {source.name}; delete this file or run with "
        "--overwrite to look again\n",
    )


def record_failure(
    output: Path, source: Path, before: int, reason: str, *, output_dir: Path | None = None
) -> None:
    """Count one more failed run for `source` (`before`: the count the walk saw). Under
    `output_dir` (`--output-dir`) the output's folder is made first where it is missing (as
    the output's would be, one component at a time): an input that never gets an output would
    otherwise never get its mark either, and fail every run forever."""
    if before >= FAIL_LIMIT:
        return
    if output_dir is not None and output.parent.is_relative_to(output_dir):
        with contextlib.suppress(OSError):
            if not output.parent.is_dir():
                output_dir.mkdir(parents=True, exist_ok=True)  # named by the user: trusted
                safefs.make_folders(output_dir, output.parent.relative_to(output_dir))
    base = mark_name(output.name, FAILED)
    count = before + 1
    set_aside = (
        "; set aside: later runs skip it until --retry-failed or this file is deleted"
        if count >= FAIL_LIMIT
        else ""
    )
    _create(
        output.with_name(f"{base}{count}"),
        source,
        f"facefix failed {count} run(s) in a row on {source.name}: {reason}{set_aside}\n",
    )
    if before:
        _remove(output.parent, [f"{base}{before}"])


def forget(output: Path) -> None:
    """Remove every mark of `output` (it was written)."""
    names = [mark_name(output.name, NOFACE)] + [
        f"{mark_name(output.name, FAILED)}{n}" for n in range(1, FAIL_LIMIT + 1)
    ]
    _remove(output.parent, names)


def _remove(folder: Path, names: list[str]) -> None:
    """Remove the marks `names` from `folder`, reached without following a link the trust rule
    refuses (`safefs.open_folder_trusted`); any OSError is ignored."""
    try:
        dir_fd = safefs.open_folder_trusted(folder)
    except OSError:
        return
    try:
        for name in names:
            with contextlib.suppress(OSError):
                os.unlink(name, dir_fd=dir_fd)
    finally:
        os.close(dir_fd)


def _create(path: Path, source: Path, text: str) -> None:
    """Create `path` holding `text`, never following a link nor replacing a file, no more
    readable than `source`, and never in a folder reached through a link the trust rule
    refuses (another user's link: `safefs.open_folder_trusted`); any OSError is ignored (a
    mark only saves work)."""
    try:
        info = os.stat(source)
        mode = info.st_mode & 0o666  # and the umask, as open applies it
        dir_fd = safefs.open_folder_trusted(path.parent)
    except OSError:
        return
    try:
        fd = safefs.create_exclusive(path.name, mode, dir_fd=dir_fd)
    except OSError:
        return
    finally:
        os.close(dir_fd)
    try:
        if os.geteuid() == 0 and (info.st_uid, info.st_gid) != (0, 0):
            os.fchown(fd, info.st_uid, info.st_gid)
        os.write(fd, text.encode("utf-8", "backslashreplace"))
    except OSError:
        pass
    finally:
        os.close(fd)
