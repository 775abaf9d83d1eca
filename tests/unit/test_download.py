"""`facefix download` and friends against a real HTTP server on 127.0.0.1.

The server serves small stand-in files; the tests register their sizes and digests in
`ModelInfo` rows in place of the real ones, so nothing here touches the network. Each URL
path is `/<behaviour>/<file>`, the behaviour chosen per request: normal with Range support,
no Range support, cut off once, stalled, 404, 500, wrong bytes, oversized, HTML...
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import http.server
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from typer.testing import CliRunner

from facefix_cli.cli import app
from facefix_cli.cli.app import AppContext
from facefix_cli.cli.console import PlainDownloadProgress, RichDownloadProgress
from facefix_cli.errors import EXIT_SETUP, DownloadError, MissingWeightsError, SetupError
from facefix_cli.weights import download as dl
from facefix_cli.weights import registry, sources, store
from facefix_cli.weights.registry import ModelInfo, Registry

SIZE = 48_000
CUT_AT = 20_000  # bytes sent before a connection is cut or stalls
TIMEOUT = 0.4  # client timeout in these tests; stalled handlers wait far longer
FAST = {"timeout": TIMEOUT, "retries": 2, "backoff": 0.01}


def payload(seed: int, size: int = SIZE) -> bytes:
    return random.Random(seed).randbytes(size)


def stand_in(name: str, data: bytes, *urls: str, **changes) -> ModelInfo:
    """A registry row for a small stand-in file, carrying its real size and digest."""
    return dataclasses.replace(
        registry.get_model("gfpgan-1.4"),
        name=name,
        file=f"{name}.pth",
        urls=urls,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        **changes,
    )


# ---------------------------------------------------------------------------------------------
# The server


@dataclass
class Request:
    path: str
    range: str | None
    proxied: bool


class WeightsServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), WeightsHandler)
        self.files: dict[str, bytes] = {}
        self.requests: list[Request] = []
        self.release = threading.Event()  # lets stalled handlers go at teardown
        self._seen: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def url(self, behaviour: str, model_or_file: ModelInfo | str) -> str:
        name = model_or_file if isinstance(model_or_file, str) else model_or_file.file
        return f"{self.base}/{behaviour}/{name}"

    def add(self, model: ModelInfo, data: bytes) -> None:
        self.files[model.file] = data

    def first_time(self, behaviour: str, file: str) -> bool:
        with self._lock:
            key = (behaviour, file)
            if key in self._seen:
                return False
            self._seen.add(key)
            return True

    def hits(self, file: str) -> list[Request]:
        return [r for r in self.requests if r.path.endswith("/" + file)]

    def handle_error(self, request, client_address) -> None:
        pass  # clients hanging up on purpose (timeouts, refusals) are part of the tests


class WeightsHandler(http.server.BaseHTTPRequestHandler):
    server: WeightsServer

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        proxied = self.path.startswith("http://")  # a proxy gets the absolute URL
        path = urlsplit(self.path).path
        self.server.requests.append(Request(path, self.headers.get("Range"), proxied))
        _, behaviour, file = path.split("/", 2)
        data = self.server.files.get(file)
        if data is None or behaviour == "missing":
            self.send_error(404)
            return
        getattr(self, "serve_" + behaviour)(data, file)

    def send_file(self, data: bytes, *, ranges: bool = True, content_type: str = "") -> None:
        start = 0
        header = self.headers.get("Range")
        if ranges and header and header.startswith("bytes="):
            start = int(header[len("bytes=") :].split("-")[0])
            if start >= len(data):
                self.send_error(416)
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        self.send_header("Content-Type", content_type or "application/octet-stream")
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        self.wfile.write(data[start:])

    def send_head_only(self, length: int | None) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        if length is not None:
            self.send_header("Content-Length", str(length))
        self.end_headers()

    def serve_ok(self, data: bytes, file: str) -> None:
        self.send_file(data)

    def serve_norange(self, data: bytes, file: str) -> None:
        self.send_file(data, ranges=False)

    def serve_cut(self, data: bytes, file: str) -> None:
        """Promise the whole file, send CUT_AT bytes and hang up; normal afterwards."""
        if self.server.first_time("cut", file):
            self.send_head_only(len(data))
            self.wfile.write(data[:CUT_AT])
            self.close_connection = True
        else:
            self.send_file(data)

    def serve_stallbody(self, data: bytes, file: str) -> None:
        """Send CUT_AT bytes, then go silent past the client timeout; normal afterwards."""
        if self.server.first_time("stallbody", file):
            self.send_head_only(len(data))
            self.wfile.write(data[:CUT_AT])
            self.server.release.wait(10)
        else:
            self.send_file(data)

    def serve_stall(self, data: bytes, file: str) -> None:
        self.server.release.wait(10)

    def serve_stallalways(self, data: bytes, file: str) -> None:
        """Send CUT_AT bytes of the whole file, then go silent; every time."""
        self.send_head_only(len(data))
        self.wfile.write(data[:CUT_AT])
        self.server.release.wait(10)

    def serve_flaky(self, data: bytes, file: str) -> None:
        if self.server.first_time("flaky", file):
            self.send_error(500)
        else:
            self.send_file(data)

    def serve_error500(self, data: bytes, file: str) -> None:
        self.send_error(500)

    def serve_wrong(self, data: bytes, file: str) -> None:
        self.send_file(payload(999, len(data)))

    def serve_bigdeclared(self, data: bytes, file: str) -> None:
        self.send_file(data + b"extra" * 20)

    def serve_bigstream(self, data: bytes, file: str) -> None:
        self.send_head_only(None)  # no length: the body ends when the connection closes
        self.wfile.write(data + b"extra" * 20)

    def serve_html(self, data: bytes, file: str) -> None:
        page = b"<!DOCTYPE html><html><body>Rate limit exceeded</body></html>"
        self.send_file(page, content_type="text/html; charset=utf-8")

    def serve_htmlbody(self, data: bytes, file: str) -> None:
        page = b"  <html><body>Sign in to continue</body></html>"
        self.send_file(page.ljust(len(data), b" "))

    def serve_redirect(self, data: bytes, file: str) -> None:
        """What GitHub release URLs do: send the client to a storage host."""
        self.send_response(302)
        self.send_header("Location", f"{self.server.base}/ok/{file}")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def serve_slow(self, data: bytes, file: str) -> None:
        self.send_head_only(len(data))
        step = len(data) // 12
        for start in range(0, len(data), step):
            self.wfile.write(data[start : start + step])
            time.sleep(0.1)


@contextmanager
def serving() -> Iterator[WeightsServer]:
    srv = WeightsServer()
    thread = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.release.set()
        srv.shutdown()
        srv.server_close()


@pytest.fixture
def server():
    with serving() as srv:
        yield srv


@pytest.fixture
def other_server():
    """A second host (another port): a source that fails apart from `server`."""
    with serving() as srv:
        yield srv


@pytest.fixture
def refusing_url():
    """A URL on a port that is bound but not listening: every connection is refused."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in (
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "NO_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "no_proxy",
        "FACEFIX_MIRROR",
        "FACEFIX_WEIGHTS_DIR",
    ):
        monkeypatch.delenv(name, raising=False)


