"""No log line is lost while worker threads decode: decoding redirects file descriptor 2 to
catch decoder messages (io.stderr), and the log writes through a duplicate of it
(`keep_log_apart`). Real processes, so that fd 2 is a real descriptor, not a test capture."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np

LINES = 400

# Workers decode a big PNG in a loop (each decode redirects fd 2) while the main thread logs.
SCRIPT = textwrap.dedent(
    """
    import sys, threading
    from pathlib import Path
    from facefix_cli.io.read import decode_pixels
    from facefix_cli.io.stderr import keep_log_apart
    if sys.argv[2] == "apart":
        keep_log_apart()
    from facefix_cli.cli.console import PlainFixEvents
    data = Path(sys.argv[1]).read_bytes()
    done = threading.Event()
    def decode():
        while not done.is_set():
            decode_pixels(data)
    workers = [threading.Thread(target=decode) for _ in range(3)]
    for worker in workers:
        worker.start()
    events = PlainFixEvents()
    for index in range(int(sys.argv[3])):
        events.waiting(f"line {index}")
    done.set()
    for worker in workers:
        worker.join()
    """
)


def big_png(path: Path) -> Path:
    pixels = np.random.default_rng(0).integers(0, 256, (2048, 2048, 3), dtype=np.uint8)
    cv2.imwrite(str(path), pixels)
    return path


def test_every_log_line_arrives_while_workers_decode(tmp_path):
    image = big_png(tmp_path / "big.png")
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(image), "apart", str(LINES)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if " line " in line]
    assert [line.rsplit(" ", 1)[-1] for line in lines] == [str(i) for i in range(LINES)]


def test_keep_log_apart_leaves_a_captured_stderr_alone(capsys):
    from facefix_cli.io.stderr import keep_log_apart

    before = sys.stderr
    keep_log_apart()  # pytest's capture has no fd 2 of its own
    assert sys.stderr is before
