"""`facefix report`: an HTML before/after report of existing outputs (`.fixed.png`, `.fixed.webp`,
`.fixed.jpg`, `.fixed.avif`); and the helper `fix --report` uses to write the report of its run."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from facefix_cli.cli.app import app
from facefix_cli.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, FacefixError, ReportError

if TYPE_CHECKING:
    from facefix_cli.report.build import ReportInputs, ReportResult, RunDetails


def write_report_with_progress(
    html_path: Path, inputs: ReportInputs, run: RunDetails | None, *, show_progress: bool
) -> ReportResult:
    """`write_report`, with a transient progress bar on a terminal."""
    from facefix_cli.report.build import write_report

    if not show_progress or not inputs.outputs:
        return write_report(html_path, inputs, run)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(
        TextColumn("[bold]report"),
        BarColumn(),
        MofNCompleteColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task("report", total=len(inputs.outputs))
        return write_report(
            html_path, inputs, run, progress=lambda done, _total: bar.update(task, completed=done)
        )


def report_line(result: ReportResult) -> str:
    """The one line that says where the report is and what it holds; with the outputs shown
    without their originals, why (the page says so on each card)."""
    images = f"{result.images} image{'s' if result.images != 1 else ''}"
    failed = f", {result.failed} failed" if result.failed else ""
    missing = ""
    if result.without_original:
        missing = (
            f"; {result.without_original} without the original (not beside the output nor "
            "where its record says; give --originals DIR)"
        )
    return f"report: {result.path} ({images}{failed}; thumbnails in {result.thumbnails}){missing}"


@app.command("report")
def report_command(
    paths: list[Path] = typer.Argument(
        ...,
        metavar="PATH...",
        help="Outputs (.fixed.png/.webp/.jpg/.avif), or folders to search for them.",
    ),
    output: Path = typer.Option(
        ..., "--output", "-o", metavar="PATH.html", help="The report to write."
    ),
    originals: list[Path] = typer.Option(
        [],
        "--originals",
        metavar="DIR",
        help="Where the originals are, when the outputs were written to --output-dir "
        "(searched by name and SHA-256; repeatable). Default: beside each output.",
    ),
) -> None:
    """Write an HTML before/after report of existing outputs (.fixed.png/.webp/.jpg/.avif)."""
    from facefix_cli.cli import console
    from facefix_cli.report.build import check_destination, index_originals, inputs_from_paths

    try:
        check_destination(output)
        inputs = inputs_from_paths(paths)
        if originals:
            with console.waiting(f"finding originals under {', '.join(map(str, originals))}"):
                inputs.originals = index_originals(originals)
        if not inputs.outputs:
            found = "; ".join(f"{path}: {reason}" for path, reason in inputs.failed)
            raise ReportError(
                found or "no facefix outputs (.fixed.png/.webp/.jpg/.avif) found in the paths given"
            )
        result = write_report_with_progress(
            output, inputs, None, show_progress=console.is_terminal()
        )
    except FacefixError as exc:
        console.exit_with_error(exc)
    except KeyboardInterrupt:
        console.print_error("interrupted; no report was written")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    for failure in result.failures:
        console.print_error(f"{failure.path}: {failure.reason}")
    typer.echo(report_line(result))
    raise typer.Exit(EXIT_FAILED if result.failed else EXIT_OK)