class RecordingProgress:
    def __init__(self) -> None:
        self.starts: list[tuple[str, int, int, str]] = []
        self.advanced = 0
        self.finished: list[Path] = []
        self.messages: list[str] = []

    def start(self, model: ModelInfo, total: int, completed: int, source: str) -> None:
        self.starts.append((model.name, total, completed, source))

    def advance(self, nbytes: int) -> None:
        self.advanced += nbytes

    def done(self, model: ModelInfo, path: Path) -> None:
        self.finished.append(path)

    def message(self, text: str) -> None:
        self.messages.append(text)


def leftovers(folder: Path) -> list[str]:
    """Files in the weights folder other than lock files."""
    if not folder.exists():
        return []
    return sorted(p.name for p in folder.iterdir() if not p.name.endswith(".lock"))


@pytest.fixture
def one(server):
    """One stand-in model served by `server`; its URL is set per test."""
    data = payload(1)
    model = stand_in("standin", data)
    server.add(model, data)
    return model, data


def with_url(model: ModelInfo, *urls: str) -> ModelInfo:
    return dataclasses.replace(model, urls=urls)


# ---------------------------------------------------------------------------------------------
# Success, presence, force


def test_download_streams_verifies_and_renames_into_place(server, one, tmp_path):
    model, data = one
    model = with_url(model, server.url("ok", model))
    weights = tmp_path / "nested" / "weights"
    progress = RecordingProgress()

    paths = dl.download([model], weights, progress=progress, **FAST)

    assert paths == [weights / model.file]
    assert paths[0].read_bytes() == data
    assert leftovers(weights) == [model.file]  # no .part left behind
    assert progress.starts == [(model.name, SIZE, 0, server.url("ok", model))]
    assert progress.advanced == SIZE
    assert progress.finished == paths
    assert server.hits(model.file)[0].range is None


def test_present_file_is_trusted_not_rehashed_and_force_refetches(server, one, tmp_path):
    model, data = one
    model = with_url(model, server.url("ok", model))
    target = tmp_path / model.file
    target.write_bytes(payload(5))  # right size, wrong bytes

    assert dl.download([model], tmp_path, **FAST) == [target]
    assert server.requests == []  # trusted by size: no request, no hash
    assert target.read_bytes() != data
    assert [s.state for s in store.check([model], tmp_path)] == ["corrupt"]

    dl.download([model], tmp_path, force=True, **FAST)
    assert target.read_bytes() == data
    assert len(server.requests) == 1


def test_wrong_sized_file_is_not_present_and_is_replaced(server, one, tmp_path):
    model, data = one
    model = with_url(model, server.url("ok", model))
    (tmp_path / model.file).write_bytes(data[:100])
    assert not store.is_present(model, tmp_path)
    dl.download([model], tmp_path, **FAST)
    assert (tmp_path / model.file).read_bytes() == data


# ---------------------------------------------------------------------------------------------
# Resume and restart


def test_cut_off_transfer_is_resumed_with_a_range_request(server, one, tmp_path):
    model, data = one
    model = with_url(model, server.url("cut", model))
    progress = RecordingProgress()

    dl.download([model], tmp_path, progress=progress, **FAST)

    assert (tmp_path / model.file).read_bytes() == data
    assert [r.range for r in server.hits(model.file)] == [None, f"bytes={CUT_AT}-"]
    assert [s[2] for s in progress.starts] == [0, CUT_AT]
    assert any("connection closed after 20000 of 48000 bytes" in m for m in progress.messages)


