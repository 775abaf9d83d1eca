"""Where a model file can be fetched from, in order, and which of those places are dead.

* `model_sources`: the mirrors given (HTTP(S) base URLs, `file://` URLs or local folders holding
  the same file names), then the registry's own URLs (release URL first). Mirrors come first
  because someone who passes one usually cannot reach the release URL at all. A mistyped mirror
  is a SetupError before any transfer.
* `DeadSources`: the origins (a host, or a mirror folder) that failed to answer earlier in one
  run, so that no later file, and no retry, waits on them again.
"""

from __future__ import annotations

import os
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from facefix_cli.errors import SetupError
from facefix_cli.weights.registry import ModelInfo

MIRROR_ENV = "FACEFIX_MIRROR"

# An HTTP(S) URL, or the Path of the file in a local folder.
Source = str | Path


def mirrors_from_env() -> list[str]:
    """$FACEFIX_MIRROR: one or more mirrors (URLs or folders) separated by spaces."""
    return os.environ.get(MIRROR_ENV, "").split()


def model_sources(model: ModelInfo, mirrors: Sequence[str] = ()) -> list[Source]:
    """Where to fetch `model` from, in order: mirrors, then the registry URLs.

    HTTP(S) URLs stay strings; local folders and `file://` URLs become Paths of the file."""
    sources: list[Source] = []
    for mirror in mirrors:
        sources.append(_mirror_source(mirror, model.file))
    for url in model.urls:
        sources.append(_url_source(url))
    unique: list[Source] = []
    for source in sources:
        if source not in unique:
            unique.append(source)
    return unique


def origin(source: Source) -> str:
    """What fails as a whole: `scheme://host:port` of a URL, the folder of a local file."""
    if isinstance(source, Path):
        return str(source.parent)
    parts = urllib.parse.urlsplit(source)
    host = parts.netloc.rpartition("@")[2].lower()  # no credentials in messages
    return f"{parts.scheme.lower()}://{host}"


class DeadSources:
    """The origins that timed out or refused in this run; keep one per run (one command).

    An origin is dead at once when it does not answer at all (connection refused, host unknown,
    nothing within the timeout), and at its second stall in the middle of a body: a server that
    answered once may be slow rather than gone, so one stall is forgiven (the transfer resumes).
    Either way an origin costs the run at most about two timeouts."""

    STALLS_FORGIVEN = 1

    def __init__(self) -> None:
        self._why: dict[str, str] = {}
        self._stalls: Counter[str] = Counter()

    def reason(self, source: Source) -> str | None:
        """Why `source`'s origin is dead, or None while it is worth trying."""
        return self._why.get(origin(source))

    def unreachable(self, source: Source, why: str) -> None:
        self._why.setdefault(origin(source), why)

    def stalled(self, source: Source, why: str) -> bool:
        """Count a stall; True when it makes the origin dead."""
        key = origin(source)
        self._stalls[key] += 1
        if self._stalls[key] > self.STALLS_FORGIVEN:
            self._why.setdefault(key, f"stalled {self._stalls[key]} times in this run ({why})")
            return True
        return False


def is_local(mirror: str) -> bool:
    """A mirror that is a folder (or a `file://` URL): readable without a network."""
    scheme = urllib.parse.urlsplit(mirror).scheme.lower()
    return scheme == "file" or "://" not in mirror


def _mirror_source(mirror: str, file_name: str) -> Source:
    scheme = urllib.parse.urlsplit(mirror).scheme.lower()
    if scheme in ("http", "https"):
        return mirror.rstrip("/") + "/" + urllib.parse.quote(file_name)
    if scheme == "file":
        folder = Path(urllib.request.url2pathname(urllib.parse.urlsplit(mirror).path))
    elif "://" in mirror:
        raise SetupError(f"unsupported mirror {mirror!r}: use an http(s):// URL or a folder")
    else:
        folder = Path(mirror).expanduser()
    if not folder.is_dir():
        raise SetupError(f"mirror folder not found: {folder}")
    return folder / file_name


def _url_source(url: str) -> Source:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() == "file":
        return Path(urllib.request.url2pathname(parts.path))
    return url
