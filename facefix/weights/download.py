"""Getting model weights onto disk: verified, resumable, atomic, and safe with concurrent runs.

How one file is fetched (`download`):

* Sources are tried in order: each mirror given (an HTTP(S) base URL, a `file://` URL or a local
  folder holding the same file names), then the registry's own URLs (release URL first). Mirrors
  come first because someone who passes one usually cannot reach the release URL at all.
* A lock file `<file>.lock` (flock) serialises processes fetching the same file; the second one
  waits, then finds the file in place and returns.
* Bytes stream into `<file>.part` in the weights folder, hashed on the way. Only when the size
  and SHA-256 match the registry is it fsynced and renamed to `<file>`, so a wrong, truncated or
  interrupted download never appears under the final name.
* A `.part` left by a cut-off transfer is resumed with an HTTP Range request; a server that
  ignores Range sends the whole file and we start over. Bad bytes (digest mismatch, oversized
  body, HTML page) delete the `.part`.
* Network trouble (stall past `timeout`, reset, HTTP 5xx/408/429) is retried with exponential
  backoff up to `retries` times per source; a permanent answer (404, wrong file) moves on to the
  next source at once. Proxies come from HTTPS_PROXY/HTTP_PROXY/NO_PROXY via urllib.
* A file already in place with the pinned size is trusted without re-hashing (`fix` runs often;
  hashing 1 GB each time is not free); `check` re-hashes.
"""

from __future__ import annotations

import errno
import hashlib
import http.client
import os
import shlex
import socket
import stat
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from facefix import __version__
from facefix.errors import FacefixError, MissingWeightsError, SetupError
from facefix.io.hashing import sha256_file
from facefix.weights import registry
from facefix.weights.registry import ModelInfo

try:
    import fcntl
except ImportError:  # not on Windows; there we go without the cross-process lock
    fcntl = None  # type: ignore[assignment]

CHUNK_SIZE = 256 * 1024
USER_AGENT = f"facefix/{__version__} (+python-urllib)"
MIRROR_ENV = "FACEFIX_MIRROR"
PART_SUFFIX = ".part"
LOCK_SUFFIX = ".lock"
# Server answers worth retrying on the same source; any other 4xx means "not here".
RETRYABLE_STATUS = {408, 425, 429}

State = Literal["missing", "present", "verified", "corrupt"]


class DownloadError(FacefixError):
    """Every source for one or more files failed (network, server, wrong bytes). Exit code 1."""

    def __init__(self, message: str, failed: Sequence[ModelInfo] = ()) -> None:
        super().__init__(message)
        self.failed = list(failed)


class DownloadProgress(Protocol):
    """What the downloader reports, so the library needs no terminal (the CLI draws bars)."""

    def start(self, model: ModelInfo, total: int, completed: int, source: str) -> None:
        """A transfer of `model` from `source` begins; `completed` bytes are already on disk.

        Called again for the same model when a retry or another source takes over."""

    def advance(self, nbytes: int) -> None:
        """`nbytes` more bytes of the current transfer were written."""

    def done(self, model: ModelInfo, path: Path) -> None:
        """`model` is verified and in place at `path`."""

    def message(self, text: str) -> None:
        """A one-line note for the user (retry, waiting for a lock, licence notice)."""


class NullProgress:
    def start(self, model: ModelInfo, total: int, completed: int, source: str) -> None:
        pass

    def advance(self, nbytes: int) -> None:
        pass

    def done(self, model: ModelInfo, path: Path) -> None:
        pass

    def message(self, text: str) -> None:
        pass


@dataclass(frozen=True)
class ModelState:
    model: ModelInfo
    path: Path
    # missing; present (right size, not hashed); verified (size and SHA-256 match); corrupt.
    state: State
    detail: str = ""  # why it is corrupt


# ---------------------------------------------------------------------------------------------
# What is on disk


def weights_path(model: ModelInfo, weights_dir: Path) -> Path:
    return Path(weights_dir) / model.file


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
        elif st.st_size != model.size:
            detail = f"{st.st_size} bytes, expected {model.size}"
            states.append(ModelState(model, path, "corrupt", detail))
        elif not verify:
            states.append(ModelState(model, path, "present"))
        else:
            try:
                digest = sha256_file(path)
            except OSError as exc:
                states.append(ModelState(model, path, "corrupt", f"cannot read: {exc.strerror}"))
                continue
            if digest == model.sha256:
                states.append(ModelState(model, path, "verified"))
            else:
                detail = f"SHA-256 {digest}, expected {model.sha256}"
                states.append(ModelState(model, path, "corrupt", detail))
    return states