def test_interrupted_download_never_appears_under_final_name_and_resumes_next_run(
    server, one, tmp_path
):
    model, data = one
    cut = with_url(model, server.url("cut", model))
    with pytest.raises(DownloadError, match="connection closed after 20000"):
        dl.download([cut], tmp_path, timeout=TIMEOUT, retries=0)
    assert not (tmp_path / model.file).exists()
    assert (tmp_path / (model.file + ".part")).stat().st_size == CUT_AT

    dl.download([with_url(model, server.url("ok", model))], tmp_path, **FAST)
    assert (tmp_path / model.file).read_bytes() == data
    assert server.hits(model.file)[-1].range == f"bytes={CUT_AT}-"
    assert leftovers(tmp_path) == [model.file]


def test_connection_stalled_mid_body_times_out_and_resumes(server, one, tmp_path):
    model, data = one
    model = with_url(model, server.url("stallbody", model))
    progress = RecordingProgress()
    started = time.monotonic()

    dl.download([model], tmp_path, progress=progress, **FAST)

    assert time.monotonic() - started < 5
    assert (tmp_path / model.file).read_bytes() == data
    assert [r.range for r in server.hits(model.file)] == [None, f"bytes={CUT_AT}-"]
    assert any("stalled" in m for m in progress.messages)


def test_server_without_range_support_starts_over(server, one, tmp_path):
    model, data = one
    model = with_url(model, server.url("norange", model))
    # A partial file with the wrong bytes: only a real restart from zero gives a good file.
    (tmp_path / (model.file + ".part")).write_bytes(b"x" * CUT_AT)
    progress = RecordingProgress()

    dl.download([model], tmp_path, progress=progress, **FAST)

    assert (tmp_path / model.file).read_bytes() == data
    assert [r.range for r in server.hits(model.file)] == [f"bytes={CUT_AT}-"]
    assert any("does not support resuming" in m for m in progress.messages)
    assert progress.starts[-1][2] == 0


def test_resume_onto_bad_partial_bytes_discards_them_and_refetches(server, one, tmp_path):
    model, data = one
    model = with_url(model, server.url("ok", model))
    (tmp_path / (model.file + ".part")).write_bytes(b"x" * CUT_AT)

    dl.download([model], tmp_path, **FAST)

    assert (tmp_path / model.file).read_bytes() == data
    assert [r.range for r in server.hits(model.file)] == [f"bytes={CUT_AT}-", None]


def test_redirect_is_followed_and_keeps_the_range_header(server, one, tmp_path):
    model, data = one
    model = with_url(model, server.url("redirect", model))
    (tmp_path / (model.file + ".part")).write_bytes(data[:CUT_AT])
    dl.download([model], tmp_path, **FAST)
    assert (tmp_path / model.file).read_bytes() == data
    assert [(r.path, r.range) for r in server.requests] == [
        (f"/redirect/{model.file}", f"bytes={CUT_AT}-"),
        (f"/ok/{model.file}", f"bytes={CUT_AT}-"),
    ]


def test_complete_part_from_a_crashed_run_is_installed_without_the_network(server, one, tmp_path):
    model, data = one
    model = with_url(model, server.url("ok", model))
    (tmp_path / (model.file + ".part")).write_bytes(data)
    dl.download([model], tmp_path, **FAST)
    assert (tmp_path / model.file).read_bytes() == data
    assert server.requests == []


# ---------------------------------------------------------------------------------------------
# Failures: HTTP errors, retries, timeouts, bad bytes


def test_404_fails_clearly_without_retrying(server, one, tmp_path):
    model, _ = one
    url = server.url("missing", model)
    with pytest.raises(DownloadError) as caught:
        dl.download([with_url(model, url)], tmp_path, **FAST)
    assert f"could not download {model.file}: {url}: HTTP 404" in str(caught.value)
    assert caught.value.files == [model.file]
    assert len(server.requests) == 1
    assert leftovers(tmp_path) == []


def test_500_is_retried_then_succeeds(server, one, tmp_path):
    model, data = one
    progress = RecordingProgress()
    dl.download([with_url(model, server.url("flaky", model))], tmp_path, progress=progress, **FAST)
    assert (tmp_path / model.file).read_bytes() == data
    assert len(server.requests) == 2
    assert any("HTTP 500" in m and "retry 1 of 2" in m for m in progress.messages)


def test_retries_are_bounded(server, one, tmp_path):
    model, _ = one
    with pytest.raises(DownloadError, match=r"HTTP 500 .*gave up after 3 attempts"):
        dl.download([with_url(model, server.url("error500", model))], tmp_path, **FAST)
    assert len(server.requests) == 3
    assert leftovers(tmp_path) == []


def test_stalled_server_times_out_and_is_not_retried(server, one, tmp_path):
    """Accepts the connection, never answers: one timeout, no retry (it is dead for the run)."""
    model, _ = one
    started = time.monotonic()
    with pytest.raises(DownloadError, match="timed out .*not tried again in this run"):
        dl.download(
            [with_url(model, server.url("stall", model))],
            tmp_path,
            timeout=TIMEOUT,
            retries=1,
            backoff=0.01,
        )
    assert time.monotonic() - started < 2 * TIMEOUT + 1
    assert len(server.requests) == 1
    assert leftovers(tmp_path) == []


def test_wrong_digest_is_rejected_and_nothing_is_kept(server, one, tmp_path):
    model, _ = one
    with pytest.raises(DownloadError, match="SHA-256 mismatch"):
        dl.download([with_url(model, server.url("wrong", model))], tmp_path, **FAST)
    assert leftovers(tmp_path) == []
    assert len(server.requests) == 1  # wrong bytes are not worth retrying from the same place


