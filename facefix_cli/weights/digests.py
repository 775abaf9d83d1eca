"""The SHA-256 of the weight files a run actually loads, cached, and how each compares with the
registry.

Guarantees:

* `file_sha256` is the digest of the file's current bytes. It is kept in a sidecar
  `<file>.sha256.json` holding the size, mtime_ns and inode it was computed for (and, once a
  file was identified, the model architecture that loads it: `cached_architecture`); a file whose
  stat differs from those is hashed again, so a cron run does not re-hash 350 MB each time and
  a replaced or edited file is never vouched for by an old digest. A sidecar that cannot be
  read or parsed is ignored; it is written atomically (a temporary file renamed into place),
  and a folder that cannot be written only costs the cache, never the run. It is never read or
  written through a link (the temporary file is made by `safefs.create_exclusive` under a name
  nobody can guess), and is no more readable than the file it describes.
* `compare` says, for each file a recipe uses, whether its bytes are the registry's; a file
  under a registry name with other bytes (a fine-tune, a damaged copy, a test's stand-in) and a
  file with no registry entry (`--upscaler PATH`) each give one `WeightsNotice`, which `fix`
  reports once per run through its events (with when a log last carried it, kept in the
  sidecar: `remember_warned`, so a cron log need not repeat it every run). Records name the
  file's own digest, never the registry's.
"""

from __future__ import annotations

import json
import os
import stat
import time
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from facefix_cli.io import hashing, safefs
from facefix_cli.weights.registry import ModelInfo

SIDECAR_SUFFIX = ".sha256.json"


def sidecar_path(path: Path) -> Path:
    return path.with_name(path.name + SIDECAR_SUFFIX)


def _key(st: os.stat_result) -> dict[str, int]:
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "inode": st.st_ino}


def _current_record(path: Path) -> dict | None:
    """The sidecar's record when it was written for the file as it is now, else None."""
    try:
        st = path.stat()
        record = json.loads(_read_sidecar(sidecar_path(path)))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or any(record.get(k) != v for k, v in _key(st).items()):
        return None
    return record


def cached_sha256(path: Path) -> str | None:
    """The sidecar's digest when it was computed for the file as it is now, else None."""
    record = _current_record(path)
    if record is None:
        return None
    digest = record.get("sha256")
    if (
        isinstance(digest, str)
        and len(digest) == 64
        and all(c in "0123456789abcdef" for c in digest)
    ):
        return digest
    return None


def cached_architecture(path: Path) -> str | None:
    """The model architecture the sidecar remembers for the file as it is now (`module:Class`,
    as `networks.load` wrote it), else None. Only a hint: the loader checks it fits the file
    and imports nothing but spandrel's own architecture modules from it."""
    record = _current_record(path)
    name = record.get("architecture") if record is not None else None
    return name if isinstance(name, str) and cached_sha256(path) is not None else None


def remember_architecture(path: Path, architecture: str) -> None:
    """Remember in `path`'s sidecar the architecture that loads it, beside its digest (hashed
    now if the sidecar is stale), so later runs import that architecture alone."""
    try:
        before = path.stat()
    except OSError:
        return
    digest = file_sha256(path)
    if _key(path.stat()) == _key(before):
        remember_sha256(path, digest, before, architecture=architecture)


def last_warned(path: Path) -> float | None:
    """When (Unix time) a log last carried the notice for the file as it is now, else None."""
    record = _current_record(path)
    when = record.get("warned_at") if record is not None else None
    return float(when) if isinstance(when, int | float) else None


def remember_warned(path: Path, when: float | None = None) -> None:
    """Remember in `path`'s sidecar that a log carried its notice now (or at `when`), so a
    cron job's log says it once a day rather than every run (`WeightsNotice.said_within`)."""
    digest = cached_sha256(path)
    if digest is not None:
        remember_sha256(path, digest, warned_at=time.time() if when is None else when)


