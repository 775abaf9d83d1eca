"""A real HTTP server on 127.0.0.1 serving stand-in weight files, for the download tests.

The tests register the stand-ins' sizes and digests in `ModelInfo` rows in place of the real
ones, so nothing touches the network. Each URL path is `/<behaviour>/<file>`, the behaviour
chosen per request: normal with Range support, no Range support, cut off once, stalled, 404,
500, wrong bytes, oversized, HTML..."""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import random
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from facefix_cli.weights import registry
from facefix_cli.weights.registry import ModelInfo

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
    """Files in the weights folder other than lock files and digest caches (a verified file's
    digest is cached beside it on install: tests/unit/test_weights_digests.py)."""
    if not folder.exists():
        return []
    return sorted(
        p.name for p in folder.iterdir() if not p.name.endswith((".lock", ".sha256.json"))
    )


def with_url(model: ModelInfo, *urls: str) -> ModelInfo:
    return dataclasses.replace(model, urls=urls)


DEAD_TIMEOUT = 0.3


def stand_ins(count: int, url_base: str, size: int = SIZE) -> list[tuple[ModelInfo, bytes]]:
    """`count` stand-ins whose release URL is `url_base/<file>`."""
    rows = []
    for index in range(count):
        data = payload(20 + index, size)
        rows.append((stand_in(f"file{index}", data, f"{url_base}/file{index}.pth"), data))
    return rows


# Fixtures (tests/conftest.py loads this module as a pytest plugin).
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


@pytest.fixture
def one(server):
    """One stand-in model served by `server`; its URL is set per test."""
    data = payload(1)
    model = stand_in("standin", data)
    server.add(model, data)
    return model, data
