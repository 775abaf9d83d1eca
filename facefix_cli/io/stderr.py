"""What C decoders print on file descriptor 2, caught per decode, and a log that never goes there.

libpng and OpenCV print their reasons (`libpng error: IDAT: incorrect data check`) on fd 2,
with no per-call hook; `decoder_messages()` points fd 2 at a temporary file for the block so
the reason becomes the file's, not an unattributed log line. That redirect is process-wide:
a program that logs from other threads while decodes run calls `keep_log_apart()` once at
start (the CLI does), so its `sys.stderr` writes through a duplicate of the real descriptor and
no log line lands in a decoder's sink.

Light on purpose (no numpy, no cv2): the CLI calls `keep_log_apart` before it knows whether
there is anything to decode."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_STDERR_LOCK = threading.Lock()  # one redirect at a time, and none while sys.stderr moves


def keep_log_apart() -> None:
    """Rebind `sys.stderr` to a duplicate of file descriptor 2, taken now, so what Python code
    writes there (log lines from any thread) never goes into the temporary file that fd 2 points
    at during a decode. Does nothing when `sys.stderr` is not fd 2 (a test runner's capture)
    or was moved already."""
    stream = sys.stderr
    try:
        if stream is None or stream.fileno() != 2:
            return
    except (AttributeError, OSError, ValueError):  # io.StringIO, a closed stream
        return
    with _STDERR_LOCK, contextlib.suppress(OSError):  # not while a decode holds fd 2
        stream.flush()
        sys.stderr = os.fdopen(
            os.dup(2), "w", encoding=stream.encoding, errors=stream.errors, buffering=1
        )


@contextmanager
def decoder_messages() -> Iterator[list[str]]:
    """Catch what the C decoders print on file descriptor 2 during the block (libpng's
    `libpng error: IDAT: incorrect data check`, OpenCV's warnings), so the message becomes the
    file's reason instead of an unattributed line in the log. The list fills when the block
    exits."""
    messages: list[str] = []
    with _STDERR_LOCK, tempfile.TemporaryFile() as sink:
        with contextlib.suppress(ValueError, OSError):
            sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        try:
            yield messages
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            text = sink.read(64 * 1024).decode("utf-8", "replace")
            messages.extend(line.strip() for line in text.splitlines() if line.strip())
