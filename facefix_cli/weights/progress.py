"""`DownloadProgress`: what the downloader reports while it works, so the library needs no
terminal (the CLI draws the bars). Its own module so that the downloader and the transfers
both use it without importing each other."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from facefix_cli.weights.registry import ModelInfo


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
