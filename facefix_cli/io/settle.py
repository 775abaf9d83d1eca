"""When a file that is appearing in a watched tree is complete enough to fix (`facefix watch`).

A render lands in one of two ways. Renamed into place (the safe way: written elsewhere, then
`rename`), or closed after writing: the writer says it is done, and the file is taken at once.
A walk sees no events; it tells a rename by the inode's ctime being later than its mtime (a
write sets both; a rename or chmod after the last write moves only the ctime).
Otherwise, written in place while we watch (a copy over the network, a tool that writes in
pieces): it is taken once its size and mtime have not changed for `settle` seconds (chokidar's
`awaitWriteFinish`), or its mtime is already that old when it is first seen (a backlog, a
poll). A walk (polling) sees neither renames nor closes: there a whole file unchanged between
two looks `look_again` seconds apart is taken. Either way it must also be whole to its end (`complete`: the container's last part is
there), so a file that a writer closes and reopens to append to is waited for, not failed.

Guarantees: a file still changing is never handed out (it is neither ready nor broken); a file
that stopped changing for `settle` seconds and still is not whole is handed out once as broken
(the run then reports it once), and is not handed out again until its size or mtime changes;
the `Settler` holds only the files in flight and the broken ones, never every file it saw.
Pure bookkeeping: it stats and reads files, and never writes."""

from __future__ import annotations

import os
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from facefix_cli.io.formats import HEAD_SIZE, sniff

DEFAULT_SETTLE = 2.0  # seconds without a change: chokidar's awaitWriteFinish default
JPEG_TAIL = 64  # bytes at a JPEG's end that may follow its end marker (padding some tools add)


def complete(path: str | os.PathLike[str]) -> bool:
    """Whether the image file at `path` is whole to its end, by its container: a PNG reaches
    its IEND chunk, a JPEG ends in its end-of-image marker, a WebP is as long as its RIFF header
    says. Cheap: a PNG's chunk headers are read, not its pixels. False for anything else (no
    signature yet, unreadable, gone)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(HEAD_SIZE)
            size = os.fstat(fh.fileno()).st_size
            match sniff(head):
                case "PNG":
                    return _png_complete(fh, size)
                case "JPEG":
                    fh.seek(max(0, size - JPEG_TAIL))
                    return fh.read().rstrip(b"\x00").endswith(b"\xff\xd9")
                case "WebP":
                    (riff_size,) = struct.unpack("<I", head[4:8])
                    return size >= riff_size + 8
                case "AVIF" | None:  # AVIF is never an input (facefix writes it)
                    return False
    except OSError:
        return False


def _png_complete(fh: BinaryIO, size: int) -> bool:
    """Walk the chunk headers from the signature to IEND, seeking over each chunk's data."""
    offset = 8
    while offset + 12 <= size:
        fh.seek(offset)
        header = fh.read(8)
        if len(header) < 8:
            return False
        length, kind = struct.unpack(">I4s", header)
        offset += 12 + length  # length, type, data, CRC
        if kind == b"IEND":
            return offset <= size
    return False


@dataclass(slots=True)
class _Candidate:
    size: int
    mtime_ns: int
    changed_at: float  # monotonic time at which the stat above was first seen
    finished: bool  # the writer said it is done (renamed in, closed after writing)


Stat = tuple[int, int]  # size, mtime in ns


def _stat(path: str) -> tuple[Stat, bool] | None:
    """(size, mtime), and whether the inode changed after its last write (ctime after mtime:
    renamed into place, or its mode set, after the writer was done: a write sets both at
    once). A walk cannot see a rename; this is how it tells one."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_size, info.st_mtime_ns), info.st_ctime_ns > info.st_mtime_ns


class Settler:
    """The files in flight, and which of them are ready. `saw(path)` for every sign of a file
    (an event, a walk that found it); `due()` for the files to fix now; `wait_time()` for how
    long nothing can become due without a new sign."""

    def __init__(
        self,
        settle: float = DEFAULT_SETTLE,
        *,
        look_again: float | None = None,
        is_complete: Callable[[str], bool] = complete,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if settle < 0:
            raise ValueError("settle must be 0 or more seconds")
        self.settle = settle
        # Polling sees no renames or closes: a whole file unchanged between two looks this far
        # apart is taken then (None: only `finished` signs or `settle` do).
        self.look_again = look_again
        self._is_complete, self._clock, self._wall = is_complete, clock, wall_clock
        self._candidates: dict[str, _Candidate] = {}
        self._broken: dict[str, Stat] = {}  # handed out as broken, as they were then

    def __len__(self) -> int:
        return len(self._candidates)

    def saw(self, path: str, *, finished: bool = False) -> None:
        """A sign of `path`: written to or created (`finished` False), or renamed into place or
        closed after writing (`finished` True: taken at once if whole)."""
        looked = _stat(path)
        if looked is None:
            self._candidates.pop(path, None)
            return
        stat, after_write = looked
        finished = finished or after_write
        if self._broken.get(path) == stat:
            return  # reported already, and unchanged since
        self._broken.pop(path, None)
        known = self._candidates.get(path)
        if known is None or (known.size, known.mtime_ns) != stat:
            self._candidates[path] = _Candidate(stat[0], stat[1], self._clock(), finished)
        elif finished:
            known.finished = True

    def forget(self, path: str) -> None:
        self._candidates.pop(path, None)
        self._broken.pop(path, None)

    def due(self) -> tuple[list[str], list[str]]:
        """(ready, broken): files whole and finished or settled, and files settled but not
        whole. Both leave the set; a broken one is remembered until it changes."""
        ready: list[str] = []
        broken: list[str] = []
        now, wall = self._clock(), self._wall()
        for path, known in list(self._candidates.items()):
            looked = _stat(path)
            if looked is None:  # gone (renamed away, deleted): nothing to fix
                del self._candidates[path]
                continue
            stat, after_write = looked
            if (known.size, known.mtime_ns) != stat:  # still being written
                known.size, known.mtime_ns = stat
                known.changed_at, known.finished = now, after_write
            settled = (
                now - known.changed_at >= self.settle or wall - known.mtime_ns / 1e9 >= self.settle
            )
            looked_again = self.look_again is not None and now - known.changed_at >= self.look_again
            if not (known.finished or settled or looked_again):
                continue
            if self._is_complete(path):
                ready.append(path)
                del self._candidates[path]
            elif settled:
                broken.append(path)
                self._broken[path] = stat
                del self._candidates[path]
            else:
                known.finished = False  # closed but not whole: a writer appending in pieces
        return sorted(ready), sorted(broken)

    def wait_time(self) -> float | None:
        """Seconds until a file in flight may become due (0: now), or None with none in flight."""
        if not self._candidates:
            return None
        now, wall = self._clock(), self._wall()
        soonest = min(
            0.0
            if known.finished
            else min(
                known.changed_at + self.settle - now,
                known.mtime_ns / 1e9 + self.settle - wall,
                known.changed_at + (self.look_again or self.settle) - now,
            )
            for known in self._candidates.values()
        )
        return max(0.0, soonest)