def check(models: Sequence[ModelInfo], weights_dir: Path) -> list[ModelState]:
    """Re-hash every file: each comes out missing, verified or corrupt."""
    return model_states(models, weights_dir, verify=True)


# ---------------------------------------------------------------------------------------------
# Names, commands, mirrors


def resolve_names(names: Sequence[str], *, all_models: bool = False) -> list[ModelInfo]:
    """Registry rows for command-line names (a short name or a file name, any case).

    No names: the default set. `all_models`: everything except non-commercial models, which
    are fetched only when named. Unknown names raise SetupError listing the known ones."""
    table = registry.MODELS  # looked up at call time so tests can swap the table
    if names and all_models:
        raise SetupError("give model names or --all, not both")
    if all_models:
        return [m for m in table if not m.non_commercial]
    if not names:
        return [m for m in table if m.default]
    by_key: dict[str, ModelInfo] = {}
    for model in table:
        by_key[model.name.lower()] = model
        by_key[model.file.lower()] = model
    unknown = [n for n in names if n.lower() not in by_key]
    if unknown:
        known = ", ".join(m.name for m in table)
        plural = "s" if len(unknown) > 1 else ""
        raise SetupError(f"unknown model{plural} {', '.join(unknown)}; known models: {known}")
    chosen: list[ModelInfo] = []
    for name in names:
        model = by_key[name.lower()]
        if model not in chosen:
            chosen.append(model)
    return chosen


def download_command(
    models: Sequence[ModelInfo],
    weights_dir: Path,
    *,
    mirrors: Sequence[str] = (),
    force: bool = False,
) -> str:
    """The shell command that fetches exactly `models` into `weights_dir`."""
    words = ["facefix", "download", *(m.name for m in models)]
    words += ["--weights-dir", str(Path(weights_dir).absolute())]
    for mirror in mirrors:
        words += ["--mirror", mirror]
    if force:
        words.append("--force")
    return shlex.join(words)


def licence_notice(model: ModelInfo) -> str:
    return (
        f"note: {model.name} ({model.file}) is licensed under {model.licence}; "
        "you may not use it for commercial purposes"
    )


def mirrors_from_env() -> list[str]:
    """$FACEFIX_MIRROR: one or more mirrors (URLs or folders) separated by spaces."""
    return os.environ.get(MIRROR_ENV, "").split()


def model_sources(model: ModelInfo, mirrors: Sequence[str] = ()) -> list[str | Path]:
    """Where to fetch `model` from, in order: mirrors, then the registry URLs.

    HTTP(S) URLs stay strings; local folders and `file://` URLs become Paths of the file."""
    sources: list[str | Path] = []
    for mirror in mirrors:
        sources.append(_mirror_source(mirror, model.file))
    for url in model.urls:
        sources.append(_url_source(url))
    unique: list[str | Path] = []
    for source in sources:
        if source not in unique:
            unique.append(source)
    return unique


def _mirror_source(mirror: str, file_name: str) -> str | Path:
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


def _url_source(url: str) -> str | Path:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() == "file":
        return Path(urllib.request.url2pathname(parts.path))
    return url


# ---------------------------------------------------------------------------------------------
# Fetching


class _RetryableError(Exception):
    """Worth trying the same source again (after a pause). The .part file is kept for resume
    unless `discard` says its bytes are bad."""

    def __init__(self, message: str, *, discard: bool = False) -> None:
        super().__init__(message)
        self.discard = discard


class _SourceError(Exception):
    """This source will not give us the file (404, wrong or oversized bytes): try the next."""


