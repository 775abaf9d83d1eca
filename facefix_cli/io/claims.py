"""Claims: how several runs over one tree (cron overlap, machines sharing NFS) fix each file once.

A run claims an output before working on it by creating `.NAME.claim` beside it with
O_CREAT|O_EXCL, which is atomic on local file systems and NFSv3+ (no flock, which NFS does not
honour reliably). The claim holds the owner's host, pid, the process's start time (`/proc/PID/stat`, in
clock ticks since boot) and the machine's boot id, and a random token; its mtime is the
heartbeat, which a daemon thread (`ClaimKeeper`) renews every minute for every claim the process
holds, so one image that takes hours in one stage keeps its claim. A claim is stale, and may be
taken over, when its owner is on this host and is gone: its pid is not running, or the process
running under that pid is another one (another start time or boot id: PID reuse, PID 1 of a
new container, this very process's PID recorded by a killed run), or when its heartbeat is
older than `stale_after` seconds (the owner crashed on another host, or froze). Claims written
before the start time was recorded (or where /proc is missing) are judged by pid alone.
Takeover renames the stale claim to a private name first, so of two runs racing for it exactly
one wins. Releasing removes the claim only if it is still ours.

Guarantees: `acquire` returns a `Claim` to at most one live run per output at a time (up to the
clocks of machines sharing storage agreeing within `stale_after`); a run killed at any point
leaves a claim that a later run takes over.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from facefix_cli.io import safefs
from facefix_cli.io.names import TEMPORARY_RE, claim_path, hidden_stem

STALE_AFTER = 30 * 60.0  # seconds without a heartbeat before another host's claim is stale
HEARTBEAT_EVERY = 60.0  # well under STALE_AFTER: a few missed beats (a stalled NFS) are harmless
HOST = socket.gethostname()


@dataclass(frozen=True)
class Claim:
    path: Path  # the claim file
    output: Path
    token: str

    def heartbeat(self) -> None:
        """Show the claim's owner is alive; harmless if the claim has gone."""
        with contextlib.suppress(OSError, NotImplementedError):
            os.utime(self.path, follow_symlinks=False)  # a link planted there is not ours

    def release(self) -> None:
        """Remove the claim, unless another run took it over meanwhile."""
        KEEPER.discard(self)
        try:
            ours = _parse(_read_claim(self.path)).get("token") == self.token
        except OSError:
            return
        if ours:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()


class ClaimKeeper:
    """Renews the heartbeat of every claim this process holds, every `interval` seconds, from one
    daemon thread that runs while any claim is held. The thread only touches mtimes: it never
    blocks the work, and a claim released meanwhile is skipped (or its vanished file ignored)."""

    def __init__(self, interval: float = HEARTBEAT_EVERY) -> None:
        self.interval = interval
        self._claims: set[Claim] = set()
        self._lock = threading.Lock()
        self._beating_in: int | None = None  # pid whose thread runs; a forked child has none

    def add(self, claim: Claim) -> None:
        with self._lock:
            self._claims.add(claim)
            if self._beating_in != os.getpid():
                self._beating_in = os.getpid()
                threading.Thread(target=self._beat, name="facefix-claims", daemon=True).start()

    def discard(self, claim: Claim) -> None:
        with self._lock:
            self._claims.discard(claim)

    def held(self) -> set[Claim]:
        with self._lock:
            return set(self._claims)

    def _beat(self) -> None:
        while True:
            time.sleep(self.interval)
            with self._lock:
                claims = set(self._claims)
                if not claims:  # idle: the next `add` starts a new thread
                    self._beating_in = None
                    return
            for claim in claims:
                claim.heartbeat()


KEEPER = ClaimKeeper()


def _read_boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        return None


BOOT_ID = _read_boot_id()


def process_start(pid: int) -> int | None:
    """When process `pid` started, in clock ticks since boot (field 22 of /proc/PID/stat); None
    when it is not running or there is no /proc (not Linux)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces or parentheses itself.
    fields = stat[stat.rfind(b")") + 2 :].split()
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def owner_identity() -> dict[str, int | str]:
    """What a claim records about this process beyond its pid, where the system says it."""
    identity: dict[str, int | str] = {}
    start = process_start(os.getpid())
    if start is not None:
        identity["start"] = start
    if BOOT_ID is not None:
        identity["boot"] = BOOT_ID
    return identity


def owner_alive(owner: dict) -> bool:
    """Whether the process a claim on this host names is still running: its pid runs, and, when
    the claim recorded them, the same boot and the same start time."""
    pid = owner.get("pid")
    if not isinstance(pid, int):
        return True  # not ours to judge: the heartbeat rule decides
    boot, start = owner.get("boot"), owner.get("start")
    if isinstance(boot, str) and BOOT_ID is not None and boot != BOOT_ID:
        return False  # recorded before a reboot: that process is gone whatever runs now
    if not pid_alive(pid):
        return False
    if isinstance(start, int):
        now = process_start(pid)
        return now is None or now == start
    return True


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def is_stale(path: Path, *, stale_after: float = STALE_AFTER, now: float | None = None) -> bool:
    """True when the claim at `path` belongs to a dead process on this host or has had no
    heartbeat for `stale_after` seconds. A claim being written right now (empty) is not stale."""
    return _stale_content(path, stale_after, now) is not None


def _stale_content(path: Path, stale_after: float, now: float | None = None) -> bytes | None:
    """The bytes of the claim at `path` if it is stale, else None."""
    try:
        age = (time.time() if now is None else now) - os.lstat(path).st_mtime
    except FileNotFoundError:
        return None
    try:
        content = _read_claim(path)
    except FileNotFoundError:
        return None
    except OSError:  # a link or a folder planted at the claim's name: judged by age alone
        content = b""
    if age > stale_after:
        return content
    owner = _parse(content)
    pid = owner.get("pid")
    if owner.get("host") != HOST or not isinstance(pid, int):
        return None
    if pid == os.getpid() and not isinstance(owner.get("start"), int):
        return None  # an old-format claim naming this pid: it may be this process's own
    return None if owner_alive(owner) else content


def _read_claim(path: Path) -> bytes:
    """A claim's bytes, never through a link (another user may plant one at its name)."""
    fd = os.open(path, safefs.READ_FLAGS | safefs.O_NOFOLLOW)  # non-blocking: a FIFO there
    with os.fdopen(fd, "rb") as fh:
        return fh.read(4096)  # a claim is ~200 bytes: anything planted there is not read whole