@pytest.mark.parametrize(
    ("behaviour", "message"),
    [("bigdeclared", "more than the expected"), ("bigstream", "larger than the expected")],
)
def test_oversized_body_is_refused(server, one, tmp_path, behaviour, message):
    model, _ = one
    with pytest.raises(DownloadError, match=message):
        dl.download([with_url(model, server.url(behaviour, model))], tmp_path, **FAST)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("behaviour", ["html", "htmlbody"])
def test_html_page_with_status_200_is_refused(server, one, tmp_path, behaviour):
    model, _ = one
    with pytest.raises(DownloadError, match="HTML page"):
        dl.download([with_url(model, server.url(behaviour, model))], tmp_path, **FAST)
    assert leftovers(tmp_path) == []


def test_one_failed_model_does_not_stop_the_others(server, one, tmp_path):
    model, data = one
    good = with_url(model, server.url("ok", model))
    bad = stand_in("absent", b"never served", server.url("missing", "absent.pth"))
    with pytest.raises(DownloadError) as caught:
        dl.download([bad, good], tmp_path, **FAST)
    assert caught.value.files == [bad.file]
    assert (tmp_path / good.file).read_bytes() == data


# ---------------------------------------------------------------------------------------------
# Mirrors and proxies


def test_mirrors_are_tried_in_order_before_the_release_url(server, one, tmp_path):
    model, data = one
    model = with_url(model, server.url("ok", model))
    mirrors = [f"{server.base}/missing", f"{server.base}/ok/"]
    progress = RecordingProgress()

    dl.download([model], tmp_path, mirrors=mirrors, progress=progress, **FAST)

    assert (tmp_path / model.file).read_bytes() == data
    assert [r.path for r in server.requests] == [f"/missing/{model.file}", f"/ok/{model.file}"]
    assert progress.starts[0][3] == f"{server.base}/ok/{model.file}"


def test_release_url_is_the_fallback_when_mirrors_fail(server, one, tmp_path):
    model, data = one
    model = with_url(model, server.url("flaky", model))
    dl.download([model], tmp_path, mirrors=[f"{server.base}/error500"], **FAST)
    assert (tmp_path / model.file).read_bytes() == data
    paths = [r.path for r in server.requests]
    assert paths[:3] == [f"/error500/{model.file}"] * 3  # retried, then given up
    assert paths[3:] == [f"/flaky/{model.file}"] * 2


@pytest.mark.parametrize("form", ["folder", "file-url"])
def test_local_folder_mirror(server, one, tmp_path, form):
    model, data = one
    model = with_url(model, server.url("missing", model))
    mirror_dir = tmp_path / "mirror"
    mirror_dir.mkdir()
    (mirror_dir / model.file).write_bytes(data)
    mirror = str(mirror_dir) if form == "folder" else mirror_dir.as_uri()

    dl.download([model], tmp_path / "weights", mirrors=[mirror], **FAST)

    assert (tmp_path / "weights" / model.file).read_bytes() == data
    assert server.requests == []


def test_bad_file_in_local_mirror_falls_back_to_the_release_url(server, one, tmp_path):
    model, data = one
    model = with_url(model, server.url("ok", model))
    mirror_dir = tmp_path / "mirror"
    mirror_dir.mkdir()
    (mirror_dir / model.file).write_bytes(payload(7))  # right size, wrong bytes
    progress = RecordingProgress()

    dl.download([model], tmp_path / "weights", mirrors=[str(mirror_dir)], progress=progress, **FAST)

    assert (tmp_path / "weights" / model.file).read_bytes() == data
    assert any("SHA-256 mismatch" in m for m in progress.messages)
    assert len(server.requests) == 1


def test_mirror_folder_that_does_not_exist_is_a_setup_error(tmp_path, one):
    model, _ = one
    with pytest.raises(SetupError, match="mirror folder not found"):
        dl.download([model], tmp_path, mirrors=[str(tmp_path / "nope")])
    with pytest.raises(SetupError, match="unsupported mirror"):
        dl.download([model], tmp_path, mirrors=["ftp://example.org/weights"])


def test_model_sources_order_and_forms(tmp_path):
    model = stand_in("a b", b"x", "https://example.org/release/a b.pth")
    found = sources.model_sources(model, ["https://mirror.example/w/", str(tmp_path)])
    assert found == [
        "https://mirror.example/w/a%20b.pth",
        tmp_path / "a b.pth",
        "https://example.org/release/a b.pth",
    ]


def test_http_proxy_from_the_environment_is_used(server, one, tmp_path, monkeypatch):
    model, data = one
    # The host does not exist: only a proxy can answer for it.
    model = with_url(model, f"http://weights.facefix.invalid/ok/{model.file}")
    monkeypatch.setenv("HTTP_PROXY", server.base)
    dl.download([model], tmp_path, **FAST)
    assert (tmp_path / model.file).read_bytes() == data
    assert [r.proxied for r in server.requests] == [True]


# ---------------------------------------------------------------------------------------------
# Dead sources: a host or folder that refused or timed out is not tried again in the run

DEAD_TIMEOUT = 0.3


def stand_ins(count: int, url_base: str, size: int = SIZE) -> list[tuple[ModelInfo, bytes]]:
    """`count` stand-ins whose release URL is `url_base/<file>`."""
    rows = []
    for index in range(count):
        data = payload(20 + index, size)
        rows.append((stand_in(f"file{index}", data, f"{url_base}/file{index}.pth"), data))
    return rows


