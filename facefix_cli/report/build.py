"""Build a run's HTML report: `write_report` writes PATH.html and, beside it, PATH_files/ with
the thumbnails the page links to by relative URLs.

Everything a card shows comes from the output file (its pixels, its generation metadata and its
last `facefix` record, whose restoration lists each face's box and score) and from the
original it names, found beside the output, under `--originals` folders (outputs written to
`--output-dir`), or given by the run. So a report can be built after a
run (`facefix fix --report`, from the run's results) or any time later from the output files of
any format (`.fixed.png`, `.fixed.webp`, `.fixed.jpg`, `.fixed.avif`: `facefix report`), with
the same result. Guarantees: nothing is printed; outputs and originals
are only read; an output that cannot be read becomes a failed entry with a one-line reason
rather than an exception; the page is written atomically; thumbnails are made on the CPU after
the run, in a few threads (Pillow releases the GIL while it decodes, resizes and encodes).
"""

from __future__ import annotations

import os
import re
import stat
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, assert_never
from urllib.parse import quote

from PIL.Image import DecompressionBombError

from facefix_cli.errors import ImageError, ReportError, first_line
from facefix_cli.io import safefs
from facefix_cli.io.hashing import sha256_bytes, sha256_file
from facefix_cli.io.outputs import is_output_name, output_suffix_of
from facefix_cli.io.pngchunks import PngFormatError
from facefix_cli.io.write import write_atomic
from facefix_cli.metadata import (
    UnsupportedImageError,
    chunks_from_bytes,
    parse_generation,
)
from facefix_cli.operations import RESTORATIONS, Operation, RecordedFace
from facefix_cli.pipeline.results import FixSummary, Status
from facefix_cli.report import html, thumbnails

if TYPE_CHECKING:
    from facefix_cli.pipeline.settings import RunSettings

ReportProgress = Callable[[int, int], None]  # (cards done, cards in all)


@dataclass(frozen=True)
class OutputEntry:
    """One output (`.fixed.png`, `.fixed.webp`...) to show, with its original when the caller
    knows where it is."""

    output: Path
    original: Path | None = None  # None: the file the record names, beside the output
    seconds: float | None = None


OriginalsIndex = dict[str, list[Path]]  # file name -> the files of that name, in walk order


@dataclass
class ReportInputs:
    outputs: list[OutputEntry] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    originals: OriginalsIndex = field(default_factory=dict)  # where to look besides the outputs


@dataclass(frozen=True)
class RunDetails:
    """What the run knew that the outputs do not: its time, device, options and models."""

    seconds: float | None = None
    images_per_second: float | None = None
    device: str | None = None
    options: tuple[tuple[str, str], ...] = ()
    models: tuple[tuple[str, str], ...] = ()  # (file, sha256)
    fixed: int | None = None  # counts from the run; None: counted from the inputs
    skipped: int | None = None
    faces: int | None = None  # restored, as the run counted them (its log and summary)


@dataclass(frozen=True)
class ReportResult:
    path: Path
    thumbnails: Path
    images: int
    failures: tuple[html.Failure, ...]  # inputs the run or the report could not use, and why
    seconds: float  # building the report
    # Cards shown without a "before": their original was not found (see each card's note).
    without_original: int = 0

    @property
    def failed(self) -> int:
        return len(self.failures)


def thumbnail_folder(html_path: Path) -> Path:
    """`report.html` -> `report_files/`, as browsers save a page with its resources."""
    return html_path.with_name(html_path.stem + "_files")


def check_destination(html_path: Path) -> None:
    """Raise ReportError now if the report could not be written later (run before the work)."""
    folder = html_path.parent if str(html_path.parent) else Path(".")
    if html_path.is_dir():
        raise ReportError(
            f"--report: {html_path} is a folder; give a file name such as report.html"
        )
    if not folder.is_dir():
        raise ReportError(f"--report: no such folder: {folder}")
    if not os.access(folder, os.W_OK):
        raise ReportError(f"--report: cannot write to {folder}")


# --- what to show ------------------------------------------------------------------------------


def inputs_from_summary(summary: FixSummary) -> ReportInputs:
    """A run's results: a card per fixed file, then the failed and skipped files."""
    inputs = ReportInputs()
    for result in summary.results:
        match result.status:
            case Status.FIXED:
                if result.output is not None:
                    inputs.outputs.append(OutputEntry(result.output, result.source, result.seconds))
            case Status.FAILED | Status.CRASHED:
                inputs.failed.append((result.source, result.reason))
            case Status.SKIPPED | Status.PLANNED:
                inputs.skipped.append((result.source, result.reason or str(result.status)))
            case _:
                assert_never(result.status)
    return inputs


