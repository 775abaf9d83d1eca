"""One input file to one output file, and the per-file rules every executor shares.

`fix_file` is the whole of it for the sequential executor. Executors that split the work
(batching, pipelining, other machines) call the same steps in the same order:

1. `read_job(job, settings)` -> an `OpenFile` (the output claimed for this run, the input read
   and decoded), or the file's finished `FileResult` (skipped: another run holds it, it was
   finished meanwhile, or it is itself a facefix output; failed: unreadable, corrupt...);
2. `fix_image`/`fix_images` on `OpenFile.source`;
3. `write_fixed(file, fixed, settings)`: encode, write atomically, release the claim: the result;
   or `abandon(file, exc, settings)` when step 2 raised for this file.

Underneath, `failure_result(job, exc, settings, started)` is the one place an exception becomes
a file's result: failed or crashed, or `EnvironmentFault` raised when the fault dooms every
later file (disk full, read-only output, GPU gone): the executor then stops starting files.
KeyboardInterrupt (Ctrl-C, and SIGTERM/SIGHUP as `errors.Interrupted`) and SetupError propagate;
`raise_if_run_ends(exc, settings)` raises those (a fault as EnvironmentFault) for an executor.

Guarantees: an original is never written; an output appears only whole, under its final name;
every per-file problem, whatever raised it, is one line on that file's result; a claim taken in
step 1 is released by step 3 or `abandon` whatever happens.
"""

from __future__ import annotations

import errno
import os
import stat
import time
import traceback
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import torch
from PIL import Image

from facefix_cli.errors import (
    BUG_REPORT_HINT,
    AnimatedImage,
    EnvironmentFault,
    FacefixError,
    ImageError,
    OutputWriteError,
    SetupError,
    first_line,
)
from facefix_cli.io import claims, marks, safefs
from facefix_cli.io.claims import Claim
from facefix_cli.io.discover import Job
from facefix_cli.io.encode import EncodeOptions, OutputPixels
from facefix_cli.io.environment import ENVIRONMENT_ERRNOS, OUTPUT_TREE_ERRNOS
from facefix_cli.io.names import display_path
from facefix_cli.io.outputs import OutputFormat
from facefix_cli.io.read import SourceImage, read_image
from facefix_cli.io.write import write_atomic
from facefix_cli.metadata import (
    Generation,
    StealthPayload,
    chunks_from_bytes,
    embedded_metadata,
    output_chunks,
    parse_generation,
    stealth_in_pixels,
    stealth_written_back,
)
from facefix_cli.networks.cache import Networks
from facefix_cli.operations import facefix_record
from facefix_cli.pipeline.clock import NO_CLOCK, StageClock
from facefix_cli.pipeline.image import FixedImage, fix_image
from facefix_cli.pipeline.results import FileResult, Status
from facefix_cli.pipeline.settings import RunSettings
from facefix_cli.recipe import Recipe

# Messages of a CUDA context that is gone or poisoned: every later call on it fails too.
GPU_GONE = (
    "CUDA error",
    "CUDA driver",
    "no CUDA-capable device",
    "CUBLAS_STATUS",
    "cuDNN error",
    "device-side assert",
)
PER_FILE_ERRORS: tuple[type[BaseException], ...] = (
    ImageError,
    OSError,
    cv2.error,
    MemoryError,
    zlib.error,
    Image.DecompressionBombError,
    Image.UnidentifiedImageError,
)


def environment_fault(exc: BaseException, settings: RunSettings) -> str | None:
    """The one line that stops the run if `exc` dooms every later file, else None."""
    if isinstance(exc, EnvironmentFault):
        return str(exc)
    if isinstance(exc, OutputWriteError | OSError):
        code = exc.errno
        if code in ENVIRONMENT_ERRNOS or (
            settings.output_dir is not None and code in OUTPUT_TREE_ERRNOS
        ):
            return str(exc) if isinstance(exc, OutputWriteError) else _os_reason(exc)
        return None
    if isinstance(exc, torch.OutOfMemoryError):
        return None
    if isinstance(exc, RuntimeError) and any(marker in str(exc) for marker in GPU_GONE):
        return f"the GPU is unusable: {first_line(exc)}"
    return None


def raise_if_run_ends(exc: BaseException, settings: RunSettings) -> None:
    """Raise what ends the run for `exc`: KeyboardInterrupt and SetupError as they are, a fault
    that dooms every later file (disk full, GPU gone) as EnvironmentFault. Returns when `exc`
    is about one file only."""
    if isinstance(exc, KeyboardInterrupt | SetupError):
        raise exc
    fault = environment_fault(exc, settings)
    if fault is not None:
        raise EnvironmentFault(fault) from exc


