"""`facefix fix`: options in, `facefix.pipeline.fix` called, progress and summary out."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path

import typer

from facefix.cli.app import ConfigOption, WeightsDirOption, app
from facefix.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, FacefixError
from facefix.weights import registry


class Upscale(StrEnum):
    none = "1"
    x2 = "2"
    x4 = "4"


# The choices come from the registry, so a new version or detector there is a new choice here.
GfpganVersion = StrEnum("GfpganVersion", {version: version for version in registry.GFPGAN_VERSIONS})
Detector = StrEnum("Detector", {name: name for name in registry.DETECTORS})


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
        GfpganVersion("1.4"), "--gfpgan-model", help="GFPGAN version."
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
    detector: Detector = typer.Option(
        Detector("retinaface_resnet50"), "--detector", help="RetinaFace backbone."
    ),
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
    ray: bool = typer.Option(
        False,
        "--ray",
        help="Run on Ray workers: one per GPU (per CPU with --device cpu). Needs facefix[ray].",
    ),
    ray_address: str | None = typer.Option(
        None,
        "--ray-address",
        metavar="ADDRESS",
        help="With --ray: local (default: start Ray on this machine), auto (the cluster this "
        "node belongs to) or ray://HOST:PORT. Implies --ray.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON summary on stdout."),
    quiet: bool = typer.Option(
        False, "--quiet", "-q", help="Only report failures and the summary."
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log each file as it starts."),
) -> None:
    """Upscale images and restore their faces, writing NAME.fixed.png beside each NAME.png."""
    from facefix import report
    from facefix.pipeline import FixOptions
    from facefix.pipeline import fix as run_fix
    from facefix.settings import resolve_weights_dir

    if gfpgan is not None and codeformer is not None:
        report.print_error("--gfpgan and --codeformer are mutually exclusive; choose one")
        raise typer.Exit(2)
    restore_with = (
        "gfpgan" if gfpgan is not None else "codeformer" if codeformer is not None else None
    )
    try:
        options = FixOptions(
            weights_dir=resolve_weights_dir(weights_dir, config),
            scale=int(upscale.value),
            upscale_strength=upscale_strength,
            restore_with=restore_with,
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
        # --ray alone starts Ray on this machine; --ray-address names a cluster to join.
        address = ray_address or ("local" if ray else None)
        with report.download_progress() as download_progress:
            if report.is_terminal() and not as_json:
                with report.RichFixEvents(verbose=verbose, quiet=quiet) as events:
                    summary = run_fix(
                        paths,
                        options,
                        events=events,
                        download_progress=download_progress,
                        ray_address=address,
                    )
            else:
                events = report.PlainFixEvents(verbose=verbose, quiet=quiet)
                summary = run_fix(
                    paths,
                    options,
                    events=events,
                    download_progress=download_progress,
                    ray_address=address,
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
