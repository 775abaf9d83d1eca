"""The ledger: which recipe made each output of a folder, so a later run with another recipe
says why it skips a done output ("output exists, made with upscale x2") without opening it.
Documented in the README ("What facefix remembers").

One hidden file per output folder, `.facefix-ledger`, JSON lines appended as outputs are
written (the last line for a name wins):

    {"recipe": KEY, "rows": [[LABEL, VALUE], ...]}                   once per batch written
    {"output": NAME, "recipe": KEY, "mtime_ns": N, "size": N}       one per output

KEY is `RecipeTag.key`, a digest of the recipe's rows (`Recipe.rows()`, the log's rendering).

Guarantees: a hint, never a decision: what is done is still decided by the output's existence.
The walk reads a ledger only for a folder whose listing (already made) shows one and in which
it found a done output; an entry speaks only while the output's size and mtime are the ones
recorded (an output replaced since, by hand or by another tool, is not vouched for). A ledger
that is missing, a link, not a regular file, larger than `MAX_BYTES` or unparsable says
nothing. It is appended with one write per folder per batch, opened without following a link
and only when it is a regular file with one link (a hard link to another file is refused),
created with O_CREAT|O_EXCL|O_NOFOLLOW in a folder reached under the link-trust rule
(`safefs.open_folder_trusted`), never more readable than the outputs it lists, and owned by
their owner when facefix runs as root; writing it never fails a run (a read-only folder only
loses the hint). Deleting it loses nothing but the hint.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from facefix_cli.io import safefs

LEDGER_NAME = ".facefix-ledger"
MAX_BYTES = 64 * 1024 * 1024  # ~600,000 outputs; beyond, the hint is not worth the read
MAX_SHOWN = 3  # differences named in one reason; more are "..."
APPEND_FLAGS = os.O_WRONLY | os.O_APPEND | safefs.O_NOFOLLOW | safefs.O_CLOEXEC
READ_FLAGS = safefs.READ_FLAGS | safefs.O_NOFOLLOW


@dataclass(frozen=True)
class RecipeTag:
    """A recipe as the ledger knows it: its rows (label, value) and their digest."""

    rows: tuple[tuple[str, str], ...]
    key: str = field(init=False)

    def __post_init__(self) -> None:
        text = json.dumps([list(row) for row in self.rows], separators=(",", ":"))
        object.__setattr__(self, "key", hashlib.sha256(text.encode()).hexdigest()[:16])


@dataclass(frozen=True)
class Entry:
    recipe: str
    mtime_ns: int
    size: int


@dataclass
class Ledger:
    """One folder's ledger as read: each output's last entry, each recipe's rows."""

    outputs: dict[str, Entry] = field(default_factory=dict)
    recipes: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    # (its recipe key, the current one) -> `differences`: worked out once per pair
    _said: dict[tuple[str, str], str] = field(default_factory=dict)

    def made_with(self, name: str, output: Path, current: RecipeTag) -> str | None:
        """How the output `name` was made (`differences`) when the ledger vouches that another
        recipe than `current` made it (its size and mtime unchanged since), else None. Costs a stat, only
        for an output recorded under another recipe."""
        entry = self.outputs.get(name)
        if entry is None or entry.recipe == current.key:
            return None
        try:
            st = os.stat(output)
        except OSError:
            return None
        if (st.st_mtime_ns, st.st_size) != (entry.mtime_ns, entry.size):
            return None
        said = self._said.get((entry.recipe, current.key))
        if said is None:
            rows = self.recipes.get(entry.recipe)
            said = (
                differences(rows, current.rows) if rows is not None else "made with another recipe"
            )
            self._said[entry.recipe, current.key] = said
        return said


def differences(made: Sequence[tuple[str, str]], current: Sequence[tuple[str, str]]) -> str:
    """How the recipe that made an output differed from `current`, as the rest of a reason:
    `made with upscale x2, without codeformer 0.5`, or `made without gfpgan 0.8`. Its rows
    the current recipe does not have come first, then the current rows it lacked; a step on
    one side only is named by its first row (`codeformer 0.5`, not its fidelity and detector
    too); at most `MAX_SHOWN` named."""
    had = _named(made, dict(current), also_changed=True)
    lacked = _named(current, dict(made), also_changed=False)
    parts = had + (["without " + lacked[0], *lacked[1:]] if lacked else [])
    if not parts:
        return "made with another recipe"
    shown = ", ".join(parts[:MAX_SHOWN]) + (", ..." if len(parts) > MAX_SHOWN else "")
    return f"made {shown}" if not had else f"made with {shown}"