def test_stalled_mirror_costs_one_timeout_for_the_whole_run(server, other_server, tmp_path):
    rows = stand_ins(4, f"{server.base}/ok", size=4000)
    for model, data in rows:
        server.add(model, data)
        other_server.add(model, data)
    progress = RecordingProgress()
    started = time.monotonic()

    dl.download(
        [model for model, _ in rows],
        tmp_path,
        mirrors=[f"{other_server.base}/stall"],
        progress=progress,
        timeout=DEAD_TIMEOUT,
        retries=3,
        backoff=0.01,
    )

    # Before: 4 files x 4 attempts on the stalled mirror. Now one attempt in the whole run.
    assert len(other_server.requests) == 1
    assert [r.path for r in server.requests] == [f"/ok/file{i}.pth" for i in range(4)]
    for model, data in rows:
        assert (tmp_path / model.file).read_bytes() == data
    assert sum("not tried, http://127.0.0.1:" in m for m in progress.messages) == 3
    assert time.monotonic() - started < 2 * DEAD_TIMEOUT + 2


def test_a_host_that_stalls_twice_is_dropped_for_the_run(server, other_server, tmp_path):
    rows = stand_ins(2, f"{server.base}/ok")
    for model, data in rows:
        server.add(model, data)
        other_server.add(model, data)
    progress = RecordingProgress()

    dl.download(
        [model for model, _ in rows],
        tmp_path,
        mirrors=[f"{other_server.base}/stallalways"],
        progress=progress,
        timeout=DEAD_TIMEOUT,
        retries=3,
        backoff=0.01,
    )

    # The first stall mid-body is forgiven (a slow server resumes), the second ends it.
    assert len(other_server.requests) == 2
    assert any("stalled again; not tried again in this run" in m for m in progress.messages)
    # The part kept from the stalls is resumed from the release URL.
    assert [r.range for r in server.hits("file0.pth")] == [f"bytes={CUT_AT}-"]
    assert [r.range for r in server.hits("file1.pth")] == [None]
    for model, data in rows:
        assert (tmp_path / model.file).read_bytes() == data


def test_refusing_host_is_tried_once_for_all_files(server, refusing_url, tmp_path):
    rows = stand_ins(3, f"{server.base}/ok", size=4000)
    for model, data in rows:
        server.add(model, data)
    progress = RecordingProgress()

    dl.download(
        [model for model, _ in rows],
        tmp_path,
        mirrors=[refusing_url],
        progress=progress,
        retries=3,
        backoff=0.01,
    )

    assert len(server.requests) == 3
    skipped = [m for m in progress.messages if f"not tried, {refusing_url} did not answer" in m]
    assert len(skipped) == 2
    assert not any("retry" in m for m in progress.messages)
    for model, data in rows:
        assert (tmp_path / model.file).read_bytes() == data


def test_mirror_folder_whose_mount_is_gone_is_tried_once(server, tmp_path, monkeypatch):
    rows = stand_ins(3, f"{server.base}/ok", size=4000)
    for model, data in rows:
        server.add(model, data)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    real_stat = Path.stat
    touched: list[Path] = []

    def stale_stat(path: Path, *args, **kwargs):
        # What a dead NFS server gives for every file under the mount.
        if path.parent == mirror:
            touched.append(path)
            raise OSError(errno.ESTALE, os.strerror(errno.ESTALE), str(path))
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(Path, "stat", stale_stat)
    dl.download([m for m, _ in rows], tmp_path / "weights", mirrors=[str(mirror)], retries=3)

    assert touched == [mirror / "file0.pth"]
    assert len(server.requests) == 3
    for model, data in rows:
        assert (tmp_path / "weights" / model.file).read_bytes() == data


def test_origins_and_the_stall_allowance():
    assert sources.origin("https://User:pw@Mirror.example:8443/w/a.pth") == (
        "https://mirror.example:8443"
    )
    assert sources.origin("http://h/a.pth") == sources.origin("http://h/other/b.pth")
    assert sources.origin(Path("/mnt/w/a.pth")) == "/mnt/w"
    dead = sources.DeadSources()
    assert dead.reason("http://h/a.pth") is None
    assert not dead.stalled("http://h/a.pth", "no data")
    assert dead.reason("http://h/b.pth") is None
    assert dead.stalled("http://h/b.pth", "no data")
    assert "stalled 2 times" in dead.reason("http://h/c.pth")
    dead.unreachable(Path("/mnt/w/a.pth"), "gone")
    assert dead.reason(Path("/mnt/w/b.pth")) == "gone"
    assert dead.reason(Path("/mnt/other/a.pth")) is None


# ---------------------------------------------------------------------------------------------
# Concurrency


def test_second_download_waits_for_the_lock_then_finds_the_file(server, one, tmp_path):
    import fcntl

    model, data = one
    model = with_url(model, server.url("ok", model))
    waiting = threading.Event()

    class Progress(RecordingProgress):
        def message(self, text: str) -> None:
            super().message(text)
            if "waiting for another" in text:
                waiting.set()

    progress = Progress()
    lock_fd = os.open(tmp_path / (model.file + ".lock"), os.O_RDWR | os.O_CREAT)
    fcntl.flock(lock_fd, fcntl.LOCK_EX)  # "another process" is fetching
    worker = threading.Thread(
        target=dl.download, args=([model], tmp_path), kwargs={"progress": progress}
    )
    worker.start()
    try:
        assert waiting.wait(5)
        (tmp_path / "done.tmp").write_bytes(data)
        os.replace(tmp_path / "done.tmp", tmp_path / model.file)
    finally:
        os.close(lock_fd)
    worker.join(5)

    assert not worker.is_alive()
    assert server.requests == []
    assert any("fetched by another facefix process" in m for m in progress.messages)