def download(
    models: Sequence[ModelInfo],
    weights_dir: Path,
    *,
    mirrors: Sequence[str] = (),
    force: bool = False,
    progress: DownloadProgress | None = None,
    timeout: float = 30.0,
    retries: int = 3,
    backoff: float = 1.0,
) -> list[Path]:
    """Fetch each model that is not present (or every one, with `force`) into `weights_dir`.

    Returns the paths of all `models`, in order. Raises DownloadError naming the files that
    could not be fetched from any source (the others are still fetched), and SetupError for a
    bad mirror or a weights folder that cannot be written (disk full, read-only, no access).
    `timeout` is seconds without data before a connection counts as stalled; `retries` is how
    many times one source is retried, waiting `backoff`, 2x`backoff`, ... in between."""
    progress = progress or NullProgress()
    weights_dir = Path(weights_dir)
    # Resolve every source first: a mistyped mirror folder should fail before any transfer.
    sources = {model.name: model_sources(model, mirrors) for model in models}
    _make_weights_dir(weights_dir)
    # ProxyHandler() reads HTTP_PROXY/HTTPS_PROXY/NO_PROXY now, not at import time.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler())
    paths: list[Path] = []
    failed: list[ModelInfo] = []
    errors: list[str] = []
    for model in models:
        if model.non_commercial:
            progress.message(licence_notice(model))
        final = weights_path(model, weights_dir)
        paths.append(final)
        if not force and is_present(model, weights_dir):
            progress.message(f"{model.file}: already present in {weights_dir}")
            continue
        with _file_lock(_sibling(final, LOCK_SUFFIX), model, progress):
            if not force and is_present(model, weights_dir):
                progress.message(f"{model.file}: fetched by another facefix process meanwhile")
                continue
            if force:
                _unlink_quietly(_sibling(final, PART_SUFFIX))  # --force means from scratch
            try:
                _fetch(
                    model,
                    final,
                    sources[model.name],
                    opener=opener,
                    progress=progress,
                    timeout=timeout,
                    retries=retries,
                    backoff=backoff,
                )
            except DownloadError as exc:
                failed.append(model)
                errors.append(str(exc))
    if failed:
        raise DownloadError("; ".join(errors), failed)
    return paths


def ensure_weights(
    models: Sequence[ModelInfo],
    weights_dir: Path,
    *,
    offline: bool,
    progress: DownloadProgress | None = None,
    mirrors: Sequence[str] = (),
    timeout: float = 30.0,
    retries: int = 3,
) -> None:
    """Make sure `fix` has every file it needs before it touches an image.

    Missing files are downloaded unless `offline`; when offline, or when the download fails,
    MissingWeightsError (exit 2) names the missing files and the `facefix download` command
    that fetches exactly them. No `mirrors` means those in $FACEFIX_MIRROR, if any.

    A file that exists is trusted whatever its size: no hashing or size check on every run,
    and a user may deliberately place a compatible checkpoint under the registry's name.
    `facefix models` and `facefix download --check` are where sizes and digests are checked."""
    weights_dir = Path(weights_dir)
    missing = [m for m in dict.fromkeys(models) if not weights_path(m, weights_dir).is_file()]
    if not missing:
        return
    explicit_mirrors = list(mirrors)
    if offline:
        command = download_command(missing, weights_dir, mirrors=explicit_mirrors)
        raise MissingWeightsError(
            [m.file for m in missing],
            command,
            reason=f"not in {weights_dir}; offline, not downloading",
        )
    try:
        download(
            missing,
            weights_dir,
            mirrors=explicit_mirrors or mirrors_from_env(),
            progress=progress,
            timeout=timeout,
            retries=retries,
        )
    except FacefixError as exc:
        still_missing = [m for m in missing if not is_present(m, weights_dir)] or missing
        command = download_command(still_missing, weights_dir, mirrors=explicit_mirrors)
        raise MissingWeightsError(
            [m.file for m in still_missing], command, reason=f"download failed: {exc}"
        ) from exc


def _fetch(
    model: ModelInfo,
    final: Path,
    sources: Sequence[str | Path],
    *,
    opener: urllib.request.OpenerDirector,
    progress: DownloadProgress,
    timeout: float,
    retries: int,
    backoff: float,
) -> None:
    """Try each source (with retries) until `final` holds the verified file."""
    part = _sibling(final, PART_SUFFIX)
    failures: list[str] = []
    for index, source in enumerate(sources):
        if index:
            progress.message(f"{model.file}: {failures[-1]}; trying {source}")
        for attempt in range(retries + 1):
            try:
                if isinstance(source, Path):
                    _copy_local(source, model, part, progress)
                else:
                    _transfer_http(source, model, part, opener, timeout, progress)
            except _RetryableError as exc:
                if exc.discard:
                    _unlink_quietly(part)
                if attempt == retries:
                    tries = f"{retries + 1} attempt{'s' if retries else ''}"
                    failures.append(f"{source}: {exc} (gave up after {tries})")
                    break
                delay = backoff * 2**attempt
                progress.message(
                    f"{model.file}: {exc}; retry {attempt + 1} of {retries} in {delay:.3g}s"
                )
                time.sleep(delay)
            except _SourceError as exc:
                failures.append(f"{source}: {exc}")
                break
            else:
                _install(part, final, model)
                progress.done(model, final)
                return
    raise DownloadError(f"could not download {model.file}: {'; '.join(failures)}", [model])


