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
    report_path: Path | None = typer.Option(
        None,
        "--report",
        metavar="PATH.html",
        help="Write an HTML before/after report of the run (thumbnails in PATH_files/).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON summary on stdout."),
    quiet: bool = typer.Option(
        False, "--quiet", "-q", help="Only report failures and the summary."
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log each file as it starts."),
) -> None:
    """Upscale images and restore their faces, writing NAME.fixed.png beside each NAME.png."""
    from facefix import report
    from facefix.cli.report import report_line, write_report_with_progress
    from facefix.pipeline import FixOptions
    from facefix.pipeline import fix as run_fix
    from facefix.report.build import check_destination, inputs_from_summary, run_info
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
        if report_path is not None:
            check_destination(report_path)  # before the run, not after hours of work
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
    built = None
    if report_path is not None:  # after the run: thumbnails never compete with the GPU work
        try:
            built = write_report_with_progress(
                report_path,
                inputs_from_summary(summary),
                run_info(summary, options, None if dry_run else _device_name(device)),
                show_progress=report.is_terminal() and not as_json,
            )
        except FacefixError as exc:
            report.exit_with_error(exc)
        except KeyboardInterrupt:
            report.print_error("interrupted while writing the report; the outputs are complete")
            raise typer.Exit(EXIT_INTERRUPTED) from None
    if as_json:
        data = summary.to_dict()
        data["report"] = str(built.path) if built is not None else None
        print(json.dumps(data, indent=2))
    elif report.is_terminal():
        report.print_summary_table(summary)
    else:
        print(report.summary_line(summary), file=sys.stderr)
    if built is not None and not as_json:
        print(report_line(built), file=sys.stderr)
    raise typer.Exit(EXIT_FAILED if summary.count("failed") else EXIT_OK)


def _device_name(requested: str) -> str:
    """The device the run used, with the GPU's name: `cuda:0 (NVIDIA H100 80GB HBM3)`."""
    import torch

    from facefix.networks.device import resolve_device

    device = resolve_device(requested)
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    return str(device)