CONCURRENT_SCRIPT = """
import dataclasses, sys
from pathlib import Path
from facefix_cli.weights.download import download
from facefix_cli.weights.registry import get_model
from facefix_cli.cli.console import PlainDownloadProgress
url, size, sha256, name, folder = sys.argv[1:]
model = dataclasses.replace(
    get_model("gfpgan-1.4"), name=name, file=name + ".pth", urls=(url,), size=int(size),
    sha256=sha256,
)
download([model], Path(folder), progress=PlainDownloadProgress(sys.stdout), timeout=5, retries=0)
"""


def test_two_processes_downloading_one_file_do_not_corrupt_it(server, one, tmp_path):
    model, data = one
    args = [server.url("slow", model), str(model.size), model.sha256, model.name, str(tmp_path)]
    jobs = [
        subprocess.Popen(
            [sys.executable, "-c", CONCURRENT_SCRIPT, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [job.communicate(timeout=60)[0] for job in jobs]

    assert [job.returncode for job in jobs] == [0, 0], outputs
    assert (tmp_path / model.file).read_bytes() == data
    assert len(server.hits(model.file)) == 1
    assert sum("downloading " in out for out in outputs) == 1
    assert sum("fetched by another" in out or "already present" in out for out in outputs) == 1
    assert leftovers(tmp_path) == [model.file]


# ---------------------------------------------------------------------------------------------
# The weights folder: disk full, read-only


def test_disk_full_gives_a_clear_error_and_leaves_nothing(server, one, tmp_path):
    if not Path("/dev/full").exists():
        pytest.skip("needs /dev/full")
    model, _ = one
    part = tmp_path / (model.file + ".part")
    part.symlink_to("/dev/full")  # every write to the part file fails with ENOSPC
    with pytest.raises(SetupError, match="no space left in .* for standin.pth"):
        dl.download([with_url(model, server.url("ok", model))], tmp_path, **FAST)
    assert not part.exists() and not part.is_symlink()
    assert leftovers(tmp_path) == []


def test_read_only_weights_folder_gives_a_clear_error(server, one, tmp_path, monkeypatch):
    model, _ = one
    weights = tmp_path / "weights"
    weights.mkdir()
    if os.geteuid() == 0:
        # root ignores permission bits: make creating files in the folder fail as on a
        # read-only mount.
        real_open = os.open

        def read_only_open(path, flags, *args, **kwargs):
            if Path(path).parent == weights and flags & os.O_CREAT:
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
            return real_open(path, flags, *args, **kwargs)

        monkeypatch.setattr(os, "open", read_only_open)
    else:
        weights.chmod(0o555)
    try:
        with pytest.raises(SetupError, match="cannot write to weights folder"):
            dl.download([with_url(model, server.url("ok", model))], weights, **FAST)
    finally:
        weights.chmod(0o755)
    assert leftovers(weights) == []
    assert server.requests == []


def test_weights_folder_that_cannot_be_created(tmp_path, one):
    model, _ = one
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(SetupError, match="cannot create weights folder"):
        dl.download([model], tmp_path / "file" / "weights")


# ---------------------------------------------------------------------------------------------
# States and checks


def test_the_store_and_the_models_command_load_no_http_code():
    """`fix`, `models` and workers read the weights folder without the HTTP stack."""
    probe = (
        "import sys, facefix_cli.weights.store, facefix_cli.cli.weights\n"
        "print(sorted(m for m in sys.modules if m.startswith(('http', 'urllib.request', "
        "'facefix_cli.weights.transfer', 'facefix_cli.weights.download'))))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert loaded.strip() == "[]"


def test_check_and_model_states(tmp_path):
    good_data, bad_data = payload(1), payload(2)
    good = stand_in("good", good_data)
    missing = stand_in("gone", payload(3))
    wrong_size = stand_in("short", bad_data)
    wrong_bytes = stand_in("flipped", bad_data)
    (tmp_path / good.file).write_bytes(good_data)
    (tmp_path / wrong_size.file).write_bytes(bad_data[:-1])
    (tmp_path / wrong_bytes.file).write_bytes(payload(4))
    models = [good, missing, wrong_size, wrong_bytes]

    checked = store.check(models, tmp_path)
    assert [s.state for s in checked] == ["verified", "missing", "corrupt", "corrupt"]
    assert "47999 bytes, expected 48000" in checked[2].detail
    assert "SHA-256" in checked[3].detail

    quick = store.model_states(models, tmp_path, verify=False)
    assert [s.state for s in quick] == ["present", "missing", "corrupt", "present"]


# ---------------------------------------------------------------------------------------------
# ensure_weights (what `fix` calls before any image work)


def test_ensure_weights_offline_names_files_and_exact_command(server, one, tmp_path):
    model, data = one
    other = stand_in("other", payload(8))
    (tmp_path / other.file).write_bytes(payload(8))
    weights = tmp_path
    with pytest.raises(MissingWeightsError) as caught:
        dl.ensure_weights([other, with_url(model, server.url("ok", model))], weights, offline=True)
    exc = caught.value
    assert exc.exit_code == EXIT_SETUP
    assert exc.files == [model.file]
    assert exc.command == f"facefix download {model.name} --weights-dir {weights}"
    assert model.file in str(exc) and exc.command in str(exc) and "offline" in str(exc)
    assert server.requests == []


def test_ensure_weights_downloads_what_is_missing(server, one, tmp_path):
    model, data = one
    progress = RecordingProgress()
    dl.ensure_weights(
        [with_url(model, server.url("ok", model))], tmp_path, offline=False, progress=progress
    )
    assert (tmp_path / model.file).read_bytes() == data
    assert progress.finished == [tmp_path / model.file]
    # Present now: a second call does nothing at all.
    dl.ensure_weights([model], tmp_path, offline=True)
    assert len(server.requests) == 1


def test_ensure_weights_uses_mirrors_from_the_environment(server, one, tmp_path, monkeypatch):
    model, data = one
    monkeypatch.setenv("FACEFIX_MIRROR", f"{server.base}/ok")
    dl.ensure_weights([with_url(model, server.url("missing", model))], tmp_path, offline=False)
    assert (tmp_path / model.file).read_bytes() == data
    assert [r.path for r in server.requests] == [f"/ok/{model.file}"]


def test_ensure_weights_failed_download_is_a_missing_weights_error(server, one, tmp_path):
    model, _ = one
    with pytest.raises(MissingWeightsError) as caught:
        dl.ensure_weights(
            [with_url(model, server.url("missing", model))], tmp_path, offline=False, retries=0
        )
    assert caught.value.files == [model.file]
    assert "download failed" in str(caught.value) and "HTTP 404" in str(caught.value)
    assert caught.value.command.startswith(f"facefix download {model.name} --weights-dir ")


# ---------------------------------------------------------------------------------------------
# Names and commands


def test_resolve_names():
    defaults = {m.name for m in dl.resolve_names([])}
    assert defaults == {m.name for m in registry.MODELS if m.default}
    every = dl.resolve_names([], all_models=True)
    assert "codeformer" not in {m.name for m in every}  # non-commercial: by name only
    assert len(every) == len(registry.MODELS) - 1
    chosen = dl.resolve_names(["CodeFormer", "GFPGANv1.4.pth", "gfpgan-1.4"])
    assert [m.name for m in chosen] == ["codeformer", "gfpgan-1.4"]
    with pytest.raises(SetupError, match="unknown model nope; known models: gfpgan-1.4, "):
        dl.resolve_names(["nope"])
    with pytest.raises(SetupError, match="not both"):
        dl.resolve_names(["parsenet"], all_models=True)


def test_resolve_names_reads_the_registry_it_is_given():
    alpha, beta = stand_in("alpha", payload(1)), stand_in("beta", payload(2), default=False)
    table = Registry((alpha, beta))
    assert dl.resolve_names([], registry=table) == [alpha]
    assert dl.resolve_names(["BETA.pth"], registry=table) == [beta]
    with pytest.raises(SetupError, match="unknown model gfpgan-1.4; known models: alpha, beta$"):
        dl.resolve_names(["gfpgan-1.4"], registry=table)


def test_download_command_quotes_the_folder(tmp_path):
    models = [registry.get_model("gfpgan-1.4"), registry.get_model("parsenet")]
    folder = tmp_path / "my weights"
    assert dl.download_command(models, folder) == (
        f"facefix download gfpgan-1.4 parsenet --weights-dir '{folder}'"
    )


# ---------------------------------------------------------------------------------------------
# Progress output


def test_plain_progress_is_log_lines_without_control_characters(tmp_path):
    import io

    model = stand_in("standin", payload(1))
    stream = io.StringIO()
    progress = PlainDownloadProgress(stream)
    progress.start(model, SIZE, 0, "http://example/x")
    for _ in range(48):
        progress.advance(1000)
    progress.message("server said \x1b[31mno\r")
    progress.done(model, tmp_path / model.file)
    lines = stream.getvalue().splitlines()
    assert lines[0] == "downloading standin.pth (48.0 kB) from http://example/x"
    assert [line.split()[1] for line in lines[1:4]] == ["25%", "50%", "75%"]
    assert lines[-1].startswith(f"standin.pth: verified, saved to {tmp_path / model.file}")
    text = stream.getvalue()
    assert "\x1b" not in text and "\r" not in text


def test_rich_progress_draws_a_bar_per_file(tmp_path):
    import io

    model = stand_in("standin", payload(1))
    stream = io.StringIO()
    stream.isatty = lambda: True  # type: ignore[method-assign]
    with RichDownloadProgress(stream) as progress:
        progress.start(model, SIZE, 0, "http://example/x")
        progress.advance(SIZE // 2)
        progress.start(model, SIZE, SIZE // 2, "http://example/x")  # a retry reuses the bar
        progress.advance(SIZE // 2)
        progress.done(model, tmp_path / model.file)
        progress.message("hello")
    text = stream.getvalue()
    assert "standin.pth" in text and "48.0" in text and "hello" in text


# ---------------------------------------------------------------------------------------------
# The CLI: `facefix download`, `--check`, `facefix models`


@pytest.fixture
def cli_registry(server):
    """A registry of stand-ins, served by `server`: two default models and a non-commercial
    one. The CLI gets it through its context object (`cli` below)."""
    rows = []
    for index, name in enumerate(["alpha", "beta", "nc"]):
        data = payload(10 + index)
        extra = {}
        if name == "nc":
            extra = {"default": False, "non_commercial": True, "licence": "NC-1.0 (non-commercial)"}
        model = stand_in(name, data, server.url("missing", f"{name}.pth"), **extra)
        server.add(model, data)
        rows.append((model, data))
    return rows


runner = CliRunner()


def cli(rows: list[tuple[ModelInfo, bytes]], args: list[str]):
    """Run the command line against a registry of `rows`."""
    context = AppContext(registry=Registry(tuple(model for model, _ in rows)))
    return runner.invoke(app, args, obj=context)


def test_cli_download_default_set_through_a_mirror(server, cli_registry, tmp_path):
    result = cli(
        cli_registry,
        [
            "download",
            "--weights-dir",
            str(tmp_path),
            "--mirror",
            f"{server.base}/ok",
            "--retries",
            "0",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "2 model files ready in" in result.stdout
    for model, data in cli_registry[:2]:
        assert (tmp_path / model.file).read_bytes() == data
        assert f"downloading {model.file}" in result.stderr
    assert not (tmp_path / "nc.pth").exists()
    assert "\x1b" not in result.output and "\r" not in result.output


def test_cli_download_named_non_commercial_model_prints_its_licence(server, cli_registry, tmp_path):
    result = cli(
        cli_registry,
        ["download", "nc", "--weights-dir", str(tmp_path), "--mirror", f"{server.base}/ok"],
    )
    assert result.exit_code == 0, result.output
    assert "non-commercial" in result.stderr and "commercial purposes" in result.stderr
    assert (tmp_path / "nc.pth").exists()

    result = cli(
        cli_registry,
        ["download", "--all", "--weights-dir", str(tmp_path), "--mirror", f"{server.base}/ok"],
    )
    assert result.exit_code == 0, result.output
    assert "skipped nc: non-commercial licence" in result.stderr


def test_cli_download_errors_and_exit_codes(server, cli_registry, tmp_path):
    failed = cli(
        cli_registry, ["download", "alpha", "--weights-dir", str(tmp_path), "--retries", "0"]
    )
    assert failed.exit_code == 1
    assert failed.stderr.startswith("error: could not download alpha.pth")
    assert "HTTP 404" in failed.stderr

    unknown = cli(cli_registry, ["download", "zeta", "--weights-dir", str(tmp_path)])
    assert unknown.exit_code == 2
    assert "error: unknown model zeta; known models: alpha, beta, nc" in unknown.stderr


def test_cli_check_good_missing_and_corrupt(cli_registry, tmp_path):
    (alpha, alpha_data), (beta, beta_data), _ = cli_registry
    (tmp_path / alpha.file).write_bytes(alpha_data)
    (tmp_path / beta.file).write_bytes(beta_data)
    args = ["download", "--check", "--weights-dir", str(tmp_path)]

    good = cli(cli_registry, args)
    assert good.exit_code == 0, good.output
    assert "verified  alpha" in good.stdout and "verified  beta" in good.stdout

    (tmp_path / beta.file).unlink()
    missing = cli(cli_registry, args)
    assert missing.exit_code == 1
    assert "missing   beta" in missing.stdout
    assert f"facefix download beta --weights-dir {tmp_path}" in missing.stderr

    (tmp_path / beta.file).write_bytes(beta_data[::-1])  # right size, wrong digest
    corrupt = cli(cli_registry, args)
    assert corrupt.exit_code == 1
    assert "corrupt   beta" in corrupt.stdout and "SHA-256" in corrupt.stdout
    assert "--force" in corrupt.stderr
    # --check never downloads, and --check with --force is a usage error.
    assert (tmp_path / beta.file).read_bytes() == beta_data[::-1]
    assert cli(cli_registry, [*args, "--force"]).exit_code == 2


def test_cli_models_table_and_json(cli_registry, tmp_path):
    (alpha, alpha_data), (beta, beta_data), _ = cli_registry
    (tmp_path / alpha.file).write_bytes(alpha_data)
    (tmp_path / beta.file).write_bytes(beta_data[::-1])

    table = cli(cli_registry, ["models", "--weights-dir", str(tmp_path)])
    assert table.exit_code == 0, table.output
    lines = table.stdout.splitlines()
    assert lines[1].split() == ["NAME", "FILE", "SIZE", "LICENCE", "STATE"]
    assert lines[2].split()[:3] == ["alpha", "alpha.pth", "48.0"]
    assert lines[2].endswith("present") and lines[3].endswith("present")
    assert lines[4].endswith("missing") and "(by name only)" in lines[4]

    verified = cli(cli_registry, ["models", "--weights-dir", str(tmp_path), "--verify", "--json"])
    assert verified.exit_code == 0, verified.output
    report = json.loads(verified.stdout)
    assert report["weights_dir"] == str(tmp_path)
    states = {row["name"]: row["state"] for row in report["models"]}
    assert states == {"alpha": "verified", "beta": "corrupt", "nc": "missing"}
    assert report["models"][0]["sha256"] == alpha.sha256
    assert report["models"][0]["size"] == alpha.size


def test_cli_download_gives_up_within_two_timeouts_per_source(other_server, refusing_url, tmp_path):
    """Every source dead: a stalled mirror and a refusing release host, four files."""
    rows = stand_ins(4, refusing_url, size=4000)
    for model, data in rows:
        other_server.add(model, data)
    started = time.monotonic()

    result = cli(
        rows,
        [
            "download",
            "--weights-dir",
            str(tmp_path),
            "--mirror",
            f"{other_server.base}/stall",
            "--timeout",
            str(DEAD_TIMEOUT),
            "--retries",
            "3",
        ],
    )

    assert result.exit_code == 1
    assert len(other_server.requests) == 1
    error = result.stderr.splitlines()[-1]
    for model, _ in rows:
        assert f"could not download {model.file}" in error
    # One attempt per source in the whole run; the other three files skip both.
    assert error.count("(not tried again in this run)") == 2
    assert error.count("not tried, ") == 6
    assert time.monotonic() - started < 2 * DEAD_TIMEOUT * 2 + 2
    assert leftovers(tmp_path) == []
