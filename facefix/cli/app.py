"""The `facefix` command: the typer app and the options several commands share. Each command
lives in its own module of this package and calls the library function of the same name."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from facefix import __version__

app = typer.Typer(
    name="facefix",
    help="Upscale images and restore faces in folders of Stable Diffusion PNGs, keeping their metadata.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain click messages: usage errors end in one `Error: ...` line that logs and greps well.
    rich_markup_mode=None,
)

# Options every command that touches the weights folder shares.
WeightsDirOption = Annotated[
    Path | None,
    typer.Option(
        "--weights-dir",
        help="Model folder (default: $FACEFIX_WEIGHTS_DIR, facefix.toml, user cache).",
    ),
]
ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="A facefix.toml to read weights_dir from.")
]


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"facefix {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(
        False,
        "--version",
        callback=_version_callback,
        is_eager=True,
        help="Show the version and exit.",
    ),
) -> None:
    """facefix: batch face restoration and upscaling for generated images."""
