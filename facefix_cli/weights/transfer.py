"""Moving one model file's bytes from a source into its `.part`, checked, with resume and retries.

Guarantees of `Fetcher.fetch`:

* Bytes stream into `<file>.part` and are hashed on the way; only when size and SHA-256 match
  the registry is the part fsynced and installed under the final name (`store.install`).
* A `.part` left by a cut-off transfer is resumed with an HTTP Range request; a server that
  ignores Range sends the whole file and we start over. Bad bytes (digest mismatch, oversized
  body, HTML page) delete the `.part`; a network error keeps it for the next attempt.
* Network trouble (a stall past `timeout`, a reset, HTTP 5xx/408/429) is retried with
  exponential backoff up to `retries` times per source; a permanent answer (404, wrong file)
  moves on to the next source at once.
* A source whose host or folder does not answer (refused, unknown host, silent past the
  timeout, or a second stall) is dead for the rest of the run (`sources.DeadSources`): no
  retry and no later file waits on it again.
* Proxies come from HTTPS_PROXY/HTTP_PROXY/NO_PROXY via urllib, read when the Fetcher is made.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import http.client
import os
import socket
import stat
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

from facefix_cli import __version__
from facefix_cli.errors import DownloadError
from facefix_cli.io.hashing import sha256_file
from facefix_cli.weights import store
from facefix_cli.weights.progress import DownloadProgress
from facefix_cli.weights.registry import ModelInfo
from facefix_cli.weights.sources import DeadSources, Source, origin

CHUNK_SIZE = 256 * 1024
USER_AGENT = f"facefix/{__version__} (+python-urllib)"
# Server answers worth retrying on the same source; any other 4xx means "not here".
RETRYABLE_STATUS = {408, 425, 429}
# Connection errors that say the host is not there for us, now or in a second.
UNREACHABLE_ERRNOS = {errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN}
# Errors reading a mirror folder that mean its mount is gone, not that one file is bad.
MOUNT_GONE_ERRNOS = {errno.ETIMEDOUT, errno.ESTALE, errno.ENOTCONN, *UNREACHABLE_ERRNOS}


class _Retryable(Exception):
    """Worth trying the same source again (after a pause). The .part file is kept for resume
    unless `discard` says its bytes are bad."""

    def __init__(self, message: str, *, discard: bool = False) -> None:
        super().__init__(message)
        self.discard = discard


class _Stalled(_Retryable):
    """The server answered, then sent nothing for `timeout` seconds: forgiven once per host
    per run (`DeadSources`), then the host is dropped."""


class _NotHere(Exception):
    """This source will not give us the file (404, wrong or oversized bytes): try the next."""


class _Unreachable(Exception):
    """The source's host or folder does not answer: not tried again in this run."""


