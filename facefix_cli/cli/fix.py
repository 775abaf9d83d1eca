"""`facefix fix`: the command line in, `facefix_cli.pipeline.fix` called, progress and summary
out. The run's tally and exit code are the library's (`FixSummary`); this module only prints."""

from __future__ import annotations

import json
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import typer

from facefix_cli.cli import options as o
from facefix_cli.cli.app import app, app_context
from facefix_cli.errors import FacefixError, Interrupted
from facefix_cli.io.defaults import DEFAULT_PNG_LEVEL
from facefix_cli.io.header import DEFAULT_MAX_PIXELS
from facefix_cli.recipe import DEFAULT_DETECT_SIZE, DEFAULT_FACE_THRESHOLD

if TYPE_CHECKING:
    from facefix_cli.pipeline.results import FixSummary
    from facefix_cli.pipeline.settings import RunSettings


@app.command()
def fix(
    ctx: typer.Context,
    paths: o.PathsArgument,
    upscale: o.UpscaleOption = o.Upscale.none,
    upscale_strength: o.UpscaleStrengthOption = o.DEFAULT_UPSCALE_STRENGTH,
    gfpgan: o.GfpganOption = None,
    codeformer: o.CodeformerOption = None,
    fidelity: o.FidelityOption = o.DEFAULT_FIDELITY,
    gfpgan_model: o.GfpganModelOption = o.GfpganVersion(o.DEFAULT_GFPGAN_VERSION),
    upscaler: o.UpscalerOption = None,
    restorer: o.RestorerOption = None,
    restore_strength: o.RestoreStrengthOption = o.DEFAULT_RESTORE_STRENGTH,
    weights_dir: o.WeightsDirOption = None,
    config: o.ConfigOption = None,
    device: o.DeviceOption = "auto",
    workers: o.WorkersOption = None,
    threads: o.ThreadsOption = None,
    batch_size: o.BatchSizeOption = None,
    tile: o.TileOption = None,
    precision: o.PrecisionOption = o.Precision.auto,
    half: o.HalfOption = False,
    only_center_face: o.OnlyCenterFaceOption = False,
    detector: o.DetectorOption = o.Detector(o.DEFAULT_DETECTOR),
    face_threshold: o.FaceThresholdOption = DEFAULT_FACE_THRESHOLD,
    min_face: o.MinFaceOption = None,
    max_faces: o.MaxFacesOption = None,
    detect_size: o.DetectSizeOption = DEFAULT_DETECT_SIZE,
    order: o.OrderOption = o.Order.upscale_first,
    output_dir: o.OutputDirOption = None,
    overwrite: o.OverwriteOption = False,
    retry_failed: o.RetryFailedOption = False,
    dry_run: o.DryRunOption = False,
    recursive: o.RecursiveOption = True,
    ext: o.ExtOption = "png",
    offline: o.OfflineOption = False,
    mirror: o.MirrorOption = [],  # noqa: B006 - typer's default, never mutated
    max_pixels: o.MaxPixelsOption = DEFAULT_MAX_PIXELS,
    png_level: o.PngLevelOption = DEFAULT_PNG_LEVEL,
    output_format: o.FormatOption = None,
    quality: o.QualityOption = None,
    max_time: o.MaxTimeOption = None,
    ray: o.RayOption = False,
    ray_address: o.RayAddressOption = None,
    report_path: o.ReportOption = None,
    as_json: o.JsonOption = False,
    quiet: o.QuietOption = False,
    verbose: o.VerboseOption = False,
) -> None:
    """Upscale images and restore their faces, writing NAME.fixed.png beside each NAME.png
    (or .fixed.webp, .fixed.jpg, .fixed.avif with --format)."""
    from facefix_cli.cli import console
    from facefix_cli.cli.report import report_line, write_report_with_progress
    from facefix_cli.io.stderr import keep_log_apart

    keep_log_apart()  # decodes in worker threads redirect fd 2: no log line may go there
    from facefix_cli.config import resolve_output_format, resolve_weights_dir
    from facefix_cli.pipeline import FixSummary
    from facefix_cli.pipeline import fix as run_fix

    summary = FixSummary()
    settings: RunSettings | None = None
    ignored: list[str] = []  # options that cannot apply here: one warning line each
    try:
        # 1. the command line as a recipe and run settings (SetupError: exit 2)
        recipe = o.recipe_from_options(
            upscale=upscale,
            upscale_strength=upscale_strength,
            gfpgan=gfpgan,
            codeformer=codeformer,
            fidelity=fidelity,
            gfpgan_model=gfpgan_model,
            upscaler=upscaler,
            restorer=restorer,
            restore_strength=restore_strength,
            tile=tile,
            precision=precision,
            half=half,
            only_center_face=only_center_face,
            detector=detector,
            face_threshold=face_threshold,
            min_face=min_face,
            max_faces=max_faces,
            detect_size=detect_size,
            order=order,
            warnings=ignored,
        )
        chosen_format, chosen_quality = resolve_output_format(output_format, quality, config)
        settings = o.settings_from_options(
            weights_dir=resolve_weights_dir(weights_dir, config),
            device=device,
            output_dir=output_dir,
            overwrite=overwrite,
            retry_failed=retry_failed,
            dry_run=dry_run,
            recursive=recursive,
            ext=ext,
            offline=offline,
            mirror=mirror,
            max_pixels=max_pixels,
            workers=workers,
            threads=threads,
            batch_size=batch_size,
            png_level=png_level,
            output_format=chosen_format,
            quality=chosen_quality,
            max_time=max_time,
            ray=ray,
            ray_address=ray_address,
            warnings=ignored,
        )
        for warning in ignored:
            _log(f"warning: {warning}")
        if report_path is not None:
            # Imported only for --report: a cron run with nothing to do stays light.
            from facefix_cli.report.build import check_destination

            check_destination(report_path)  # before the run, not after hours of work
        # 2. the run, with a bar on a terminal and plain lines elsewhere
        bar = console.is_terminal() and not as_json
        with (
            signals_as_interrupts(),
            console.fix_display(bar, verbose=verbose, quiet=quiet) as (events, download_progress),
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
        show_summary=not (quiet and summary.idle and built is None),  # cron mails nothing
        report_path=built.path if built is not None else None,
        report_text=report_line(built) if built is not None else None,
    )


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
    else:  # every line of a log timestamped (a missing-weights error names files one a line)
        stamp = console.timestamp()
        for line in text.splitlines():
            print(f"{stamp} {console.printable(line)}", file=sys.stderr, flush=True)


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
