"""weights.sources: where a model is fetched from, and which sources are dead for the run."""

from __future__ import annotations

from pathlib import Path

from facefix_cli.weights import sources
from tests.weights_server import (
    stand_in,
)


def test_model_sources_order_and_forms(tmp_path):
    model = stand_in("a b", b"x", "https://example.org/release/a b.pth")
    found = sources.model_sources(model, ["https://mirror.example/w/", str(tmp_path)])
    assert found == [
        "https://mirror.example/w/a%20b.pth",
        tmp_path / "a b.pth",
        "https://example.org/release/a b.pth",
    ]


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
