"""Errors a user can cause, each carrying the one-line message and exit code the CLI reports.

Exit codes (the README's table lists the same):
0 every file fixed or skipped (also a run stopped cleanly by --max-time);
1 at least one file failed, all others were processed;
2 usage or setup error before any work;
3 at least one file crashed facefix (a bug: the file's line names the exception);
4 an environment fault (disk full, read-only or vanished output folder, GPU gone) stopped the run;
130 interrupted by Ctrl-C (SIGINT); 143 terminated by SIGTERM or SIGHUP.
`watch` is a service: a signal is its normal end, so it exits 0 then (`pipeline.watch`).
"""

from __future__ import annotations

import signal
from collections.abc import Sequence

EXIT_OK = 0
EXIT_FAILED = 1  # some files failed; the others were processed
EXIT_SETUP = 2  # usage or setup error before any work
EXIT_CRASHED = 3  # an unexpected exception on some file: a bug to report; the batch went on
EXIT_ENVIRONMENT = 4  # a fault that dooms every later file stopped the run early
EXIT_INTERRUPTED = 130  # 128 + SIGINT
EXIT_TERMINATED = 143  # 128 + SIGTERM; SIGHUP exits the same way (cron, systemd, `timeout`)

# Said of an unexpected exception (a crashed file, a failed report), so it reaches us.
BUG_REPORT_HINT = "a bug in facefix: please report it (-v shows the traceback)"


def first_line(exc: BaseException, empty: str = "(no message)") -> str:
    """The first line of an exception's message: what a one-line error shows of it."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else empty


class FacefixError(Exception):
    """An error with a message meant for the user (one line, no traceback)."""

    exit_code = EXIT_FAILED


class SetupError(FacefixError):
    """Bad options, missing weights, unusable device: found before any image is touched."""

    exit_code = EXIT_SETUP


class MissingWeightsError(SetupError):
    """Model files a run needs are not there: one line saying where and why, one short line
    per file, and one next step that works where the user is (`next_step`; by default the
    `facefix download` command, `command`, that fetches exactly them)."""

    def __init__(
        self,
        files: list[str],
        command: str,
        reason: str = "",
        *,
        where: str = "",
        next_step: str = "",
    ) -> None:
        self.files = files
        self.command = command
        why = f" ({reason})" if reason else ""
        folder = f" in {where}" if where else ""
        lines = [f"missing model weights{folder}{why}:", *(f"  {name}" for name in files)]
        lines.append(f"next: {next_step or f'fetch them with: {command}'}")
        super().__init__("\n".join(lines))


class DownloadError(FacefixError):
    """Every source for one or more model files failed (network, server, wrong bytes). Exit 1.
    `files` names them."""

    def __init__(self, message: str, files: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.files = list(files)


class ImageError(FacefixError):
    """One input file cannot be processed (corrupt, unreadable, vanished); the batch goes on."""


class AnimatedImage(ImageError):
    """An animated PNG or WebP: facefix fixes still images, so the file is skipped, not failed
    (a folder of animations must not fail every cron run)."""


# Under the one root as per-file errors; still ValueErrors, as parsers of bytes raise.
class PngFormatError(ImageError, ValueError):
    """The bytes are not a well-formed PNG; the message says what is wrong."""


class UnsupportedImageError(ImageError, ValueError):
    """The bytes are not a PNG, JPEG or WebP file."""


class InflateLimitError(ImageError, ValueError):
    """A file's compressed text (zTXt, compressed iTXt, an ICC profile) would inflate past the
    limit; nothing past it was inflated. Internal: every reader catches it and leaves that text
    unread (saying so where it lists problems); one that escaped would fail only its file."""


class OutputWriteError(ImageError):
    """The output could not be written; `errno` tells a per-file problem (name too long) from
    an environment fault (disk full, read-only file system)."""

    def __init__(self, message: str, errno: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno


class EnvironmentFault(FacefixError):
    """A fault that dooms every later file (disk full, read-only or vanished output folder, a
    GPU that is gone): the run stops at once, reporting what it did."""

    exit_code = EXIT_ENVIRONMENT


class Interrupted(KeyboardInterrupt):
    """SIGTERM or SIGHUP turned into the same unwinding as Ctrl-C; `signum` picks the exit."""

    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return EXIT_INTERRUPTED if self.signum == signal.SIGINT else EXIT_TERMINATED


class ReportError(FacefixError):
    """The HTML report cannot be written (a missing or read-only folder): checked before a run
    starts, so it is a setup error."""

    exit_code = EXIT_SETUP
