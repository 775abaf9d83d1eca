"""One-line errors, sizes and safe text: what every command's output is built from."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import NoReturn

import typer

from facefix_cli.errors import FacefixError


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


@contextlib.contextmanager
def waiting(what: str) -> Iterator[None]:
    """A spinner saying `what` on a terminal while the block runs (walking a big tree);
    nothing elsewhere, where the result line follows soon enough."""
    if not is_terminal():
        yield
        return
    from rich.console import Console

    with Console(stderr=True).status(printable(what)):
        yield