def remember_sha256(
    path: Path,
    digest: str,
    st: os.stat_result | None = None,
    *,
    architecture: str | None = None,
    warned_at: float | None = None,
) -> None:
    """Write the sidecar for `path` (stat taken now unless given), with the architecture that
    loads it and when its notice was last logged, as given or as the sidecar already knew them
    for these bytes: atomically, or not at all."""
    known = _current_record(path)
    kept = (
        {k: known[k] for k in ("architecture", "warned_at") if k in known}
        if known is not None and known.get("sha256") == digest
        else {}
    )
    if architecture is not None:
        kept["architecture"] = architecture
    if warned_at is not None:
        kept["warned_at"] = warned_at
    try:
        st = st or path.stat()
        temporary = path.with_name(safefs.hidden_name(path.name))
        fd = safefs.create_exclusive(temporary, stat.S_IMODE(st.st_mode) & 0o666)
    except OSError:
        return  # a read-only folder: no cache, the digest is still right
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump({**_key(st), "sha256": digest, **kept}, fh)
        os.replace(temporary, sidecar_path(path))
    except OSError:
        with suppress(OSError):
            os.unlink(temporary)


def _read_sidecar(sidecar: Path) -> bytes:
    fd = os.open(sidecar, safefs.READ_FLAGS | safefs.O_NOFOLLOW)  # no link, no FIFO
    with os.fdopen(fd, "rb") as fh:
        return fh.read(1 << 16)


def file_sha256(path: Path) -> str:
    """SHA-256 of `path`'s bytes, from its sidecar when that still matches the file."""
    cached = cached_sha256(path)
    if cached is not None:
        return cached
    before = path.stat()
    digest = hashing.sha256_file(path)
    # Cache only if the file did not change while it was read.
    if _key(path.stat()) == _key(before):
        remember_sha256(path, digest, before)
    return digest


@dataclass(frozen=True)
class WeightsNotice:
    """A file a run uses whose bytes are not a released file's."""

    path: Path
    sha256: str  # of the file as it is
    model: ModelInfo | None = None  # the registry row it stands under; None: no entry
    size: int = 0
    warned_at: float | None = None  # when a log last carried this notice (`remember_warned`)

    def said_within(self, seconds: float, now: float | None = None) -> bool:
        """A log carried this notice less than `seconds` ago."""
        now = time.time() if now is None else now
        return self.warned_at is not None and 0 <= now - self.warned_at < seconds

    @property
    def text(self) -> str:
        """The one line a front end shows."""
        if self.model is None:
            return (
                f"using {self.path}, which is not a released model file; "
                f"outputs record its SHA-256 {self.sha256}"
            )
        if self.size != self.model.size:
            differs = f"{self.size} bytes, expected {self.model.size}"
        else:
            differs = f"SHA-256 {self.sha256}, expected {self.model.sha256}"
        return (
            f"{self.path} is not the released {self.model.name} ({differs}); using it, and "
            f"outputs record its own SHA-256; restore the release with: "
            f"facefix download --force {self.model.name}"
        )


def compare(
    models: Sequence[ModelInfo], weights_dir: Path, extra: Sequence[Path] = ()
) -> tuple[list[tuple[str, str]], list[WeightsNotice]]:
    """((file name, its own digest) for every file, notices for those that are not released
    files) for the unregistered files `extra` and the registry `models` in `weights_dir`.
    Files that cannot be read are left out: loading them reports the problem."""
    digests: list[tuple[str, str]] = []
    notices: list[WeightsNotice] = []
    # The unregistered files first: `--upscaler PATH` runs before the face models.
    entries: list[tuple[Path, ModelInfo | None]] = [(Path(p), None) for p in extra]
    entries += [(weights_dir / m.file, m) for m in models]
    for path, model in entries:
        try:
            st = path.stat()
            if not stat.S_ISREG(st.st_mode):
                continue
            digest = file_sha256(path)
        except OSError:
            continue
        digests.append((path.name, digest))
        if model is None or digest != model.sha256:
            notices.append(WeightsNotice(path, digest, model, st.st_size, last_warned(path)))
    return digests, notices
