"""The command line: each command parses options, calls the library function of the same name,
and reports. No image or model logic lives here."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from . import __version__
from .errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, FacefixError

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


class Upscale(StrEnum):
    none = "1"
    x2 = "2"
    x4 = "4"


class GfpganVersion(StrEnum):
    v14 = "1.4"
    v13 = "1.3"


class Detector(StrEnum):
    resnet50 = "retinaface_resnet50"
    mobile = "retinaface_mobile0.25"


@app.command()
def fix(
    paths: list[Path] = typer.Argument(..., help="PNG files or folders (walked recursively)."),
    upscale: Upscale = typer.Option(
        Upscale.none, "--upscale", "-U", help="Upscale factor: 1 (none), 2 or 4."
    ),
    upscale_strength: float = typer.Option(
        0.75,
        "--upscale-strength",
        min=0.0,
        max=1.0,
        help="Blend of Real-ESRGAN with a plain bicubic resize.",
    ),
    gfpgan: float | None = typer.Option(
        None,
        "--gfpgan",
        "-G",
        metavar="STRENGTH",
        help="Restore faces with GFPGAN at this strength (0-1].",
    ),
    codeformer: float | None = typer.Option(
        None,
        "--codeformer",
        metavar="STRENGTH",
        help="Restore faces with CodeFormer at this strength (0-1].",
    ),
    fidelity: float = typer.Option(
        0.5,
        "--fidelity",
        "-cf",
        min=0.0,
        max=1.0,
        help="CodeFormer fidelity weight: 0 restores most, 1 keeps most.",
    ),
    gfpgan_model: GfpganVersion = typer.Option(
        GfpganVersion.v14, "--gfpgan-model", help="GFPGAN version."
    ),
    upscaler: Path | None = typer.Option(
        None,
        "--upscaler",
        help="Any super-resolution checkpoint spandrel loads, instead of Real-ESRGAN.",
    ),
    weights_dir: WeightsDirOption = None,
    config: ConfigOption = None,
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N or mps."),
    tile: int | None = typer.Option(
        None,
        "--tile",
        help="Upscale in tiles of N pixels (0 = whole image; default depends on the device).",
    ),
    half: bool = typer.Option(
        False, "--half", help="fp16 upscaling on CUDA GPUs: faster, slightly different from fp32."
    ),
    only_center_face: bool = typer.Option(
        False, "--only-center-face", help="Restore only the most central face."
    ),
    detector: Detector = typer.Option(Detector.resnet50, "--detector", help="RetinaFace backbone."),
    output_dir: Path | None = typer.Option(
        None,
        "--output-dir",
        help="Write outputs here, mirroring the input layout, instead of beside the inputs.",
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Redo files whose .fixed.png already exists."
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="List what would be done; load no model."
    ),
    recursive: bool = typer.Option(
        True, "--recursive/--no-recursive", help="Walk folders recursively."
    ),
    ext: str = typer.Option("png", "--ext", help="Input types, comma-separated: png, jpg, webp."),
    offline: bool = typer.Option(
        False,
        "--offline",
        envvar="FACEFIX_OFFLINE",
        help="Never download; fail if weights are missing.",
    ),
    mirror: list[str] = typer.Option(
        [], "--mirror", help="Download missing weights from this URL or folder."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON summary on stdout."),
    quiet: bool = typer.Option(
        False, "--quiet", "-q", help="Only report failures and the summary."
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log each file as it starts."),
) -> None:
    """Upscale images and restore their faces, writing NAME.fixed.png beside each NAME.png."""
    from . import report
    from .pipeline import FixOptions
    from .pipeline import fix as run_fix
    from .settings import resolve_weights_dir

    if gfpgan is not None and codeformer is not None:
        report.print_error("--gfpgan and --codeformer are mutually exclusive; choose one")
        raise typer.Exit(2)
    restorer = "gfpgan" if gfpgan is not None else "codeformer" if codeformer is not None else None
    try:
        options = FixOptions(
            weights_dir=resolve_weights_dir(weights_dir, config),
            upscale=int(upscale.value),
            upscale_strength=upscale_strength,
            restorer=restorer,
            restore_strength=gfpgan if gfpgan is not None else (codeformer or 0.0),
            fidelity=fidelity,
            gfpgan_version=gfpgan_model.value,
            upscaler_path=upscaler,
            device=device,
            tile=tile,
            half=half,
            only_center_face=only_center_face,
            detector=detector.value,
            output_dir=output_dir,
            overwrite=overwrite,
            dry_run=dry_run,
            recursive=recursive,
            extensions=tuple(e.strip() for e in ext.split(",") if e.strip()),
            offline=offline,
            mirrors=tuple(mirror),
        )
        with report.download_progress() as download_progress:
            if report.is_terminal() and not as_json:
                with report.RichFixEvents(verbose=verbose, quiet=quiet) as events:
                    summary = run_fix(
                        paths, options, events=events, download_progress=download_progress
                    )
            else:
                events = report.PlainFixEvents(verbose=verbose, quiet=quiet)
                summary = run_fix(
                    paths, options, events=events, download_progress=download_progress
                )
    except FacefixError as exc:
        report.exit_with_error(exc)
    except KeyboardInterrupt:
        report.print_error("interrupted; finished outputs are kept, no original was changed")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    if as_json:
        print(json.dumps(summary.to_dict(), indent=2))
    elif report.is_terminal():
        report.print_summary_table(summary)
    else:
        print(report.summary_line(summary), file=sys.stderr)
    raise typer.Exit(EXIT_FAILED if summary.count("failed") else EXIT_OK)


# --- model weights: `facefix download` and `facefix models` ----------------------------------
# The function names are not `download`/`models` so that they do not shadow the modules of
# those names for code in this file.


@app.command("download")
def download_weights(
    names: list[str] | None = typer.Argument(
        None,
        metavar="NAME",
        help="Models to fetch (see `facefix models`). "
        "Default: what `fix --gfpgan S --upscale 2|4` needs.",
    ),
    all_models: bool = typer.Option(
        False, "--all", help="Every model except non-commercial ones (name CodeFormer to get it)."
    ),
    weights_dir: WeightsDirOption = None,
    config: ConfigOption = None,
    mirror: list[str] = typer.Option(
        [],
        "--mirror",
        metavar="URL-OR-DIR",
        help="HTTP base URL or folder holding the same file names, tried before the release URLs; "
        "repeatable (default: $FACEFIX_MIRROR).",
    ),
    force: bool = typer.Option(False, "--force", help="Fetch again even when the file is present."),
    check_only: bool = typer.Option(
        False,
        "--check",
        help="Verify size and SHA-256 of the files; download nothing; exit 1 if any is bad.",
    ),
    timeout: float = typer.Option(
        30.0, "--timeout", min=0.1, help="Seconds without data before a connection is stalled."
    ),
    retries: int = typer.Option(
        3, "--retries", min=0, help="Retries per source before trying the next."
    ),
) -> None:
    """Fetch model weights, verified by size and SHA-256, into the weights folder."""
    from . import download as weights
    from . import report
    from .errors import SetupError
    from .settings import resolve_weights_dir

    try:
        if check_only and force:
            raise SetupError("--check and --force do not go together")
        target = resolve_weights_dir(weights_dir, config)
        models = weights.resolve_names(names or [], all_models=all_models)
        if check_only:
            states = weights.check(models, target)
            for st in states:
                detail = f"  ({st.detail})" if st.detail else ""
                typer.echo(f"{st.state:<9} {st.model.name:<22} {st.path}{detail}")
            bad = [st for st in states if st.state != "verified"]
            if bad:
                corrupt = any(st.state == "corrupt" for st in bad)
                command = weights.download_command([st.model for st in bad], target, force=corrupt)
                report.print_error(
                    f"{len(bad)} of {len(states)} model files missing or corrupt; "
                    f"fetch them with: {command}"
                )
                raise typer.Exit(EXIT_FAILED)
            typer.echo(f"all {len(states)} model files verified in {target}")
            return
        if all_models:
            for model in _registry_models():
                if model.non_commercial:
                    note = f"skipped {model.name}: non-commercial licence, fetch it by name"
                    typer.echo(note, err=True)
        with report.download_progress() as progress:
            paths = weights.download(
                models,
                target,
                mirrors=mirror or weights.mirrors_from_env(),
                force=force,
                progress=progress,
                timeout=timeout,
                retries=retries,
            )
        typer.echo(f"{len(paths)} model file{'s' if len(paths) != 1 else ''} ready in {target}")
    except FacefixError as exc:
        report.exit_with_error(exc)


@app.command("models")
def list_models(
    weights_dir: WeightsDirOption = None,
    config: ConfigOption = None,
    verify: bool = typer.Option(False, "--verify", help="Hash present files (reads every byte)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON on stdout."),
) -> None:
    """List every model: file, size, licence, and state (missing, present, verified, corrupt)."""
    from . import download as weights
    from . import report
    from .settings import resolve_weights_dir

    try:
        target = resolve_weights_dir(weights_dir, config)
        states = weights.model_states(_registry_models(), target, verify=verify)
    except FacefixError as exc:
        report.exit_with_error(exc)
    if as_json:
        rows = [
            {
                "name": st.model.name,
                "file": st.model.file,
                "purpose": st.model.purpose,
                "size": st.model.size,
                "sha256": st.model.sha256,
                "licence": st.model.licence,
                "non_commercial": st.model.non_commercial,
                "default": st.model.default,
                "urls": list(st.model.urls),
                "path": str(st.path),
                "state": st.state,
                "detail": st.detail,
            }
            for st in states
        ]
        typer.echo(json.dumps({"weights_dir": str(target), "models": rows}, indent=2))
    else:
        report.print_model_table(states, target)


def _registry_models() -> tuple:
    """The registry table, looked up when called (tests swap it)."""
    from . import registry

    return registry.MODELS


# --- generation metadata: `facefix info` ------------------------------------------------------

_INFO_CELL_CHARS = 2000  # a table cell stops here; --json shows everything


@app.command("info")
def show_info(
    files: list[Path] = typer.Argument(
        ..., metavar="FILE...", help="Images: PNG (originals or .fixed.png), JPEG or WebP."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the records as a JSON list."),
    raw: bool = typer.Option(
        False, "--raw", help="Also list every chunk: type, keyword, length and a preview."
    ),
) -> None:
    """Show the generation settings embedded in images and the post-processing they had."""
    from rich.console import Console

    from . import metadata, report

    results = metadata.info(files)
    if as_json:
        for result in results:
            if result.error is not None:
                report.print_error(f"{result.path}: {result.error}")
        rows = [result.to_dict(include_chunks=raw) for result in results]
        typer.echo(json.dumps(rows, indent=2, ensure_ascii=False))
    else:
        console = Console()
        for result in results:
            if result.error is not None:
                report.print_error(f"{result.path}: {result.error}")
                continue
            _print_info(console, result, raw)
    raise typer.Exit(EXIT_FAILED if any(r.error is not None for r in results) else EXIT_OK)


def _print_info(console, result, raw: bool) -> None:
    from rich.table import Table
    from rich.text import Text

    from .metadata import chunk_rows, record_rows

    rows = record_rows(result.record)
    if not result.record.has_generation_metadata:
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