def inputs_from_paths(paths: Sequence[Path]) -> ReportInputs:
    """Output files of every format named, or found below the folders named (recursively,
    sorted)."""
    inputs = ReportInputs()
    for path in paths:
        if path.is_dir():
            found = sorted(
                p
                for p in path.rglob("*.fixed.*")
                if is_output_name(p.name)
                and p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
            inputs.outputs += [OutputEntry(p) for p in found]
        elif path.is_file():
            inputs.outputs.append(OutputEntry(path))
        else:
            inputs.failed.append((path, "no such file or folder"))
    return inputs


def index_originals(folders: Sequence[Path]) -> OriginalsIndex:
    """Every file below `folders` by name (hidden files and folders, and facefix outputs, left
    out), to find the originals of outputs that are not beside them (`fix --output-dir`).
    ReportError if a folder does not exist."""
    index: OriginalsIndex = {}
    for folder in folders:
        if not folder.is_dir():
            raise ReportError(f"--originals: no such folder: {folder}")
        for root, dirs, files in os.walk(folder):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(files):
                if not name.startswith(".") and not is_output_name(name):
                    index.setdefault(name, []).append(Path(root) / name)
    return index


def locate_original(
    output: Path,
    name: str,
    sha256: str | None,
    originals: OriginalsIndex,
    relative: str | None = None,
) -> Path:
    """The original of `output`, which its record names `name` (with the original's `sha256`):
    where the record says it was, relative to the output's folder (`fix --output-dir`), when
    a file is there; else the one file of that name under the originals folders; of several,
    the one with that SHA-256; otherwise the file beside the output (where `fix` without
    --output-dir leaves it)."""
    recorded = Path(os.path.normpath(output.parent / relative)) if relative else None
    if recorded is not None and recorded.is_file():
        return recorded
    beside = output.with_name(name)
    candidates = originals.get(name, [])
    if len(candidates) == 1:
        return candidates[0]
    if sha256:
        for candidate in candidates:
            try:
                if sha256_file(candidate) == sha256:
                    return candidate
            except OSError:
                continue
    if candidates and not beside.is_file():
        return candidates[0]  # changed since: the card says so
    if recorded is not None and not beside.is_file():
        return recorded  # not there: the card names where it was
    return beside


def run_details(summary: FixSummary, settings: RunSettings) -> RunDetails:
    """What a `fix` run knew: its summary (recipe rows, devices, model files) and settings."""
    rows = [*summary.recipe, *settings.rows(), ("weights", str(settings.weights_dir))]
    return RunDetails(
        seconds=summary.seconds,
        images_per_second=summary.images_per_second,
        device=summary.devices or None,
        options=tuple(rows),
        models=summary.models,
        fixed=summary.count(Status.FIXED),
        skipped=summary.count(Status.SKIPPED) + summary.count(Status.PLANNED),
        faces=summary.faces,
    )


# --- building ----------------------------------------------------------------------------------


def write_report(
    html_path: Path,
    inputs: ReportInputs,
    run: RunDetails | None = None,
    *,
    progress: ReportProgress | None = None,
    workers: int | None = None,
    clock: Callable[[], str] = lambda: time.strftime("%Y-%m-%d %H:%M:%S %Z"),
) -> ReportResult:
    """Write the page and its thumbnails; ReportError if they cannot be written."""
    started = time.perf_counter()
    run = run or RunDetails()
    check_destination(html_path)
    folder = thumbnail_folder(html_path)
    try:  # never into another user's link planted at the folder's name
        safefs.make_folders(folder.parent, Path(folder.name))
    except OSError as exc:
        raise ReportError(f"cannot create {folder}: {exc.strerror or exc}") from None
    workers = workers or min(4, os.cpu_count() or 1)
    total = len(inputs.outputs)
    cards: list[html.Card] = []
    failed = [html.Failure(str(path), reason) for path, reason in inputs.failed]
    models: dict[str, str] = dict(run.models)
    faces = 0
    without_original = 0
    recipes: dict[str, int] = {}  # the operations as asked for -> images (a report from files)
    written: set[str] = set()
    # The page is no more readable than the least readable image it shows (permission bits).
    page_mode = 0o666

    def build(job: tuple[int, OutputEntry]) -> tuple[html.Card | None, str, set[str], list, int]:
        index, entry = job
        try:
            card, files, operations, mode = _card(index, entry, html_path, folder, inputs.originals)
            return card, "", files, operations, mode
        except ReportError:
            raise
        except (ImageError, OSError, ValueError, DecompressionBombError) as exc:
            return None, _one_line(exc), set(), [], 0o666

    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        jobs = pool.map(build, enumerate(inputs.outputs))
        for done, (entry, (card, reason, files, operations, mode)) in enumerate(
            zip(inputs.outputs, jobs, strict=True), 1
        ):
            if card is None:
                failed.append(html.Failure(str(entry.output), reason))
            else:
                cards.append(card)
                page_mode &= mode
                faces += _restored(operations)
                without_original += card.before is None
                written |= files
                for operation in operations:
                    if operation.model and operation.sha256:
                        models.setdefault(operation.model, operation.sha256)
                    key = operation.describe(counts=False)  # the same settings, any face count
                    recipes[key] = recipes.get(key, 0) + 1
            if progress is not None:
                progress(done, total)
    finally:  # on Ctrl-C, drop the images not started rather than finish thousands
        pool.shutdown(wait=True, cancel_futures=True)
    _remove_stale(folder, written)
    summary = html.Summary(
        created=clock(),
        fixed=len(cards) if run.fixed is None else run.fixed,
        skipped=len(inputs.skipped) if run.skipped is None else run.skipped,
        failed=len(failed),
        faces=faces if run.faces is None else run.faces,
        seconds=run.seconds,
        images_per_second=run.images_per_second,
        device=run.device,
        options=run.options or tuple((_images(n), op) for op, n in recipes.items()),
        models=tuple(models.items()),
    )
    page = html.Page(
        summary,
        tuple(cards),
        tuple(failed),
        tuple(html.Failure(str(path), reason) for path, reason in inputs.skipped),
    )
    try:
        write_atomic(html_path, html.render(page).encode("utf-8"), mode=page_mode)
    except ImageError as exc:
        raise ReportError(str(exc)) from None
    return ReportResult(
        html_path,
        folder,
        len(cards),
        tuple(failed),
        time.perf_counter() - started,
        without_original,
    )


def _card(
    index: int, entry: OutputEntry, html_path: Path, folder: Path, originals: OriginalsIndex
) -> tuple[html.Card, set[str], list[Operation], int]:
    """The card of one output, its thumbnails written (each no more readable than the output
    and its original): the card, the thumbnails' names, the operations, and that mode."""
    data, mode = _read(entry.output)
    try:
        generation = parse_generation(chunks_from_bytes(data))
    except (PngFormatError, UnsupportedImageError) as exc:
        raise ImageError(str(exc)) from None
    if not generation.facefix:
        raise ImageError("not a facefix output (no facefix record)")
    record = generation.facefix[-1]
    notes: list[str] = []
    try:
        operations = [Operation.from_json(op) for op in record.get("operations", [])]
    except (TypeError, ValueError, KeyError, AttributeError):
        operations, notes = [], ["the facefix record's operations could not be read"]
    after_image = thumbnails.load(data)
    output_size = after_image.size

    source = record.get("source")
    source_info: dict[str, Any] = source if isinstance(source, dict) else {}
    original = entry.original
    if original is None and isinstance(source_info.get("file"), str):
        recorded = source_info.get("sha256")
        relative = source_info.get("path")
        original = locate_original(
            entry.output,
            Path(source_info["file"]).name,
            recorded if isinstance(recorded, str) else None,
            originals,
            relative if isinstance(relative, str) else None,
        )
    before_image = None
    if original is None:
        notes.append("the record names no original")
    elif not original.is_file():
        notes.append(
            f"original not found: {original} (outputs written elsewhere: give --originals DIR)"
        )
    else:
        original_data, original_mode = _read(original)
        mode &= original_mode
        if source_info.get("sha256") and sha256_bytes(original_data) != source_info["sha256"]:
            notes.append("the original has changed since it was fixed (SHA-256 differs)")
        before_image = thumbnails.load(original_data)

    name = entry.output.name
    stem = f"{index:05d}-{_slug(name.removesuffix(output_suffix_of(name) or ''))}"
    files: set[str] = set()

    def save(image, name: str) -> html.Thumb:
        file_name = f"{stem}-{name}{thumbnails.EXTENSION}"
        # not flushed to disk one by one: every report writes its thumbnails anew
        write_atomic(folder / file_name, thumbnails.encode(image), mode=mode, sync=False)
        files.add(file_name)
        url = quote(f"{folder.name}/{file_name}")
        return html.Thumb(url, image.width, image.height)

    size = thumbnails.fit_within(output_size, thumbnails.COMPARE_SIDE)
    after = save(thumbnails.resized(after_image, size), "after")
    before = None
    if before_image is not None:
        before = save(thumbnails.resized(before_image, size), "before")

    faces: list[html.FaceView] = []
    for number, detection in enumerate(_detections(operations), 1):
        try:
            box = thumbnails.face_box(detection.box, output_size)
        except ValueError as exc:
            notes.append(f"face {number}: {exc}")
            continue
        face_size = thumbnails.fit(
            (round(box[2] - box[0]), round(box[3] - box[1])), thumbnails.FACE_SIDE
        )
        face_after = save(thumbnails.resized(after_image, face_size, box), f"face{number}-after")
        face_before = None
        if before_image is not None:
            source_box = thumbnails.scale_box(box, output_size, before_image.size)
            face_before = save(
                thumbnails.resized(before_image, face_size, source_box), f"face{number}-before"
            )
        x0, y0, x1, y1 = (round(v) for v in detection.box)
        faces.append(
            html.FaceView(face_after, face_before, detection.score, (x0, y0, x1, y1), number)
        )

    card = html.Card(
        name=_shown_path(entry.output),
        output_url=_relative_url(entry.output, html_path.parent),
        source=_shown_path(original) if original is not None else "?",
        after=after,
        before=before,
        output_size=output_size,
        source_size=before_image.size if before_image is not None else None,
        faces=tuple(faces),
        generation=tuple(generation.rows(output_size)),
        prompt=" ".join(p for p in (generation.prompt, generation.negative_prompt) if p),
        operations=tuple(op.describe() for op in operations),
        seconds=entry.seconds,
        notes=tuple(notes),
    )
    return card, files, operations, mode


def _read(path: Path) -> tuple[bytes, int]:
    """The file's bytes and permission bits, read as `safefs.read_input` does (no link of
    another user's followed)."""
    try:
        data, st = safefs.read_input(path)
        return data, stat.S_IMODE(st.st_mode)
    except FileNotFoundError:
        raise ImageError("file not found") from None
    except OSError as exc:
        raise ImageError(f"cannot read: {exc.strerror or exc}") from None


def _detections(operations: Sequence[Operation]) -> list[RecordedFace]:
    """The faces of the last restoration, in the output's pixels: a restoration before an
    upscale (`--order restore-first`) recorded them in the original's pixels, so they are
    scaled by the upscales that followed it."""
    last = max((i for i, op in enumerate(operations) if op.type in RESTORATIONS), default=None)
    if last is None:
        return []
    scale = 1.0
    for operation in operations[last + 1 :]:
        if operation.type == "esrgan" and operation.scale:
            scale *= operation.scale
    detections = list(operations[last].detections or ())
    if scale == 1.0:
        return detections
    return [
        RecordedFace(
            box=tuple((v + 0.5) * scale - 0.5 for v in face.box),  # type: ignore[arg-type]
            score=face.score,
            landmarks=tuple(
                ((x + 0.5) * scale - 0.5, (y + 0.5) * scale - 0.5) for x, y in face.landmarks
            ),
        )
        for face in detections
    ]


def _restored(operations: Sequence[Operation]) -> int:
    """Faces the output's last restoration restored, as its record counts them."""
    restorations = [op for op in operations if op.type in RESTORATIONS]
    return (restorations[-1].faces or 0) if restorations else 0


def _images(count: int) -> str:
    return f"{count} image{'s' if count != 1 else ''}"


def _remove_stale(folder: Path, keep: set[str]) -> None:
    """Thumbnails of an earlier report at the same path that this one does not use."""
    pattern = re.compile(r"^\d{5}-.*\.(webp|jpg)$")
    for path in folder.iterdir():
        if path.is_file() and pattern.match(path.name) and path.name not in keep:
            path.unlink(missing_ok=True)


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:60] or "image"


def _shown_path(path: Path) -> str:
    return str(path)


def _relative_url(path: Path, base: Path) -> str:
    try:
        relative = Path(os.path.relpath(path.resolve(), base.resolve()))
    except ValueError:  # another drive on Windows: no relative path exists
        return path.resolve().as_uri()
    return quote(relative.as_posix())


def _one_line(exc: BaseException) -> str:
    text = first_line(exc, type(exc).__name__)
    return text if isinstance(exc, ImageError) else f"{type(exc).__name__}: {text}"