def _named(rows: Sequence[tuple[str, str]], other: dict[str, str], also_changed: bool) -> list[str]:
    """`rows` that `other` lacks, each run of them by its first row (one step), and with
    `also_changed` those whose value differs."""
    named: list[str] = []
    in_missing_step = False
    for label, value in rows:
        if label not in other:
            if not in_missing_step:
                named.append(f"{label} {value}")
            in_missing_step = True
            continue
        in_missing_step = False
        if also_changed and other[label] != value:
            named.append(f"{label} {value}")
    return named


def read(folder: Path | str) -> Ledger | None:
    """The ledger of `folder`, or None where there is none worth reading (see the module)."""
    try:
        fd = os.open(os.path.join(folder, LEDGER_NAME), READ_FLAGS)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_BYTES:
            return None
        with os.fdopen(os.dup(fd), "rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    return parse(data)


def parse(data: bytes) -> Ledger:
    """The ledger in `data`; lines that are not ledger lines (a write cut short) are skipped."""
    ledger = Ledger()
    outputs, recipes = ledger.outputs, ledger.recipes
    for line in data.decode("utf-8", "surrogateescape").splitlines():
        try:
            item = json.loads(line)
            if "output" in item:
                entry = Entry(str(item["recipe"]), int(item["mtime_ns"]), int(item["size"]))
                outputs[str(item["output"])] = entry
            elif "rows" in item:
                rows = tuple((str(label), str(value)) for label, value in item["rows"])
                recipes[str(item["recipe"])] = rows
        except (ValueError, TypeError, KeyError):
            continue
    return ledger


def record(folder: Path, outputs: Iterable[Path], tag: RecipeTag) -> None:
    """Append that `tag`'s recipe made `outputs` (written just now, all in `folder`); any
    OSError is ignored. The ledger is no more readable than the least readable output."""
    lines = [json.dumps({"recipe": tag.key, "rows": [list(row) for row in tag.rows]})]
    mode, owners = 0o666, set()
    for output in outputs:
        try:
            st = os.lstat(output)
        except OSError:
            continue
        if not stat.S_ISREG(st.st_mode):
            continue
        mode &= stat.S_IMODE(st.st_mode)
        owners.add((st.st_uid, st.st_gid))
        line = {"output": output.name, "recipe": tag.key, "mtime_ns": st.st_mtime_ns}
        lines.append(json.dumps({**line, "size": st.st_size}))
    if len(lines) == 1:
        return
    owner = owners.pop() if len(owners) == 1 else None
    data = ("\n".join(lines) + "\n").encode("utf-8", "surrogateescape")
    with contextlib.suppress(OSError):
        _append(folder, data, mode, owner)


def _append(folder: Path, data: bytes, mode: int, owner: tuple[int, int] | None) -> None:
    dir_fd = safefs.open_folder_trusted(folder)
    try:
        fd = _open(dir_fd, mode, owner)
    finally:
        os.close(dir_fd)
    if fd is None:
        return
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def _open(dir_fd: int, mode: int, owner: tuple[int, int] | None) -> int | None:
    """A descriptor to append to, on a ledger that is a regular file with one link and, as
    root, owned by `owner` (so a ledger planted by another user is not written); narrowed to
    `mode` where it was more readable. A new one where none is. None: leave it alone."""
    root = safefs.euid() == 0
    try:
        fd = os.open(LEDGER_NAME, APPEND_FLAGS | getattr(os, "O_NONBLOCK", 0), dir_fd=dir_fd)
    except FileNotFoundError:
        try:
            fd = safefs.create_exclusive(LEDGER_NAME, mode, dir_fd=dir_fd)
        except FileExistsError:
            return None  # another run made it just now: this batch's hint is lost, no more
        if root and owner is not None and owner != (0, 0):
            os.fchown(fd, *owner)
        return fd
    st = os.fstat(fd)
    foreign = root and (owner is None or (st.st_uid, st.st_gid) != owner)
    if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1 or foreign:
        os.close(fd)
        return None
    if stat.S_IMODE(st.st_mode) & ~mode:
        try:
            os.fchmod(fd, stat.S_IMODE(st.st_mode) & mode)
        except OSError:
            os.close(fd)
            return None  # cannot narrow it: do not add names to a more readable file
    return fd


def record_written(outputs: Sequence[Path], tag: RecipeTag) -> None:
    """`record` for outputs of any folders: one append per folder."""
    folders: dict[Path, list[Path]] = {}
    for output in outputs:
        folders.setdefault(output.parent, []).append(output)
    for folder, written in folders.items():
        record(folder, written, tag)
