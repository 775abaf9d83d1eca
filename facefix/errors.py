"""Errors a user can cause, each carrying the one-line message and exit code the CLI reports."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1  # some files failed; the others were processed
EXIT_SETUP = 2  # usage or setup error before any work
EXIT_INTERRUPTED = 130


class FacefixError(Exception):
    """An error with a message meant for the user (one line, no traceback)."""

    exit_code = EXIT_FAILED


class SetupError(FacefixError):
    """Bad options, missing weights, unusable device: found before any image is touched."""

    exit_code = EXIT_SETUP


class MissingWeightsError(SetupError):
    def __init__(self, files: list[str], command: str, reason: str = "") -> None:
        self.files = files
        self.command = command
        why = f" ({reason})" if reason else ""
        super().__init__(
            f"missing model weights: {', '.join(files)}{why}; fetch them with: {command}"
        )


class ImageError(FacefixError):
    """One input file cannot be processed (corrupt, unreadable, vanished); the batch goes on."""


class ReportError(FacefixError):
    """The HTML report cannot be written (a missing or read-only folder): checked before a run
    starts, so it is a setup error."""

    exit_code = EXIT_SETUP
