"""`facefix watch`: the command line in (the same option declarations as `fix`,
`cli.options`), `facefix_cli.pipeline.watch` called, lines or JSON events out.

Exit codes: 2 for bad options, missing or broken weights or a missing device, before the first
wait; 4 when a fault that dooms every later file stops it (disk full, GPU gone: systemd's
Restart=on-failure starts it again); 0 when a signal (SIGTERM, SIGINT, SIGHUP) stops it, its
normal end as a service."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from facefix_cli.cli import options as o
from facefix_cli.cli.app import app, app_context
from facefix_cli.cli.fix import signals_as_interrupts
from facefix_cli.errors import FacefixError
from facefix_cli.io.defaults import DEFAULT_PNG_LEVEL
from facefix_cli.io.header import DEFAULT_MAX_PIXELS
from facefix_cli.io.settle import DEFAULT_SETTLE
from facefix_cli.recipe import DEFAULT_DETECT_SIZE, DEFAULT_FACE_THRESHOLD

if TYPE_CHECKING:
    from facefix_cli.pipeline.watch import WatchSummary

FoldersArgument = Annotated[
    list[Path], typer.Argument(help="Folders to watch (recursively, new sub-folders too).")
]
SettleOption = Annotated[
    float,
    typer.Option(
        "--settle",
        min=0.0,
        metavar="SECONDS",
        help="A file written in place (not renamed in, not closed after writing) is fixed once "
        "its size and time have not changed for this long and it is whole.",
    ),
]
PollOption = Annotated[
    float | None,
    typer.Option(
        "--poll",
        min=0.1,
        metavar="SECONDS",
        help="Walk the folders this often instead of waiting for kernel events (network "
        "shares: other hosts' writes raise no events here).",
    ),
]
JsonEventsOption = Annotated[
    bool, typer.Option("--json", help="One JSON object per line per event on stdout.")
]


@app.command()
def watch(
    ctx: typer.Context,
    paths: FoldersArgument,
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
    recursive: o.RecursiveOption = True,
    ext: o.ExtOption = "png",
    offline: o.OfflineOption = False,
    mirror: o.MirrorOption = [],  # noqa: B006 - typer's list default, never mutated
    max_pixels: o.MaxPixelsOption = DEFAULT_MAX_PIXELS,
    png_level: o.PngLevelOption = DEFAULT_PNG_LEVEL,
    output_format: o.FormatOption = None,
    quality: o.QualityOption = None,
    settle: SettleOption = DEFAULT_SETTLE,
    poll: PollOption = None,
    as_json: JsonEventsOption = False,
    quiet: o.QuietOption = False,
    verbose: o.VerboseOption = False,
) -> None:
    """Keep the networks loaded: fix the backlog as fix would, then every new image under the
    folders as soon as it is complete, until stopped (SIGTERM, Ctrl-C)."""
    from facefix_cli.cli import console
    from facefix_cli.cli.console.watch import JsonWatchEvents, PlainWatchEvents
    from facefix_cli.io.stderr import keep_log_apart

    keep_log_apart()  # decodes in worker threads redirect fd 2: no log line may go there
    from facefix_cli.config import resolve_output_format, resolve_weights_dir
    from facefix_cli.pipeline.watch import WatchSummary
    from facefix_cli.pipeline.watch import watch as run_watch

    events = JsonWatchEvents(verbose) if as_json else PlainWatchEvents(verbose, quiet)
    summary = WatchSummary()
    ignored: list[str] = []  # options that cannot apply here: one warning each, as `fix` says
    try:
        recipe = o.recipe_from_options(
            upscale=upscale,
            upscale_strength=upscale_strength,
            gfpgan=gfpgan,
            codeformer=codeformer,
            fidelity=fidelity,
            gfpgan_model=gfpgan_model.value,
            upscaler=upscaler,
            restorer=restorer,
            restore_strength=restore_strength,
            tile=tile,
            precision=precision,
            half=half,
            only_center_face=only_center_face,
            detector=detector.value,
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
            warnings=ignored,
        )
        for warning in ignored:
            events.notice(warning)
        with signals_as_interrupts(), console.download_progress() as download_progress:
            summary = run_watch(
                paths,
                recipe,
                settings,
                events,
                settle=settle,
                poll=poll,
                registry=app_context(ctx).registry,
                download_progress=download_progress,
            )
    except FacefixError as exc:  # before the first wait: no summary line, nothing was done
        _finish(summary, events, exc.exit_code, error=str(exc), show_summary=False)
    except KeyboardInterrupt:  # before the watch started: nothing in hand
        summary.signal = signal.SIGINT
    if summary.fault is not None:
        _finish(summary, events, summary.exit_code, error=f"stopped: {summary.fault}")
    _finish(summary, events, summary.exit_code)


def _finish(
    summary: WatchSummary,
    events: object,
    code: int,
    error: str | None = None,
    show_summary: bool = True,
) -> NoReturn:
    """The error (if any) and the summary, as a line or a JSON event, then exit with `code`."""
    from facefix_cli.cli.console import printable, timestamp
    from facefix_cli.cli.console.watch import JsonWatchEvents, summary_line

    if isinstance(events, JsonWatchEvents):
        if error is not None:
            events.emit("error", error=error)
        events.emit("summary", **summary.to_dict(), exit_code=code)
    else:
        if error is not None:
            print(f"{timestamp()} error: {printable(error)}", file=sys.stderr, flush=True)
        if not show_summary:
            raise typer.Exit(code)
        if summary.stop_text is not None:
            print(
                f"{timestamp()} {summary.stop_text}: any file in hand was left for the next "
                "start; no original was changed",
                file=sys.stderr,
                flush=True,
            )
        print(f"{timestamp()} {summary_line(summary)}", file=sys.stderr, flush=True)
    raise typer.Exit(code)
