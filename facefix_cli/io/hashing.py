"""The one file hasher: SHA-256 of a file's bytes, read in blocks (weights are hundreds of MB)."""

from __future__ import annotations

import hashlib
from pathlib import Path

BLOCK_SIZE = 1 << 20


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(BLOCK_SIZE), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
