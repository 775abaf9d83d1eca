"""cli.console.download: download progress as log lines and as rich bars."""

from __future__ import annotations

from facefix_cli.cli.console import PlainDownloadProgress, RichDownloadProgress
from tests.weights_server import (
    SIZE,
    payload,
    stand_in,
)


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