def failure_result(
    job: Job, exc: BaseException, settings: RunSettings, started: float | None = None
) -> FileResult:
    """The one place an exception from working on a file becomes its result: failed with a
    one-line reason when it is about the file, crashed (with type and traceback) when it is
    unexpected. Raises EnvironmentFault when it dooms every later file; re-raises
    KeyboardInterrupt and SetupError."""
    raise_if_run_ends(exc, settings)
    result = FileResult(job.source, job.output, Status.FAILED)
    if started is not None:
        result.seconds = time.perf_counter() - started
    if isinstance(exc, torch.OutOfMemoryError):
        result.reason = "out of GPU memory; try a smaller --tile (e.g. --tile 256)"
    elif isinstance(exc, MemoryError):
        result.reason = "out of memory (try --max-pixels or a smaller --tile)"
    elif isinstance(exc, AnimatedImage):  # not this tool's kind of file: no failure
        result.status, result.reason = Status.SKIPPED, str(exc)
    elif isinstance(exc, FacefixError):
        result.reason = str(exc)
    elif isinstance(exc, OSError):
        result.reason = _os_reason(exc)
    elif isinstance(exc, PER_FILE_ERRORS):
        result.reason = f"{_type_name(exc)}: {first_line(exc)}"
    else:
        result.status = Status.CRASHED
        result.reason = f"{_type_name(exc)}: {first_line(exc)} ({BUG_REPORT_HINT})"
        result.traceback = "".join(traceback.format_exception(exc))
    return result


def output_folder(job: Job, settings: RunSettings) -> tuple[int, int] | None:
    """Make the job's output folder where it is missing and say which folder it is (st_dev,
    st_ino): under --output-dir each folder is made one component at a time, never through a
    link the trust rule refuses; beside the source it must still be the folder the walk saw
    (a folder swapped for a link since is refused). None: nothing to check against."""
    parent = job.output.parent
    base = settings.output_dir
    if base is not None and parent.is_relative_to(base):
        safefs.make_folders(base, parent.relative_to(base))
    elif not parent.is_dir():
        parent.mkdir(parents=True, exist_ok=True)
    st = os.stat(parent)
    identity = (st.st_dev, st.st_ino)
    if job.folder is not None and parent == job.source.parent and identity != job.folder:
        raise safefs.replaced("folder", parent)
    return identity if base is not None or job.folder is not None else None


def begin_file(
    job: Job, settings: RunSettings
) -> tuple[Claim, tuple[int, int] | None] | FileResult:
    """Claim the job's output for this run: the claim and the output folder's identity (see
    `output_folder`). A FileResult instead when there is nothing to do: another live run holds
    the claim, or the output appeared since planning."""
    if job.output.resolve() == job.source.resolve():
        raise ImageError("output would overwrite the input")
    try:
        folder = output_folder(job, settings)
        claim = claims.acquire(job.output)
    except OSError as exc:
        raise OutputWriteError(
            f"cannot claim {display_path(job.output)}: {exc.strerror or exc}", exc.errno
        ) from None
    if claim is None:
        return FileResult(job.source, job.output, Status.SKIPPED, "being fixed by another run")
    try:
        exists = not (settings.overwrite or job.replace) and _exists(job.output)
    except BaseException:  # a signal (errors.Interrupted) landing here: no claim outlives it
        claim.release()
        raise
    if exists:
        claim.release()
        return FileResult(job.source, job.output, Status.SKIPPED, "output exists (use --overwrite)")
    return claim, folder


@dataclass
class OpenFile:
    """A claimed, read and decoded input on its way through an executor."""

    job: Job
    claim: Claim
    source: SourceImage
    # Read once, with any settings hidden in the pixels: the output carries them on.
    generation: Generation
    stealth: StealthPayload | None
    started: float = field(default_factory=time.perf_counter)
    # Seconds spent on this file in the stages so far (claim and decode, its share of the
    # network pass, encode and write), not in queues: the result's `seconds`.
    seconds: float = 0.0
    # The output folder's (st_dev, st_ino) when claimed: the write goes there or nowhere.
    folder: tuple[int, int] | None = None

    def since(self) -> float:
        """A `perf_counter()` value that `failure_result` turns into this file's stage time."""
        return time.perf_counter() - self.seconds


