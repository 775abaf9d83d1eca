"""`facefix info`: the generation settings embedded in images, as tables or JSON."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from facefix_cli.cli.app import app
from facefix_cli.errors import EXIT_FAILED, EXIT_OK

_INFO_CELL_CHARS = 2000  # a table cell stops here; --json shows everything


@app.command("info")
def show_info(
    files: list[Path] = typer.Argument(
        ...,
        metavar="PATH...",
        help="Images: PNG, JPEG, WebP or AVIF (originals or facefix outputs); a folder: the "
        "images below it.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the records as a JSON list."),
    raw: bool = typer.Option(
        False, "--raw", help="Also list every chunk: type, keyword, length and a preview."
    ),
) -> None:
    """Show the generation settings embedded in images and the post-processing they had."""
    from rich.console import Console

    from facefix_cli import metadata
    from facefix_cli.cli import console
    from facefix_cli.cli.console.info import info_json

    results = metadata.info(files)
    if as_json:
        for result in results:
            if result.error is not None:
                console.print_error(f"{result.path}: {result.error}")
        rows = [info_json(result, include_chunks=raw) for result in results]
        typer.echo(json.dumps(rows, indent=2, ensure_ascii=False))
    else:
        screen = Console()
        for result in results:
            if result.error is not None:
                console.print_error(f"{result.path}: {result.error}")
                continue
            _print_info(screen, result, raw)
    raise typer.Exit(EXIT_FAILED if any(r.error is not None for r in results) else EXIT_OK)


def _print_info(console, result, raw: bool) -> None:
    from rich.table import Table
    from rich.text import Text

    from facefix_cli.cli.console.info import chunk_rows, record_rows

    rows = record_rows(result.record, result.pixels)
    if not result.record.has_generation_metadata and not result.record.problems:
        console.print(Text(f"{result.path}: no generation metadata"), soft_wrap=True)
    if rows:
        table = Table(title=Text(str(result.path)), show_header=False, title_justify="left")
        table.add_column("field", style="bold", no_wrap=True)
        table.add_column("value", overflow="fold")
        for label, value in rows:
            if len(value) > _INFO_CELL_CHARS:
                more = f"({len(value) - _INFO_CELL_CHARS} more characters; --json shows all)"
                value = f"{value[:_INFO_CELL_CHARS].rstrip()}… {more}"
            # Text, not markup: prompts hold [brackets] that rich would read as style tags.
            table.add_row(label, Text(value))
        console.print(table)
    if raw:
        title = f"{result.path}: chunks"
        if result.format != "PNG":
            title += f" (the {result.format}'s metadata as the PNG chunks `fix` writes)"
        chunks = Table(title=Text(title), title_justify="left")
        for title in ("type", "keyword", "length", "preview"):
            chunks.add_column(title, justify="right" if title == "length" else "left")
        for row in chunk_rows(result.chunks):
            kind = f"{row.type} ×{row.count}" if row.count > 1 else row.type
            chunks.add_row(kind, Text(row.keyword), str(row.length), Text(row.preview))
        console.print(chunks)