class Fetcher:
    """Fetches model files for one run; remembers the sources that went dead in it."""

    def __init__(
        self,
        progress: DownloadProgress,
        *,
        timeout: float = 30.0,
        retries: int = 3,
        backoff: float = 1.0,
    ) -> None:
        self.progress = progress
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.dead = DeadSources()
        # ProxyHandler() reads HTTP_PROXY/HTTPS_PROXY/NO_PROXY now, not at import time.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler())

    def fetch(self, model: ModelInfo, final: Path, sources: Sequence[Source]) -> None:
        """Try each live source (with retries) until `final` holds the verified file; raise
        DownloadError naming every source's failure otherwise."""
        part = store.part_path(final)
        failures: list[str] = []
        for source in sources:
            dead_because = self.dead.reason(source)
            if dead_because is not None:
                failures.append(f"{source}: not tried, {origin(source)} {dead_because}")
                continue
            if failures:
                self.progress.message(f"{model.file}: {failures[-1]}; trying {source}")
            failure = self._try_source(model, part, source)
            if failure is None:
                store.install(part, final, model)
                self.progress.done(model, final)
                return
            failures.append(failure)
        raise DownloadError(f"could not download {model.file}: {'; '.join(failures)}", [model.file])

    def _try_source(self, model: ModelInfo, part: Path, source: Source) -> str | None:
        """Transfer from `source` into `part`, retrying; None on success, else why not."""
        attempt = 0
        while True:
            try:
                if isinstance(source, Path):
                    self._copy_local(source, model, part)
                else:
                    self._transfer_http(source, model, part)
            except _Unreachable as exc:
                self.dead.unreachable(source, f"did not answer earlier in this run ({exc})")
                return f"{source}: {exc} (not tried again in this run)"
            except _Retryable as exc:
                if exc.discard:
                    store.unlink_quietly(part)
                if isinstance(exc, _Stalled) and self.dead.stalled(source, str(exc)):
                    return f"{source}: {exc} (stalled again; not tried again in this run)"
                if attempt == self.retries:
                    tries = f"{self.retries + 1} attempt{'s' if self.retries else ''}"
                    return f"{source}: {exc} (gave up after {tries})"
                delay = self.backoff * 2**attempt
                attempt += 1
                self.progress.message(
                    f"{model.file}: {exc}; retry {attempt} of {self.retries} in {delay:.3g}s"
                )
                time.sleep(delay)
            except _NotHere as exc:
                return f"{source}: {exc}"
            else:
                return None

    # -----------------------------------------------------------------------------------------
    # HTTP

    def _transfer_http(self, url: str, model: ModelInfo, part: Path) -> None:
        timeout = self.timeout
        offset = store.resumable_size(model, part)
        if offset == model.size:
            # A complete .part from a run that died before the rename: no need for the network.
            if sha256_file(part) == model.sha256:
                return
            store.unlink_quietly(part)
            offset = 0
        headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        request = urllib.request.Request(url, headers=headers)
        try:
            response = self._opener.open(request, timeout=timeout)
        except urllib.error.HTTPError as exc:
            exc.close()
            if exc.code == 416:  # our Range is past what the server has: the .part is useless
                raise _Retryable("server refused the resume range", discard=True) from None
            reason = f"HTTP {exc.code} {exc.reason}"
            if exc.code >= 500 or exc.code in RETRYABLE_STATUS:
                raise _Retryable(reason) from None
            raise _NotHere(reason) from None
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, socket.gaierror):
                # No DNS (an air-gapped machine): retrying will not help.
                raise _Unreachable(f"cannot resolve host: {exc.reason.strerror}") from None
            if isinstance(exc.reason, TimeoutError):
                raise _Unreachable(f"timed out after {timeout:g}s") from None
            if isinstance(exc.reason, OSError) and exc.reason.errno in UNREACHABLE_ERRNOS:
                raise _Unreachable(f"cannot connect: {exc.reason}") from None
            raise _Retryable(f"cannot connect: {exc.reason}") from None
        except TimeoutError:
            # Connected, but no answer: the stalled mirror that must not hold up the run.
            raise _Unreachable(f"timed out after {timeout:g}s waiting for the server") from None
        except (OSError, http.client.HTTPException) as exc:
            raise _Retryable(f"connection error: {exc}") from None

        with response:
            content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if content_type in ("text/html", "application/xhtml+xml"):
                raise _NotHere("server sent an HTML page (Content-Type text/html), not the file")
            if response.status == 206:
                start, total = _parse_content_range(response.headers.get("Content-Range"))
                if total is not None and total != model.size:
                    raise _NotHere(f"server has {total} bytes, expected {model.size}")
                if start != offset:
                    raise _Retryable("server resumed at the wrong offset", discard=True)
            elif offset:
                self.progress.message(
                    f"{model.file}: server does not support resuming; starting over"
                )
                offset = 0
            length = _content_length(response)
            if length is not None and offset + length != model.size:
                more = "more than" if offset + length > model.size else "not"
                raise _NotHere(
                    f"server offers {offset + length} bytes, {more} the expected {model.size}"
                )
            self.progress.start(model, model.size, offset, url)
            read = functools.partial(_read_network, response, timeout)
            self._receive(read, model, part, offset)

    # -----------------------------------------------------------------------------------------
    # Mirror folders

    def _copy_local(self, source: Path, model: ModelInfo, part: Path) -> None:
        """Copy from a mirror folder (NFS mount, USB disk) with the same checks as a download."""
        try:
            st = source.stat()
        except FileNotFoundError:
            raise _NotHere("no such file in the mirror folder") from None
        except OSError as exc:
            raise _local_error("cannot read", exc) from None
        if not stat.S_ISREG(st.st_mode) or st.st_size != model.size:
            raise _NotHere(f"has {st.st_size} bytes, expected {model.size}")
        try:
            src = open(source, "rb")  # noqa: SIM115 - closed below, after _receive
        except OSError as exc:
            raise _local_error("cannot read", exc) from None
        with src:

            def read(size: int) -> bytes:
                try:
                    return src.read(size)
                except OSError as exc:
                    raise _local_error("read error", exc) from None

            self.progress.start(model, model.size, 0, str(source))
            self._receive(read, model, part, 0)

    # -----------------------------------------------------------------------------------------
    # Into the .part

    def _receive(
        self, read: Callable[[int], bytes], model: ModelInfo, part: Path, offset: int
    ) -> None:
        """Write what `read` yields to `part` after its first `offset` bytes, then check that
        the whole of `part` has the pinned size and digest, and fsync it.

        On a network error the .part is kept (flushed) for a resume; on bad bytes or a disk
        error it is deleted. New bytes are hashed as they arrive; a resumed part is hashed
        whole once it is complete (the bytes before `offset` came from an earlier attempt)."""
        hasher = hashlib.sha256()
        try:
            out = store.open_part(part, resume=bool(offset))  # closed in finally
        except OSError as exc:
            raise store.disk_error(exc, part, model) from None
        outcome: Literal["delete", "keep", "verified"] = "delete"
        try:
            received = offset
            while received <= model.size:
                # Ask for at most one byte past the pinned size: enough to see an oversized body.
                chunk = read(min(CHUNK_SIZE, model.size + 1 - received))
                if not chunk:
                    break
                if received == 0 and _looks_like_html(chunk):
                    raise _NotHere("server sent an HTML page, not the file")
                received += len(chunk)
                if received > model.size:
                    raise _NotHere(f"body is larger than the expected {model.size} bytes")
                hasher.update(chunk)
                _write(out, chunk, part, model)
                self.progress.advance(len(chunk))
            if received < model.size:
                raise _Retryable(f"connection closed after {received} of {model.size} bytes")
            _flush(out, part, model)
            digest = _part_digest(part) if offset else hasher.hexdigest()
            if digest != model.sha256:
                if offset:
                    # The bytes from an earlier attempt may be the bad ones: fetch all again.
                    raise _Retryable("SHA-256 mismatch after resuming", discard=True)
                raise _NotHere(f"SHA-256 mismatch: got {digest}, expected {model.sha256}")
            try:
                os.fsync(out.fileno())
            except OSError as exc:
                raise store.disk_error(exc, part, model) from None
            outcome = "verified"
        except _Retryable as exc:
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
                store.unlink_quietly(part)
                raise store.disk_error(exc, part, model) from None
            if outcome == "delete":
                store.unlink_quietly(part)
        # Verified, synced and closed: the caller installs it.


def _read_network(response: http.client.HTTPResponse, timeout: float, size: int) -> bytes:
    try:
        # read1: whatever has arrived, so bytes received before a stall are kept for resume.
        return response.read1(size)
    except TimeoutError:
        raise _Stalled(f"connection stalled: no data for {timeout:g}s") from None
    except (OSError, http.client.HTTPException) as exc:
        raise _Retryable(f"connection error: {exc!r}") from None


def _local_error(what: str, exc: OSError) -> Exception:
    if exc.errno in MOUNT_GONE_ERRNOS:
        return _Unreachable(f"{what}: {exc.strerror}")
    return _Retryable(f"{what}: {exc.strerror}")


def _part_digest(part: Path) -> str:
    try:
        return sha256_file(part)
    except OSError as exc:
        raise _Retryable(f"cannot read the partial file: {exc.strerror}", discard=True) from None


def _write(out, chunk: bytes, part: Path, model: ModelInfo) -> None:
    try:
        out.write(chunk)
    except OSError as exc:
        raise store.disk_error(exc, part, model) from None


def _flush(out, part: Path, model: ModelInfo) -> None:
    try:
        out.flush()
    except OSError as exc:
        raise store.disk_error(exc, part, model) from None


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
