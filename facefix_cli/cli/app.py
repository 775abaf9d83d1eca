"""The `facefix` command: the typer app and the context every command shares (the options are
declared once in `cli.options`). Each command lives in its own module of this package and
calls the library function of the same name.

What commands share beyond options (the model registry) comes from one `AppContext`, typer's
context object: `CliRunner().invoke(app, args, obj=AppContext(registry=...))` runs any command
against another registry, with no module global patched."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Any, NoReturn

import typer

from facefix_cli import __version__
from facefix_cli.weights.registry import REGISTRY, Registry

app = typer.Typer(
    name="facefix",
    help="Upscale images and restore faces in folders of Stable Diffusion PNGs, keeping their metadata.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain click messages; `main` turns a usage error into one `error: ...` line.
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@dataclass(frozen=True)
class AppContext:
    """What every command reads besides its options; the default is the released registry."""

    registry: Registry = REGISTRY


def app_context(ctx: typer.Context) -> AppContext:
    """The invocation's AppContext: the one passed as `obj`, else the default."""
    return ctx.ensure_object(AppContext)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"facefix {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(
        False,
        "--version",
        callback=_version_callback,
        is_eager=True,
        help="Show the version and exit.",
    ),
) -> None:
    """facefix: batch face restoration and upscaling for generated images."""


def main(argv: list[str] | None = None) -> NoReturn:
    """The `facefix` script: the app, with a command line the option parser refuses reported as
    one `error: ...` line naming the help to read (as every other facefix error), and, when it
    asked for `--json`, a JSON record on stdout, so a cron wrapper that parses stdout gets one
    record on every exit (2 here)."""
    args = sys.argv[1:] if argv is None else list(argv)
    command = typer.main.get_command(app)
    try:
        code = command.main(args, prog_name="facefix", standalone_mode=False)
    except typer.Abort:
        print("Aborted!", file=sys.stderr)
        sys.exit(1)
    except Exception as exc:
        # Click's usage errors, by shape: newer typer vendors click (typer._click), older typer
        # uses the click package, and the two exception classes are unrelated.
        show, exit_code = getattr(exc, "show", None), getattr(exc, "exit_code", None)
        if not callable(show) or not isinstance(exit_code, int):
            raise
        print(f"error: {usage_error_line(args, exc)}", file=sys.stderr, flush=True)
        if "--json" in args:
            print(json.dumps(usage_error_record(args, exc, exit_code), indent=2), flush=True)
        sys.exit(exit_code)
    sys.exit(code if isinstance(code, int) else 0)


def usage_error_line(args: list[str], exc: Exception) -> str:
    """Click's message for a refused command line on one line, and where the options are."""
    format_message = getattr(exc, "format_message", None)
    message = format_message() if callable(format_message) else str(exc)
    context = getattr(exc, "ctx", None)
    command = getattr(context, "command_path", None) or "facefix"
    return f"{' '.join(message.split())} (see {command} --help)"


def usage_error_record(args: list[str], exc: Exception, exit_code: int) -> dict[str, Any]:
    """What `--json` prints for a refused command line: the error and exit code, with `fix`'s
    summary fields (all zero) so its readers find the keys they always find."""
    record: dict[str, Any] = {}
    command = next((arg for arg in args if not arg.startswith("-")), None)
    if command == "fix":  # not a path or value that happens to be called "fix"
        from facefix_cli.pipeline.results import FixSummary

        record = FixSummary().to_dict() | {"report": None}
    format_message = getattr(exc, "format_message", None)
    message = format_message() if callable(format_message) else str(exc)
    return record | {"exit_code": exit_code, "error": message}