def _source_path(job: Job) -> str | None:
    """Where the input is, relative to the output's folder, when the output is not beside it
    (`--output-dir`): the report finds originals by it. None beside it (the name suffices)."""
    source, folder = os.path.abspath(job.source), os.path.abspath(job.output.parent)
    if os.path.dirname(source) == folder:
        return None
    return Path(os.path.relpath(source, folder)).as_posix()


def finish_file(
    file: OpenFile, fixed: FixedImage, settings: RunSettings, clock: StageClock = NO_CLOCK
) -> FileResult:
    """Write the fixed image with its metadata atomically; the file's `fixed` result. Restoration
    alone that restored no face writes nothing (the output would be the input's pixels): the
    result is skipped, and a face found in none is remembered (`io.marks`) for the next run."""
    begun = time.perf_counter()
    job, source, generation, stealth = file.job, file.source, file.generation, file.stealth
    if fixed.looked_for_faces and fixed.faces == 0 and not fixed.upscaled:
        if fixed.found == 0:
            marks.remember_faceless(job.output, job.source)
            reason = "no face found: nothing to restore, no output written"
        else:
            reason = f"no face chosen of {fixed.found} found: nothing restored, no output written"
        result = FileResult(job.source, None, Status.SKIPPED, reason, faces_skipped=fixed.skipped)
        result.tool, result.seed = generation.tool, generation.seed
        result.seconds = file.seconds + time.perf_counter() - begun
        return result
    fmt = job.format
    notes = []
    with clock.stage("encode"):
        record = facefix_record(
            fixed.operations, source.path.name, source.sha256, _source_path(job)
        )
        if fmt.carrier != "png chunks":  # a PNG's record stays as it always was
            record["output"], note = output_record(fmt, settings.quality, source.bit_depth)
            notes += [note] if note else []
        # Resampling destroys settings hidden in the pixels' low bits: carry them as text.
        chunks = output_chunks(source.chunks, fixed.operations, record, stealth=stealth)
        # A lossless format gets an alpha payload back in the pixels; lossy ones lose low bits.
        # A format without alpha (JPEG) gets here only with an opaque one (`check_alpha_fits`).
        alpha = (
            (fixed.alpha if fmt.spec.keeps_alpha else None)
            if fmt.spec.lossy
            else stealth_written_back(fixed.alpha, stealth, source.bit_depth)
        )
        carried = chunks if fmt.carrier == "png chunks" else embedded_metadata(chunks, fmt)
        options = EncodeOptions(quality=settings.quality, png_level=settings.png_level)
        data = fmt.encode(OutputPixels(fixed.rgb, alpha, source.bit_depth), carried, options)
    with clock.stage("write"):
        write_atomic(job.output, data, **output_attributes(source), folder=file.folder)
    result = FileResult(job.source, job.output, Status.FIXED, faces=fixed.faces)
    result.faces_skipped = fixed.skipped
    result.tool, result.seed = generation.tool, generation.seed
    if fixed.looked_for_faces and fixed.faces == 0:
        none = "no faces found" if fixed.found == 0 else "no face chosen"
        notes.append(f"{none}; upscaled only" if fixed.upscaled else none)
    if generation.stealth:  # the only copy of the settings may have been in the pixels
        notes.append(f"settings hidden in the pixels ({generation.stealth}) kept as text")
    result.reason = "; ".join(notes)
    result.seconds = file.seconds + time.perf_counter() - begun
    return result


def output_record(
    fmt: OutputFormat, quality: int | None, bit_depth: int
) -> tuple[dict[str, str | int], str]:
    """What the record says about a non-PNG output's encoding, and the note for the file's log
    line (empty when there is nothing to say): 16-bit pixels are stored as 8-bit."""
    said: dict[str, str | int] = {"format": fmt.value}
    encoded_at = fmt.quality(quality)
    if encoded_at is not None:
        said["quality"] = encoded_at
    note = ""
    if bit_depth not in fmt.spec.bit_depths:
        said["bit_depth"] = f"{bit_depth} -> 8"
        note = f"{bit_depth}-bit input stored as 8-bit {fmt.value.upper()}"
    return said, note


def check_alpha_fits(job: Job, source: SourceImage) -> None:
    """ImageError when the output format cannot keep the input's transparency (JPEG): never
    dropped silently. A fully opaque alpha channel loses nothing and passes."""
    if job.format.spec.keeps_alpha or source.alpha is None:
        return
    if float(source.alpha.min()) < 1.0 - 0.5 / 65535:
        raise ImageError(
            f"has transparency, which {job.format.value.upper()} cannot keep; "
            "use --format webp, avif or png for it"
        )