def _transfer_http(
    url: str,
    model: ModelInfo,
    part: Path,
    opener: urllib.request.OpenerDirector,
    timeout: float,
    progress: DownloadProgress,
) -> None:
    offset = _resumable_size(model, part)
    if offset == model.size:
        # A complete .part from a run that died before the rename: no need for the network.
        if sha256_file(part) == model.sha256:
            return
        _unlink_quietly(part)
        offset = 0
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = opener.open(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416:  # our Range is past what the server has: the .part is useless
            raise _RetryableError("server refused the resume range", discard=True) from None
        reason = f"HTTP {exc.code} {exc.reason}"
        if exc.code >= 500 or exc.code in RETRYABLE_STATUS:
            raise _RetryableError(reason) from None
        raise _SourceError(reason) from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, socket.gaierror):
            # No DNS (an air-gapped machine): retrying will not help.
            raise _SourceError(f"cannot resolve host: {exc.reason.strerror}") from None
        if isinstance(exc.reason, TimeoutError):
            raise _RetryableError(f"timed out after {timeout:g}s") from None
        raise _RetryableError(f"cannot connect: {exc.reason}") from None
    except TimeoutError:
        raise _RetryableError(f"timed out after {timeout:g}s waiting for the server") from None
    except (OSError, http.client.HTTPException) as exc:
        raise _RetryableError(f"connection error: {exc}") from None

    with response:
        content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type in ("text/html", "application/xhtml+xml"):
            raise _SourceError("server sent an HTML page (Content-Type text/html), not the file")
        if response.status == 206:
            start, total = _parse_content_range(response.headers.get("Content-Range"))
            if total is not None and total != model.size:
                raise _SourceError(f"server has {total} bytes, expected {model.size}")
            if start != offset:
                raise _RetryableError("server resumed at the wrong offset", discard=True)
        elif offset:
            progress.message(f"{model.file}: server does not support resuming; starting over")
            offset = 0
        length = _content_length(response)
        if length is not None and offset + length != model.size:
            more = "more than" if offset + length > model.size else "not"
            raise _SourceError(
                f"server offers {offset + length} bytes, {more} the expected {model.size}"
            )
        progress.start(model, model.size, offset, url)
        _receive(_network_reader(response, timeout), model, part, offset, progress)


