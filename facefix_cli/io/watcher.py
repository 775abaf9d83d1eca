"""Signs that files appeared or changed under some folders: kernel events, or walks.

`KernelWatcher` uses watchdog (inotify on Linux, FSEvents on macOS, ReadDirectoryChangesW on
Windows). Chosen over watchfiles because it reports *how* a file changed: a rename into place
(`FileMovedEvent`) and a close after writing (`FileClosedEvent`, inotify's IN_CLOSE_WRITE) are
the writer saying it is done, which `io.settle` takes at once, while watchfiles folds every event
into added/modified/deleted and leaves only waiting. watchdog also watches sub-folders made
later (and reports the files already in them), and reports a kernel queue overflow
(`EventsLostEvent`), after which the caller walks the tree again.

`PollWatcher` walks instead (`--poll SECONDS`): for network shares, where the kernel never hears
of another host's writes, and as the fallback when kernel watches cannot be had (inotify's
limits, a file system without events). Each walk is the cheap one of `io.discover.scan`: folder
listings only; a file whose output exists costs nothing, only files still to do are signs.

Guarantees: a watcher's `wait` blocks (no busy loop) until there are signs or the timeout
passes; signs name files only, of the types asked for, outside hidden folders, and never
facefix's own outputs, temporary files or claims; a watched folder deleted or moved away is said
(`Signs.gone`) as soon as the kernel tells of it, or at the next walk; `close` stops every
thread it started."""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple, Protocol

from facefix_cli.io.discover import Kind, normalise_extensions, scan
from facefix_cli.io.outputs import OUTPUT_SUFFIXES, FormatChoice


class Sign(NamedTuple):
    path: str
    # The writer is done with it: renamed into place or closed after writing.
    finished: bool = False


class Signs(NamedTuple):
    files: list[Sign]
    # Events were lost (a kernel queue overflow): the caller should walk the tree again.
    lost: bool = False
    # Watched folders deleted or moved away: nothing more will ever come from them.
    gone: tuple[str, ...] = ()


ROOT_CHECK = 5.0  # seconds: how often an idle kernel watcher looks at the watched folders


# In the kernel watcher's queue: a watched folder was deleted or moved; wake and look at them.
_LOOK_AT_ROOTS = "look at the watched folders"


class Watcher(Protocol):
    def wait(self, timeout: float | None) -> Signs:
        """The signs since the last call, waiting up to `timeout` seconds (None: until some)."""
        ...

    def close(self) -> None: ...


class WatchUnavailable(Exception):
    """Kernel watches cannot be had here; the message says why (the caller then polls)."""


def _wanted(path: str, suffixes: tuple[str, ...]) -> bool:
    name = os.path.basename(path)
    lower = name.lower()
    return (
        not name.startswith(".")
        and lower.endswith(suffixes)
        and not lower.endswith(OUTPUT_SUFFIXES)
    )


