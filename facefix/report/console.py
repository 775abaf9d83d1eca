"""One-line errors, sizes and safe text: what every command's output is built from."""

from __future__ import annotations

import sys
from typing import NoReturn

import typer

from facefix.errors import FacefixError


def print_error(message: str) -> None:
    typer.echo(f"error: {message}", err=True)


def exit_with_error(exc: FacefixError) -> NoReturn:
    """Report `exc` as one `error: ...` line and exit with its code."""
    print_error(str(exc))
    raise typer.Exit(exc.exit_code)


def human_size(nbytes: int) -> str:
    """Decimal units, as download tools and rich's columns show them."""
    size = float(nbytes)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


def printable(text: str) -> str:
    """No control characters in log lines (server-provided reasons can hold anything)."""
    return "".join(ch if ch.isprintable() else "?" for ch in text)


def is_terminal() -> bool:
    return sys.stderr.isatty()