def _remove_temporaries(output: Path, pid: int) -> None:
    """Remove the temporary files of `output` that process `pid` (dead) left beside it."""
    stem = hidden_stem(output)
    try:
        names = [e.name for e in os.scandir(output.parent) if e.name.startswith("." + stem)]
    except OSError:
        return
    for name in names:
        match = TEMPORARY_RE.match(name)
        if match and match["stem"] == stem and int(match["pid"]) == pid:
            with contextlib.suppress(OSError):
                os.unlink(output.parent / name)


def _parse(content: bytes) -> dict:
    try:
        owner = json.loads(content)
    except ValueError:
        return {}
    return owner if isinstance(owner, dict) else {}


def acquire(output: Path, *, stale_after: float = STALE_AFTER) -> Claim | None:
    """Claim `output` for this process, taking over a stale claim; None if a live run holds it.
    OSErrors other than "exists" (no such folder, read-only, disk full) propagate."""
    path = claim_path(output)
    token = os.urandom(8).hex()  # as secrets.token_hex, without importing random
    body = json.dumps(
        {
            "host": HOST,
            "pid": os.getpid(),
            **owner_identity(),
            "token": token,
            "started": time.time(),
        }
    ).encode()
    for _attempt in range(3):
        try:
            fd = safefs.create_exclusive(path, 0o644)
        except FileExistsError:
            judged = _stale_content(path, stale_after)
            if judged is None or not _take_over(path, judged):
                return None
            dead = _parse(judged)
            if dead.get("host") == HOST and isinstance(dead.get("pid"), int):
                _remove_temporaries(output, dead["pid"])
            continue
        claim = Claim(path, output, token)
        try:
            try:
                os.write(fd, body)
            finally:
                os.close(fd)
            KEEPER.add(claim)
        except BaseException:  # a write error, or a signal (errors.Interrupted) landing here
            KEEPER.discard(claim)
            with contextlib.suppress(OSError):
                path.unlink()
            raise
        return claim
    return None


def _take_over(path: Path, judged: bytes) -> bool:
    """Move the stale claim `judged` out of the way. Of several runs doing this at once one
    wins; a loser that moved a claim made fresh meanwhile puts it back (link fails if the name
    is taken again)."""
    private = path.with_name(f"{path.name}.{HOST}.{os.getpid()}.{safefs.random_token()}.stale")
    try:
        os.rename(path, private)
    except FileNotFoundError:
        return True  # someone else removed it: try creating again
    try:
        if _read_claim(private) != judged:  # we moved a fresh claim: give it back
            with contextlib.suppress(OSError):
                os.link(private, path)
            return False
        return True
    finally:
        with contextlib.suppress(OSError):
            private.unlink()


def sweep_folder(
    folder: Path, *, stale_after: float = STALE_AFTER, hidden: Iterable[str] | None = None
) -> list[Path]:
    """Remove what killed runs left in `folder`: temporary files (`.NAME.PID.TOKEN.tmp`) whose output
    has no live claim (a writer always holds the claim while its temporary file exists), and
    stale claims. `hidden`: the folder's hidden names from a listing just made (the walk's), so
    it is not listed again. Returns what it removed; unreadable folders and races are ignored."""
    removed: list[Path] = []
    if hidden is not None:
        names = set(hidden)
    else:
        try:
            names = {entry.name for entry in os.scandir(folder) if entry.name.startswith(".")}
        except OSError:
            return removed
    for name in sorted(names):
        path = folder / name
        temporary = TEMPORARY_RE.match(name)
        if temporary:
            claim = folder / f".{temporary['stem']}.claim"
            if claim.name in names and not is_stale(claim, stale_after=stale_after):
                continue
        elif name.endswith(".claim"):
            if not is_stale(path, stale_after=stale_after):
                continue
        else:
            continue
        with contextlib.suppress(OSError):
            path.unlink()
            removed.append(path)
    return removed
