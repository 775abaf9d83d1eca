"""The `facefix` command: the typer app and the options several commands share. Each command
lives in its own module of this package and calls the library function of the same name.

What commands share beyond options (the model registry) comes from one `AppContext`, typer's
context object: `CliRunner().invoke(app, args, obj=AppContext(registry=...))` runs any command
against another registry, with no module global patched."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from facefix import __version__
from facefix.weights.registry import REGISTRY, Registry

app = typer.Typer(
    name="facefix",
    help="Upscale images and restore faces in folders of Stable Diffusion PNGs, keeping their metadata.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain click messages: usage errors end in one `Error: ...` line that logs and greps well.
    rich_markup_mode=None,
)


@dataclass(frozen=True)
class AppContext:
    """What every command reads besides its options; the default is the released registry."""

    registry: Registry = REGISTRY


def app_context(ctx: typer.Context) -> AppContext:
    """The invocation's AppContext: the one passed as `obj`, else the default."""
    return ctx.ensure_object(AppContext)


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