# File systems whose files other machines write: the kernel here hears of none of those writes.
NETWORK_FILE_SYSTEMS = frozenset(
    {"nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "fuse.sshfs", "fuse.rclone", "afs", "ceph"}
)


def network_file_system(folder: Path, mounts: str = "/proc/self/mounts") -> str | None:
    """The type of the network file system `folder` is on (`nfs4`), or None: local, or unknown
    (no /proc)."""
    try:
        with open(mounts, encoding="utf-8", errors="replace") as fh:
            table = [line.split() for line in fh]
    except OSError:
        return None
    where = os.path.realpath(folder)
    best, kind = "", None
    for fields in table:
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ")
        inside = where == point or where.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, kind = point, fields[2]
    return kind if kind in NETWORK_FILE_SYSTEMS else None


class KernelWatcher:
    """watchdog's observer over `folders` (recursively or not), its signs in a queue."""

    def __init__(
        self, folders: Sequence[Path], extensions: Sequence[str], recursive: bool = True
    ) -> None:
        from watchdog.events import (
            EVENT_TYPE_CLOSED,
            EVENT_TYPE_CREATED,
            EVENT_TYPE_DELETED,
            EVENT_TYPE_MODIFIED,
            EVENT_TYPE_MOVED,
            EventsLostEvent,
            FileSystemEvent,
            FileSystemEventHandler,
        )
        from watchdog.observers import Observer
        from watchdog.observers.api import BaseObserver

        suffixes = tuple("." + e for e in normalise_extensions(extensions))
        self._queue: queue.SimpleQueue[Sign | str | None] = queue.SimpleQueue()
        self._hidden_roots = [os.path.abspath(f) for f in folders]
        roots = set(self._hidden_roots)
        self._roots: dict[str, tuple[int, int]] = {}
        for folder in folders:
            st = os.stat(folder)
            self._roots[str(folder)] = (st.st_dev, st.st_ino)
        post = self._queue.put
        hidden = self._in_hidden_folder

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: FileSystemEvent) -> None:
                if isinstance(event, EventsLostEvent):
                    post(None)
                    return
                kind = event.event_type
                if event.is_directory:
                    if (
                        kind in (EVENT_TYPE_DELETED, EVENT_TYPE_MOVED)
                        and os.path.abspath(os.fsdecode(event.src_path)) in roots
                    ):
                        post(_LOOK_AT_ROOTS)  # now rather than at the next ROOT_CHECK
                    return
                if kind == EVENT_TYPE_MOVED:
                    path, finished = os.fsdecode(event.dest_path), True
                elif kind == EVENT_TYPE_CLOSED:
                    path, finished = os.fsdecode(event.src_path), True
                elif kind in (EVENT_TYPE_CREATED, EVENT_TYPE_MODIFIED):
                    path, finished = os.fsdecode(event.src_path), False
                else:
                    return
                if path and _wanted(path, suffixes) and not hidden(path):
                    post(Sign(path, finished))

        # generate_full_events: a file moved in from outside the tree is a move (the writer is
        # done), not a creation. Only the inotify observer has it.
        self._observer: BaseObserver
        try:
            from watchdog.observers.inotify import InotifyObserver

            self._observer = InotifyObserver(generate_full_events=True)
        except ImportError:  # not Linux: the platform's own observer
            self._observer = Observer()
        handler = Handler()
        try:
            for folder in folders:
                self._observer.schedule(handler, str(folder), recursive=recursive)
            self._observer.start()
        except OSError as exc:  # inotify's watch or instance limit, a file system without events
            self._observer.unschedule_all()
            raise WatchUnavailable(exc.strerror or str(exc)) from None

    def _in_hidden_folder(self, path: str) -> bool:
        for root in self._hidden_roots:
            inside = os.path.relpath(path, root)
            if not inside.startswith(os.pardir):
                return any(part.startswith(".") for part in Path(inside).parent.parts)
        return False

    def _roots_gone(self) -> list[str]:
        """The watched folders that are not the ones watched any more: deleted, or moved away
        (inotify follows the folder, not its name, and watchdog says nothing of a move of the
        watched folder itself; a new folder made under the old name would go unwatched)."""
        gone = []
        for folder, identity in self._roots.items():
            try:
                st = os.stat(folder)
            except OSError:
                gone.append(folder)
                continue
            if (st.st_dev, st.st_ino) != identity:
                gone.append(folder)
        return gone

    def wait(self, timeout: float | None) -> Signs:
        files: list[Sign] = []
        lost = False
        deadline = None if timeout is None else time.monotonic() + timeout
        first: Sign | str | None
        while True:  # wake every ROOT_CHECK seconds to look at the watched folders themselves
            step = ROOT_CHECK
            if deadline is not None:
                step = min(step, max(0.0, deadline - time.monotonic()))
            try:
                first = self._queue.get(timeout=step)
                break
            except queue.Empty:
                if gone := self._roots_gone():
                    return Signs(files, gone=tuple(gone))
                if deadline is not None and time.monotonic() >= deadline:
                    return Signs(files)
        while True:
            if first is None:
                lost = True
            elif isinstance(first, Sign):
                files.append(first)
            try:
                first = self._queue.get_nowait()
            except queue.Empty:
                return Signs(files, lost, tuple(self._roots_gone()))

    def close(self) -> None:
        self._observer.stop()
        self._observer.join()


class PollWatcher:
    """A walk of `folders` every `interval` seconds; the files still to do are its signs."""

    def __init__(
        self,
        folders: Sequence[Path],
        interval: float,
        *,
        extensions: Sequence[str],
        output_dir: Path | None,
        overwrite: bool,
        recursive: bool = True,
        output_format: FormatChoice = "png",
    ) -> None:
        self.folders, self.interval = list(folders), interval
        self.extensions, self.output_dir = tuple(extensions), output_dir
        self.overwrite, self.recursive = overwrite, recursive
        self.output_format: FormatChoice = output_format  # done means done in this format
        self._next = time.monotonic() + interval  # the caller walked once already: the backlog
        self._closed = threading.Event()

    def walk(self) -> list[Sign]:
        return [
            Sign(str(found.source))
            for found in scan(
                self.folders,
                recursive=self.recursive,
                extensions=self.extensions,
                output_dir=self.output_dir,
                overwrite=self.overwrite,
                output_format=self.output_format,
            )
            if found.kind is Kind.TODO
        ]

    def wait(self, timeout: float | None) -> Signs:
        now = time.monotonic()
        until_walk = max(0.0, self._next - now)
        if timeout is not None and timeout < until_walk:
            self._closed.wait(timeout)
            return Signs([])
        self._closed.wait(until_walk)
        self._next = time.monotonic() + self.interval
        gone = tuple(str(f) for f in self.folders if not os.path.isdir(f))
        return Signs(self.walk(), gone=gone)

    def close(self) -> None:
        self._closed.set()
