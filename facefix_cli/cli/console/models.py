"""`facefix models`: the table of model files and their states."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from facefix_cli.cli.console.base import human_size

if TYPE_CHECKING:
    from facefix_cli.weights.store import ModelState


def print_model_table(states: Sequence[ModelState], weights_dir: Path) -> None:
    """`facefix models`: a rich table on a terminal, aligned plain columns otherwise."""
    header = ("NAME", "FILE", "SIZE", "LICENCE", "STATE")
    rows = []
    for st in states:
        note = " (by name only)" if st.model.non_commercial else ""
        state = st.state + (f": {st.detail}" if st.detail else "")
        size = human_size(st.model.size)
        rows.append((st.model.name, st.model.file, size, st.model.licence + note, state))
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"models in {weights_dir}")
        for title in header:
            table.add_column(title, justify="right" if title == "SIZE" else "left")
        for row in rows:
            table.add_row(*row)
        Console().print(table)
        return
    typer.echo(f"weights folder: {weights_dir}")
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header) - 1)]
    for row in (header, *rows):
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        typer.echo("  ".join([*cells, row[-1]]))
