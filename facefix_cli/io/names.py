"""The names facefix gives files: outputs, temporary files and claims, and safe display.

Output rule (stable across runs, documented in the README): a PNG `a.png` (any case) becomes
`a.fixed.png`; any other input keeps its extension, `a.jpg` -> `a.jpg.fixed.png`, so `a.png` and
`a.jpg` in one folder never share an output. In another output format only the suffix changes
(`io.outputs`): `a.png` -> `a.fixed.webp`, `a.jpg` -> `a.jpg.fixed.webp` (`--format same`:
`a.jpg.fixed.jpg`). Temporary and claim files are hidden names in the output's folder that
always fit in 255 bytes, however long the output's name is.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

OUTPUT_SUFFIX = ".fixed.png"  # the default format's (`io.outputs` has every format's)
NAME_MAX = 255  # bytes in one path component on Linux, macOS and NFS
# `.STEM.PID.TOKEN.tmp` (TOKEN: random, so nobody can plant a link at the name first); the
# `.STEM.PID.tmp` of earlier versions is still recognised, so the sweep removes what they left.
TEMPORARY_RE = re.compile(r"^\.(?P<stem>.+?)\.(?P<pid>\d+)(?:\.(?P<token>[0-9a-f]{16}))?\.tmp$")
HIDDEN_ROOM = 64  # bytes a hidden name adds to the output's: dots, pid, token, suffix


def output_name(source_name: str, suffix: str = OUTPUT_SUFFIX) -> str:
    """`a.png` -> `a.fixed.png`; `a.jpg` -> `a.jpg.fixed.png` (never the same as a PNG's);
    with another format's `suffix` (`OutputFormat.suffix`): `a.png` -> `a.fixed.webp`,
    `a.jpg` -> `a.jpg.fixed.webp`."""
    stem, dot, ext = source_name.rpartition(".")
    if dot and ext.lower() == "png":
        return stem + suffix
    return source_name + suffix


def _hidden_stem(output: Path, room: int) -> str:
    """The output's name, or a digest of it when the name leaves less than `room` bytes free."""
    name = output.name
    if len(os.fsencode(name)) + room <= NAME_MAX:
        return name
    at = name.lower().rfind(".fixed.")
    suffix = name[at:] if at >= 0 else OUTPUT_SUFFIX  # the output's own: formats never meet
    return hashlib.sha256(os.fsencode(name)).hexdigest()[:32] + suffix


def hidden_stem(output: Path) -> str:
    """What hidden names beside `output` (temporary files, claims) start with after the dot."""
    return _hidden_stem(output, HIDDEN_ROOM)


def temporary_path(output: Path, pid: int | None = None) -> Path:
    """A new `.NAME.PID.TOKEN.tmp` beside the output, TOKEN random (a digest stands in for a
    name too long for that): a name nobody can guess, so nobody can plant a link there."""
    pid = os.getpid() if pid is None else pid
    return output.with_name(f".{hidden_stem(output)}.{pid}.{os.urandom(8).hex()}.tmp")


def claim_path(output: Path) -> Path:
    """`.NAME.claim` beside the output: the file a run holds while it works on that output."""
    return output.with_name(f".{hidden_stem(output)}.claim")


def display_path(path: Path | str) -> str:
    """The path as text that is always valid UTF-8 and printable: bytes that are not UTF-8 come
    out as `\\xff`, control characters as `\\x1b`, so log lines and JSON never break."""
    text = os.fsencode(path).decode("utf-8", "backslashreplace")
    return "".join(ch if ch.isprintable() else _escape(ch) for ch in text)


def _escape(ch: str) -> str:
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
