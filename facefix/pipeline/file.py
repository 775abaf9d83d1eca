"""One input file to one output file, in reusable steps every executor shares:

- `read_job`: read, decode and parse the metadata of a job's input -> `OpenFile`, or the
  finished (failed or skipped) `FileResult` when there is nothing to fix;
- `write_fixed`: encode the fixed image as PNG with its metadata and put it in place atomically;
- `failed`: the failed `FileResult` for an exception raised while fixing a file.

`fix_file` chains them around `fix_image`. Every per-file problem comes back as a failed result
with a one-line reason, never an exception, so every executor reports a file the same way;
setup problems (`FacefixError`, e.g. a model that will not load) still raise and stop the run."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from facefix.errors import FacefixError, ImageError
from facefix.io.discover import Job
from facefix.io.read import SourceImage, read_image
from facefix.io.write import encode_png, write_atomic
from facefix.metadata import output_chunks, parse_generation
from facefix.networks.cache import Networks
from facefix.pipeline.clock import NO_CLOCK, StageClock
from facefix.pipeline.image import FixedImage, fix_image
from facefix.pipeline.options import FixOptions
from facefix.pipeline.results import FileResult
from facefix.record import facefix_record


@dataclass
class OpenFile:
    """A read and decoded input on its way through an executor."""

    job: Job
    source: SourceImage
    result: FileResult  # tool and seed known; status and faces set when written
    started: float = field(default_factory=time.perf_counter)


def failure_reason(exc: BaseException) -> str | None:
    """The one-line reason for a per-file failure, or None if `exc` must stop the run."""
    if isinstance(exc, ImageError):
        return str(exc)
    if isinstance(exc, torch.OutOfMemoryError):
        return "out of GPU memory; try a smaller --tile (e.g. --tile 256)"
    if isinstance(exc, FacefixError):
        return None  # setup problems (a model that will not load) stop the whole run
    if isinstance(exc, ValueError | RuntimeError | MemoryError):
        first_line = str(exc).splitlines()[0] if str(exc) else ""
        return f"{type(exc).__name__}: {first_line}"
    return None


def failed(result: FileResult, exc: BaseException, started: float) -> FileResult:
    """`result` marked failed with `exc`'s reason; re-raises what is not a per-file problem."""
    reason = failure_reason(exc)
    if reason is None:
        raise exc
    result.status, result.reason = "failed", reason
    result.seconds = time.perf_counter() - started
    return result


def read_job(job: Job, options: FixOptions, clock: StageClock = NO_CLOCK) -> OpenFile | FileResult:
    """Read and decode `job`'s input. A FileResult back means the file is finished: failed
    (unreadable, corrupt, would overwrite its input) or skipped (already a facefix output)."""
    started = time.perf_counter()
    result = FileResult(job.source, job.output, "failed")
    try:
        if job.output.resolve() == job.source.resolve():
            raise ImageError("output would overwrite the input")
        with clock.stage("decode"):
            source = read_image(job.source)
            generation = parse_generation(source.chunks)
    except Exception as exc:  # noqa: BLE001 - failed() re-raises what is not per-file
        return failed(result, exc, started)
    result.tool, result.seed = generation.tool, generation.seed
    if generation.facefix and not options.overwrite:  # a renamed .fixed.png
        result.status = "skipped"
        result.reason = "already a facefix output (use --overwrite to redo)"
        result.seconds = time.perf_counter() - started
        return result
    return OpenFile(job, source, result, started)


def write_fixed(
    file: OpenFile, fixed: FixedImage, options: FixOptions, clock: StageClock = NO_CLOCK
) -> FileResult:
    """Encode `fixed` with `file`'s metadata extended and write it atomically to the output."""
    result, source = file.result, file.source
    try:
        with clock.stage("encode"):
            record = facefix_record(fixed.operations, source.path.name, source.sha256)
            chunks = output_chunks(source.chunks, fixed.operations, record)
            data = encode_png(fixed.rgb, fixed.alpha, source.bit_depth, chunks)
        with clock.stage("write"):
            write_atomic(file.job.output, data)
    except Exception as exc:  # noqa: BLE001 - failed() re-raises what is not per-file
        return failed(result, exc, file.started)
    result.status, result.faces = "fixed", fixed.faces
    if options.restore_with is not None and fixed.faces == 0:
        result.reason = "no faces found; upscaled only" if options.upscales else "no faces found"
    result.seconds = time.perf_counter() - file.started
    return result


def fix_file(
    job: Job, options: FixOptions, networks: Networks, clock: StageClock = NO_CLOCK
) -> FileResult:
    """Fix one file; every per-file problem comes back as a failed result, never an exception."""
    opened = read_job(job, options, clock)
    if isinstance(opened, FileResult):
        return opened
    try:
        with clock.stage("fix"):
            fixed = fix_image(opened.source, options, networks)
    except Exception as exc:  # noqa: BLE001 - failed() re-raises what is not per-file
        return failed(opened.result, exc, opened.started)
    return write_fixed(opened, fixed, options, clock)
