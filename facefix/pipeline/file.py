"""`fix_file`: one input file to one output file. Reads, calls `fix_image`, writes the PNG with
its metadata atomically. Every per-file problem comes back as a failed result."""

from __future__ import annotations

import time

import torch

from facefix.errors import FacefixError, ImageError
from facefix.io.discover import Job
from facefix.io.read import read_image
from facefix.io.write import encode_png, write_atomic
from facefix.metadata import (
    output_chunks,
    parse_generation,
    stealth_in_pixels,
    stealth_written_back,
)
from facefix.networks.cache import Networks
from facefix.pipeline.image import fix_image
from facefix.pipeline.options import FixOptions
from facefix.pipeline.results import FileResult
from facefix.record import facefix_record


def fix_file(job: Job, options: FixOptions, networks: Networks) -> FileResult:
    """Fix one file; every per-file problem comes back as a failed result, never an exception."""
    started = time.perf_counter()
    result = FileResult(job.source, job.output, "failed")
    try:
        if job.output.resolve() == job.source.resolve():
            raise ImageError("output would overwrite the input")
        source = read_image(job.source)
        stealth = stealth_in_pixels(source.rgb, source.alpha, source.bit_depth)
        generation = parse_generation(source.chunks, stealth=stealth)
        result.tool, result.seed = generation.tool, generation.seed
        if generation.facefix and not options.overwrite:  # a renamed .fixed.png
            result.status, result.reason = (
                "skipped",
                "already a facefix output (use --overwrite to redo)",
            )
            return result
        fixed = fix_image(source, options, networks)
        record = facefix_record(fixed.operations, source.path.name, source.sha256)
        # Resampling destroys settings hidden in the pixels' low bits: carry them as text.
        chunks = output_chunks(source.chunks, fixed.operations, record, stealth=stealth)
        alpha = stealth_written_back(fixed.alpha, stealth, source.bit_depth)
        write_atomic(job.output, encode_png(fixed.rgb, alpha, source.bit_depth, chunks))
        result.status, result.faces = "fixed", fixed.faces
        notes = []
        if options.restore_with is not None and fixed.faces == 0:
            notes.append("no faces found; upscaled only" if options.upscales else "no faces found")
        if generation.stealth:  # the only copy of the settings may have been in the pixels
            notes.append(f"settings hidden in the pixels ({generation.stealth}) kept as text")
        result.reason = "; ".join(notes)
    except ImageError as exc:
        result.reason = str(exc)
    except torch.OutOfMemoryError:
        result.reason = "out of GPU memory; try a smaller --tile (e.g. --tile 256)"
    except FacefixError:
        raise  # setup problems (a model that will not load) stop the whole run
    except (ValueError, RuntimeError, MemoryError) as exc:
        result.reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    finally:
        result.seconds = time.perf_counter() - started
    return result