def read_job(
    job: Job, settings: RunSettings, clock: StageClock = NO_CLOCK
) -> OpenFile | FileResult:
    """Step 1: claim `job`'s output and read its input. A FileResult back means the file is
    finished (skipped or failed) and holds no claim."""
    started = time.perf_counter()
    claim: Claim | None = None
    begun: tuple[Claim, tuple[int, int] | None] | FileResult | None = None
    try:
        begun = begin_file(job, settings)
        if isinstance(begun, FileResult):
            return begun
        claim, folder = begun
        with clock.stage("decode"):
            source = read_image(job.source, chunks_from_bytes, settings.max_pixels, inode=job.inode)
            stealth = stealth_in_pixels(source.rgb, source.alpha, source.bit_depth)
            generation = parse_generation(source.chunks, stealth=stealth)
        check_alpha_fits(job, source)
        if generation.facefix and not settings.overwrite:  # a renamed .fixed.png
            claim.release()
            return FileResult(
                job.source,
                job.output,
                Status.SKIPPED,
                "already a facefix output (use --overwrite to redo)",
                tool=generation.tool,
                seed=generation.seed,
            )
        opened = OpenFile(job, claim, source, generation, stealth, started, folder=folder)
        opened.seconds = time.perf_counter() - started
        return opened
    except BaseException as exc:
        if claim is None and isinstance(begun, tuple):  # a signal before it was unpacked
            claim = begun[0]
        if claim is not None:
            claim.release()
        if not isinstance(exc, Exception):
            raise
        return failure_result(job, exc, settings, started)


def write_fixed(
    file: OpenFile, fixed: FixedImage, settings: RunSettings, clock: StageClock = NO_CLOCK
) -> FileResult:
    """Step 3: write `fixed` with `file`'s metadata extended, atomically; release the claim."""
    begun = time.perf_counter() - file.seconds
    try:
        return finish_file(file, fixed, settings, clock)
    except Exception as exc:
        return failure_result(file.job, exc, settings, begun)
    finally:
        file.claim.release()


def abandon(file: OpenFile, exc: BaseException, settings: RunSettings) -> FileResult:
    """The result of a file whose fixing raised `exc`; releases its claim (and re-raises what
    ends the run, as `failure_result` does)."""
    file.claim.release()
    return failure_result(file.job, exc, settings, file.since())


def fix_file(
    job: Job,
    recipe: Recipe,
    settings: RunSettings,
    networks: Networks,
    clock: StageClock = NO_CLOCK,
) -> FileResult:
    """Fix one file under a claim; every per-file problem comes back as a failed (or crashed)
    result. Raises EnvironmentFault, SetupError and KeyboardInterrupt only."""
    opened = read_job(job, settings, clock)
    if isinstance(opened, FileResult):
        return opened
    begun = time.perf_counter()
    try:
        with clock.stage("fix"):
            fixed = fix_image(opened.source, recipe, networks)
        opened.seconds += time.perf_counter() - begun
    except BaseException as exc:
        opened.seconds += time.perf_counter() - begun
        if not isinstance(exc, Exception):
            opened.claim.release()
            raise
        return abandon(opened, exc, settings)
    return write_fixed(opened, fixed, settings, clock)


def output_attributes(source: SourceImage) -> dict[str, Any]:
    """`write_atomic`'s mode and owner for the output of `source`: the input's permission bits
    (masked by the umask when the file is made, as `cp` does), and, as root, its owner."""
    st = source.file_stat
    if st is None:
        return {}
    owner = (st.st_uid, st.st_gid) if safefs.euid() == 0 else None
    return {"mode": stat.S_IMODE(st.st_mode) & 0o777, "owner": owner}


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError:
        return False


def _type_name(exc: BaseException) -> str:
    """`KeyError`, `cv2.error`, `zlib.error`: the name a bug report needs."""
    kind = type(exc)
    return (
        kind.__qualname__
        if kind.__module__ == "builtins"
        else f"{kind.__module__}.{kind.__qualname__}"
    )


def _os_reason(exc: OSError) -> str:
    reason = exc.strerror or first_line(exc)
    if exc.errno == errno.ENOSPC:
        reason = "disk full"
    where = f" {display_path(exc.filename)}" if exc.filename else ""
    return f"{reason}:{where}" if where else reason
