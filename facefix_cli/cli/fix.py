"""`facefix fix`: the command line in, `facefix_cli.pipeline.fix` called, progress and summary
out. The run's tally and exit code are the library's (`FixSummary`); this module only prints."""

from __future__ import annotations

import contextlib
import json
import re
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import typer

from facefix_cli.cli.app import ConfigOption, WeightsDirOption, app, app_context
from facefix_cli.errors import FacefixError, Interrupted, SetupError
from facefix_cli.io.defaults import DEFAULT_PNG_LEVEL
from facefix_cli.io.header import DEFAULT_MAX_PIXELS
from facefix_cli.recipe import DEFAULT_DETECT_SIZE, DEFAULT_FACE_THRESHOLD
from facefix_cli.weights import registry

if TYPE_CHECKING:
    from facefix_cli.pipeline.results import FixSummary
    from facefix_cli.pipeline.settings import RunSettings
    from facefix_cli.recipe import RestorerName


class Precision(StrEnum):
    auto = "auto"
    fp32 = "fp32"
    fp16 = "fp16"
    bf16 = "bf16"


class Order(StrEnum):
    upscale_first = "upscale-first"
    restore_first = "restore-first"


class Upscale(StrEnum):
    none = "1"
    x2 = "2"
    x4 = "4"


# The choices come from the registry, so a new version or detector there is a new choice here.
GfpganVersion = StrEnum("GfpganVersion", {v: v for v in registry.GFPGAN_VERSIONS})  # type: ignore[misc]
Detector = StrEnum("Detector", {name: name for name in registry.DETECTORS})  # type: ignore[misc]