def _copy_local(source: Path, model: ModelInfo, part: Path, progress: DownloadProgress) -> None:
    """Copy from a mirror folder (NFS mount, USB disk) with the same checks as a download."""
    try:
        st = source.stat()
    except FileNotFoundError:
        raise _SourceError("no such file in the mirror folder") from None
    except OSError as exc:
        raise _RetryableError(f"cannot read: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode) or st.st_size != model.size:
        raise _SourceError(f"has {st.st_size} bytes, expected {model.size}")
    try:
        src = open(source, "rb")  # noqa: SIM115 - closed below, after _receive
    except OSError as exc:
        raise _RetryableError(f"cannot read: {exc.strerror}") from None
    with src:

        def read(size: int) -> bytes:
            try:
                return src.read(size)
            except OSError as exc:
                raise _RetryableError(f"read error: {exc.strerror}") from None

        progress.start(model, model.size, 0, str(source))
        _receive(read, model, part, 0, progress)


def _receive(
    read: Callable[[int], bytes],
    model: ModelInfo,
    part: Path,
    offset: int,
    progress: DownloadProgress,
) -> None:
    """Write what `read` yields to `part` after its first `offset` bytes, then check that the
    whole of `part` has the pinned size and digest, and fsync it.

    On a network error the .part is kept (flushed) for a resume; on bad bytes or a disk
    error it is deleted."""
    hasher = hashlib.sha256()
    if offset:
        _hash_prefix(part, offset, hasher)
    try:
        out = open(part, "ab" if offset else "wb")  # noqa: SIM115 - closed in finally
    except OSError as exc:
        raise _disk_error(exc, part, model) from None
    outcome: Literal["delete", "keep", "verified"] = "delete"
    try:
        received = offset
        while received <= model.size:
            # Ask for at most one byte past the pinned size: enough to detect an oversized body.
            chunk = read(min(CHUNK_SIZE, model.size + 1 - received))
            if not chunk:
                break
            if received == 0 and _looks_like_html(chunk):
                raise _SourceError("server sent an HTML page, not the file")
            received += len(chunk)
            if received > model.size:
                raise _SourceError(f"body is larger than the expected {model.size} bytes")
            hasher.update(chunk)
            _write(out, chunk, part, model)
            progress.advance(len(chunk))
        if received < model.size:
            raise _RetryableError(f"connection closed after {received} of {model.size} bytes")
        digest = hasher.hexdigest()
        if digest != model.sha256:
            if offset:
                # The bytes from an earlier attempt may be the bad ones: fetch all again.
                raise _RetryableError("SHA-256 mismatch after resuming", discard=True)
            raise _SourceError(f"SHA-256 mismatch: got {digest}, expected {model.sha256}")
        try:
            out.flush()
            os.fsync(out.fileno())
        except OSError as exc:
            raise _disk_error(exc, part, model) from None
        outcome = "verified"
    except _RetryableError as exc:
        if not exc.discard:
            outcome = "keep"
        raise
    except KeyboardInterrupt:
        outcome = "keep"  # Ctrl-C: the next run resumes
        raise
    finally:
        try:
            out.close()
        except OSError as exc:
            # What we meant to keep did not reach the disk (a late ENOSPC from the buffer).
            _unlink_quietly(part)
            raise _disk_error(exc, part, model) from None
        if outcome == "delete":
            _unlink_quietly(part)
    # Verified, synced and closed: the caller renames it into place.


def _hash_prefix(part: Path, offset: int, hasher: hashlib._Hash) -> None:
    try:
        with open(part, "rb") as fh:
            remaining = offset
            while remaining:
                chunk = fh.read(min(1024 * 1024, remaining))
                if not chunk:
                    break
                hasher.update(chunk)
                remaining -= len(chunk)
    except OSError as exc:
        raise _RetryableError(
            f"cannot read the partial file: {exc.strerror}", discard=True
        ) from None


def _write(out, chunk: bytes, part: Path, model: ModelInfo) -> None:
    try:
        out.write(chunk)
    except OSError as exc:
        raise _disk_error(exc, part, model) from None


def _install(part: Path, final: Path, model: ModelInfo) -> None:
    """Rename the verified .part into place and make the rename durable."""
    try:
        os.replace(part, final)
    except OSError as exc:
        _unlink_quietly(part)
        raise _disk_error(exc, final, model) from None
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


def _network_reader(response: http.client.HTTPResponse, timeout: float) -> Callable[[int], bytes]:
    def read(size: int) -> bytes:
        try:
            # read1: whatever has arrived, so bytes received before a stall are kept for resume.
            return response.read1(size)
        except TimeoutError:
            raise _RetryableError(f"connection stalled: no data for {timeout:g}s") from None
        except (OSError, http.client.HTTPException) as exc:
            raise _RetryableError(f"connection error: {exc!r}") from None

    return read


def _resumable_size(model: ModelInfo, part: Path) -> int:
    """Bytes of `part` worth resuming from; 0 (and the part removed) when it cannot be used."""
    try:
        st = part.stat()
    except OSError:
        return 0
    if not stat.S_ISREG(st.st_mode):
        return 0
    if st.st_size > model.size:
        _unlink_quietly(part)
        return 0
    return st.st_size


def _parse_content_range(value: str | None) -> tuple[int | None, int | None]:
    """`bytes 100-999/1000` -> (100, 1000); unknown parts are None."""
    if not value:
        return None, None
    try:
        unit, _, spec = value.strip().partition(" ")
        span, _, total = spec.partition("/")
        start = int(span.split("-")[0])
        return start, (int(total) if total.strip() not in ("", "*") else None)
    except ValueError:
        return None, None


def _content_length(response: http.client.HTTPResponse) -> int | None:
    value = response.headers.get("Content-Length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _looks_like_html(chunk: bytes) -> bool:
    head = chunk[:64].lstrip().lower()
    return head.startswith((b"<!doctype", b"<html"))


# ---------------------------------------------------------------------------------------------
# The weights folder


def _sibling(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


def _make_weights_dir(weights_dir: Path) -> None:
    try:
        weights_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SetupError(f"cannot create weights folder {weights_dir}: {exc.strerror}") from None


@contextmanager
def _file_lock(lock_path: Path, model: ModelInfo, progress: DownloadProgress) -> Iterator[None]:
    """Hold an exclusive flock on `lock_path`; wait (saying so) while another process has it.

    The lock file stays on disk: removing it would let a third process lock a new inode while
    the second still waits on the old one."""
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise _disk_error(exc, lock_path, model) from None
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                progress.message(f"{model.file}: waiting for another facefix process fetching it")
                fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _disk_error(exc: OSError, path: Path, model: ModelInfo) -> SetupError:
    folder = path.parent
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return SetupError(
            f"no space left in {folder} for {model.file} ({model.size} bytes needed); "
            "nothing was kept, free some space and run again"
        )
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return SetupError(f"cannot write to weights folder {folder}: {exc.strerror}")
    return SetupError(f"cannot write {path}: {exc.strerror or exc}")


def _unlink_quietly(path: Path) -> None:
    with suppress(OSError):
        path.unlink(missing_ok=True)
