"""`facefix download` and `facefix models`: the weights folder from the command line."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from facefix_cli.cli.app import app, app_context
from facefix_cli.cli.options import ConfigOption, OfflineOption, WeightsDirOption
from facefix_cli.errors import EXIT_FAILED, FacefixError

if TYPE_CHECKING:
    from facefix_cli.weights.registry import ModelInfo


@app.command("download")
def download_weights(
    ctx: typer.Context,
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
    offline: OfflineOption = False,
) -> None:
    """Fetch model weights, verified by size and SHA-256, into the weights folder."""
    from facefix_cli.cli import console
    from facefix_cli.config import resolve_weights_dir
    from facefix_cli.errors import SetupError
    from facefix_cli.weights import download, sources, store

    registry = app_context(ctx).registry
    try:
        if check_only and force:
            raise SetupError("--check and --force do not go together")
        target = resolve_weights_dir(weights_dir, config)
        models = download.resolve_names(names or [], all_models=all_models, registry=registry)
        mirrors = mirror or sources.mirrors_from_env()
        if offline and not check_only and not any(sources.is_local(m) for m in mirrors):
            raise SetupError(
                "offline (--offline or FACEFIX_OFFLINE=1): nothing is downloaded; copy from a "
                "folder with --mirror DIR, or take the files from an A1111, Forge or ComfyUI "
                "models folder with: facefix models --find DIR"
            )
        if check_only:
            states = store.check(models, target)
            for st in states:
                detail = f"  ({st.detail})" if st.detail else ""
                typer.echo(f"{st.state:<9} {st.model.name:<22} {st.path}{detail}")
            bad = [st for st in states if st.state != "verified"]
            if bad:
                corrupt = any(st.state == "corrupt" for st in bad)
                command = download.download_command([st.model for st in bad], target, force=corrupt)
                console.print_error(
                    f"{len(bad)} of {len(states)} model files missing or corrupt; "
                    f"fetch them with: {command}"
                )
                raise typer.Exit(EXIT_FAILED)
            typer.echo(f"all {len(states)} model files verified in {target}")
            return
        if all_models:
            for model in registry.models:
                if model.non_commercial:
                    note = f"skipped {model.name}: non-commercial licence, fetch it by name"
                    typer.echo(note, err=True)
        with console.download_progress() as progress:
            paths = download.download(
                models,
                target,
                mirrors=mirrors,
                force=force,
                progress=progress,
                timeout=timeout,
                retries=retries,
                offline=offline,
            )
        typer.echo(f"{len(paths)} model file{'s' if len(paths) != 1 else ''} ready in {target}")
    except FacefixError as exc:
        console.exit_with_error(exc)


@app.command("models")
def list_models(
    ctx: typer.Context,
    weights_dir: WeightsDirOption = None,
    config: ConfigOption = None,
    verify: bool = typer.Option(False, "--verify", help="Hash present files (reads every byte)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON on stdout."),
    find: list[Path] = typer.Option(  # noqa: B008 - typer's default, never mutated
        [],
        "--find",
        metavar="DIR",
        help="First take missing model files from DIR (an A1111, Forge or ComfyUI models "
        "folder, searched recursively): copied when their SHA-256 is the release's. Repeatable.",
    ),
) -> None:
    """List every model: file, size, licence, and state (missing, present, verified, corrupt)."""
    from facefix_cli.cli import console
    from facefix_cli.config import resolve_weights_dir
    from facefix_cli.weights import store

    try:
        target = resolve_weights_dir(weights_dir, config)
        if find:
            _find(find, app_context(ctx).registry.models, target)
        states = store.model_states(app_context(ctx).registry.models, target, verify=verify)
    except FacefixError as exc:
        console.exit_with_error(exc)
    if as_json:
        rows = [
            {
                "name": st.model.name,
                "file": st.model.file,
                "purpose": st.model.purpose,
                "size": st.model.size,
                "sha256": st.model.sha256,
                "file_sha256": st.sha256,  # the file's own, when hashed or cached
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
        console.print_model_table(states, target)


def _find(roots: list[Path], models: Sequence[ModelInfo], target: Path) -> None:
    """`models --find`: take what the folders hold, saying each file found and what is left."""
    from facefix_cli.cli import console
    from facefix_cli.errors import SetupError
    from facefix_cli.weights import store
    from facefix_cli.weights.find import find_weights

    for root in roots:
        if not root.is_dir():
            raise SetupError(f"--find: no such folder: {root}")
    missing = [m for m in models if not store.is_present(m, target)]
    with console.waiting(
        f"looking for {len(missing)} model files under {', '.join(map(str, roots))}"
    ):
        taken = find_weights(roots, missing, target)
    for got in taken:
        typer.echo(
            f"found {got.model.file} ({got.model.name}) as {got.source}: copied into {target}",
            err=True,
        )
    left = [m.file for m in missing if not store.is_present(m, target)]
    if left:
        typer.echo(f"not found (no file with the released bytes): {', '.join(left)}", err=True)