@app.command()
def fix(
    ctx: typer.Context,
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
    restorer: Path | None = typer.Option(
        None,
        "--restorer",
        help="Restore faces with this model file instead: a spandrel checkpoint (GFPGAN, "
        "CodeFormer, RestoreFormer) or an .onnx file (GPEN, ...; needs facefix[onnx]).",
    ),
    restore_strength: float = typer.Option(
        1.0,
        "--restore-strength",
        metavar="STRENGTH",
        help="With --restorer: its strength (0-1], default 1.",
    ),
    weights_dir: WeightsDirOption = None,
    config: ConfigOption = None,
    device: str = typer.Option(
        "auto",
        "--device",
        help="auto, cpu, cuda, cuda:N or mps; several GPUs: cuda (all visible) or cuda:0,cuda:1.",
    ),
    workers: int | None = typer.Option(
        None,
        "--workers",
        min=0,
        help="Decode+encode threads beside the GPU stage (default: cores - 1, at most 8); "
        "0 = everything in one thread, one file at a time.",
    ),
    threads: int | None = typer.Option(
        None,
        "--threads",
        min=1,
        help="Threads the networks and the workers share, never more (default: the cores "
        "this process may use, or OMP_NUM_THREADS).",
    ),
    batch_size: int | None = typer.Option(
        None,
        "--batch-size",
        min=1,
        help="Images of one size per GPU pass (default: 1 on the CPU, from free memory on CUDA).",
    ),
    tile: int | None = typer.Option(
        None,
        "--tile",
        help="Upscale in tiles of N pixels (0 = whole image; default depends on the device).",
    ),
    precision: Precision = typer.Option(
        Precision.auto,
        "--precision",
        help="auto (fp16 upscaler on CUDA, bf16 on a CPU with native bf16, fp32 elsewhere), "
        "fp32, fp16 or bf16.",
    ),
    half: bool = typer.Option(False, "--half", help="Same as --precision fp16."),
    only_center_face: bool = typer.Option(
        False, "--only-center-face", help="Restore only the most central face."
    ),
    detector: Detector = typer.Option(
        Detector("retinaface_resnet50"), "--detector", help="RetinaFace backbone."
    ),
    face_threshold: float = typer.Option(
        DEFAULT_FACE_THRESHOLD,
        "--face-threshold",
        metavar="CONFIDENCE",
        help="Restore faces the detector is at least this sure of (0-1).",
    ),
    min_face: str | None = typer.Option(
        None,
        "--min-face",
        metavar="PX|SHAREx",
        help="Skip faces smaller than this: pixels of the output (64), or a share of the "
        "image's largest face (0.3x).",
    ),
    max_faces: int | None = typer.Option(
        None, "--max-faces", min=1, metavar="N", help="Restore at most the N largest faces."
    ),
    detect_size: int = typer.Option(
        DEFAULT_DETECT_SIZE,
        "--detect-size",
        min=0,
        metavar="PX",
        help="Look for faces on a copy of at most this long side (0: always full size).",
    ),
    order: Order = typer.Option(
        Order.upscale_first,
        "--order",
        help="upscale-first (restore the faces of the upscaled image) or restore-first.",
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
    max_pixels: int = typer.Option(
        DEFAULT_MAX_PIXELS,
        "--max-pixels",
        min=0,
        help="Refuse images whose header declares more pixels than this (0: no limit).",
    ),
    png_level: int = typer.Option(
        DEFAULT_PNG_LEVEL,
        "--png-level",
        min=0,
        max=9,
        metavar="0-9",
        help="PNG compression of the outputs, lossless at every level: 1 writes ~5x faster "
        "than 6 for files ~12% larger; 9 is smallest and slowest.",
    ),
    max_time: str | None = typer.Option(
        None,
        "--max-time",
        metavar="DURATION",
        help="Start no new file after this long: seconds, or 90s, 15m, 2h. Exit 0.",
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
    from facefix_cli.cli import console
    from facefix_cli.cli.report import report_line, write_report_with_progress
    from facefix_cli.io.stderr import keep_log_apart

    keep_log_apart()  # decodes in worker threads redirect fd 2: no log line may go there
    from facefix_cli.config import resolve_weights_dir
    from facefix_cli.pipeline import FixSummary, RunSettings, TimeLimit
    from facefix_cli.pipeline import fix as run_fix
    from facefix_cli.recipe import Recipe, parse_min_face

    summary = FixSummary()
    settings: RunSettings | None = None
    try:
        # 1. the command line as a recipe and run settings (SetupError: exit 2)
        if half and precision not in (Precision.auto, Precision.fp16):
            raise SetupError(
                f"--half means --precision fp16; it contradicts --precision {precision}"
            )
        if gfpgan is not None and codeformer is not None:
            raise SetupError("--gfpgan and --codeformer are mutually exclusive; choose one")
        if restorer is not None and (gfpgan is not None or codeformer is not None):
            given = "--gfpgan" if gfpgan is not None else "--codeformer"
            raise SetupError(
                f"--restorer and {given} are mutually exclusive; give --restorer's strength "
                "with --restore-strength"
            )
        restore_with: RestorerName | None = (
            "gfpgan" if gfpgan is not None else "codeformer" if codeformer is not None else None
        )
        min_face_px, min_face_share = (0.0, 0.0) if min_face is None else parse_min_face(min_face)
        strength = gfpgan if gfpgan is not None else (codeformer or 0.0)
        if restorer is not None:
            restore_with, strength = "restorer", restore_strength
        recipe = Recipe(
            scale=int(upscale.value),
            upscale_strength=upscale_strength,
            restore_with=restore_with,
            restore_strength=strength,
            fidelity=fidelity,
            gfpgan_version=gfpgan_model.value,
            upscaler_path=upscaler,
            tile=tile,
            precision="fp16" if half else precision.value,
            only_center_face=only_center_face,
            detector=detector.value,
            face_threshold=face_threshold,
            min_face=min_face_px,
            min_face_share=min_face_share,
            max_faces=max_faces,
            detect_size=detect_size,
            order="restore-first" if order is Order.restore_first else "upscale-first",
            restorer_path=restorer,
        )
        settings = RunSettings(
            weights_dir=resolve_weights_dir(weights_dir, config),
            device=device,
            output_dir=output_dir,
            overwrite=overwrite,
            dry_run=dry_run,
            recursive=recursive,
            extensions=tuple(e.strip() for e in ext.split(",") if e.strip()),
            offline=offline,
            mirrors=tuple(mirror),
            max_pixels=max_pixels,
            workers=workers,
            threads=threads,
            batch_size=batch_size,
            png_level=png_level,
            time_limit=(
                None
                if max_time is None
                else TimeLimit.from_process_start(
                    parse_duration(max_time), f"--max-time {max_time}"
                )
            ),
            # --ray alone starts Ray on this machine; --ray-address names a cluster to join.
            ray_address=ray_address or ("local" if ray else None),
        )
        if report_path is not None:
            # Imported only for --report: a cron run with nothing to do stays light.
            from facefix_cli.report.build import check_destination

            check_destination(report_path)  # before the run, not after hours of work
        # 2. the run, with a bar on a terminal and plain lines elsewhere
        bar = console.is_terminal() and not as_json
        with (
            signals_as_interrupts(),
            console.download_progress() as download_progress,
            (
                console.RichFixEvents(verbose=verbose, quiet=quiet)
                if bar
                else contextlib.nullcontext(console.PlainFixEvents(verbose=verbose, quiet=quiet))
            ) as events,
        ):
            summary = run_fix(
                paths,
                recipe,
                settings,
                events=events,
                download_progress=download_progress,
                registry=app_context(ctx).registry,
            )
    except FacefixError as exc:
        _error(str(exc))
        _finish(
            summary, as_json, exc.exit_code, verbose=verbose, error=str(exc), show_summary=False
        )
    except KeyboardInterrupt as exc:  # before the run started or after it returned
        summary.interrupted(exc.signum if isinstance(exc, Interrupted) else signal.SIGINT)
    # 3. what happened
    if summary.signal is not None:
        _error(f"{summary.stop_text}; finished outputs are kept, no original was changed")
    elif summary.fault is not None:
        _error(f"stopped: {summary.fault}")
    elif summary.stopped is not None:
        _log(f"stopped: {summary.stop_text}; {summary.not_started} files left for the next run")
    built = None
    if report_path is not None and settings is not None and summary.signal is None:
        # After the run: thumbnails never compete with the GPU work.
        from facefix_cli.report.build import inputs_from_summary, run_details

        try:
            built = write_report_with_progress(
                report_path,
                inputs_from_summary(summary),
                run_details(summary, settings),
                show_progress=console.is_terminal() and not as_json,
            )
        except FacefixError as exc:
            _error(str(exc))
        except KeyboardInterrupt:
            _error("interrupted while writing the report; the outputs are complete")
            summary.interrupted(signal.SIGINT)
    _finish(
        summary,
        as_json,
        summary.exit_code,
        verbose=verbose,
        report_path=built.path if built is not None else None,
        report_text=report_line(built) if built is not None else None,
    )


def parse_duration(text: str) -> float:
    """Seconds from `90`, `90s`, `15m` or `2h`; SetupError otherwise."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", text.lower())
    if match is None or float(match.group(1)) <= 0:
        raise SetupError(f"--max-time {text!r}: expected a duration such as 3600, 90s, 15m or 2h")
    return float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)]


@contextmanager
def signals_as_interrupts() -> Iterator[None]:
    """SIGTERM and SIGHUP unwind like Ctrl-C (temporary file removed, claim released, summary
    printed) as `Interrupted`; a second signal while unwinding is ignored so cleanup finishes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        for number in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(number, signal.SIG_IGN)
        raise Interrupted(signum)

    previous = {}
    for number in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(number) is not signal.SIG_IGN:  # `nohup` asked to ignore SIGHUP
            previous[number] = signal.signal(number, interrupt)
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _error(text: str) -> None:
    """An `error: ...` line, timestamped like every other line of a log (not on a terminal)."""
    _log(f"error: {text}")


def _log(text: str) -> None:
    from facefix_cli.cli import console

    if console.is_terminal():
        print(text, file=sys.stderr)
    else:
        print(f"{console.timestamp()} {console.printable(text)}", file=sys.stderr, flush=True)


def _finish(
    summary: FixSummary,
    as_json: bool,
    code: int,
    *,
    verbose: bool = False,
    error: str | None = None,
    show_summary: bool = True,
    report_path: Path | None = None,
    report_text: str | None = None,
) -> NoReturn:
    """Print the summary (and the --json record, whatever the exit) and exit with `code`."""
    from facefix_cli.cli import console

    if as_json:
        record = summary.to_dict(list_skipped=verbose)  # skipped files: counted, listed with -v
        record["exit_code"] = code
        record["error"] = error
        record["report"] = str(report_path) if report_path is not None else None
        print(json.dumps(record, indent=2), flush=True)
    elif show_summary:
        if console.is_terminal():
            console.print_summary_table(summary)
        else:
            _log(console.summary_line(summary))
        if report_text is not None:  # where the person reading the summary finds the page
            _log(report_text)
    raise typer.Exit(code)
