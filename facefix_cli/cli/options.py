"""Every command-line option, declared once as a typed alias, and the pure mapping from their
values to a `Recipe` and `RunSettings`.

A command declares an option as `upscale: UpscaleOption = Upscale.none`: the flag names, the
help and the checks live here, the default in the signature (typer's `Annotated` style), so
`fix` and any later command that fixes files (`watch`) parse the same flags the same way.

`recipe_from_options` and `settings_from_options` take the parsed values and nothing else: no
environment, no files, no console. They raise `SetupError` (exit 2) for a command line no run
can follow; option interplay (usage errors and warnings about options that cannot apply) belongs
beside them, in `recipe_from_options`, so every command gets the same rules."""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from facefix_cli.errors import SetupError
from facefix_cli.io.defaults import DEFAULT_PNG_LEVEL
from facefix_cli.io.header import DEFAULT_MAX_PIXELS
from facefix_cli.io.outputs import FORMAT_CHOICES, OutputFormat
from facefix_cli.pipeline.settings import RunSettings, TimeLimit
from facefix_cli.recipe import (
    DEFAULT_DETECT_SIZE,
    DEFAULT_FACE_THRESHOLD,
    Recipe,
    RestorerName,
    parse_min_face,
)
from facefix_cli.weights import registry


class Precision(StrEnum):
    auto = "auto"
    fp32 = "fp32"
    fp16 = "fp16"
    bf16 = "bf16"


class Order(StrEnum):
    upscale_first = "upscale-first"
    restore_first = "restore-first"


class Format(StrEnum):
    png = "png"
    webp = "webp"
    webp_lossless = "webp-lossless"
    jpeg = "jpeg"
    avif = "avif"
    same = "same"


class Upscale(StrEnum):
    none = "1"
    x2 = "2"
    x4 = "4"


# The choices come from the registry, so a new version or detector there is a new choice here.
GfpganVersion = StrEnum("GfpganVersion", {v: v for v in registry.GFPGAN_VERSIONS})  # type: ignore[misc]
Detector = StrEnum("Detector", {name: name for name in registry.DETECTORS})  # type: ignore[misc]

# Defaults that the signatures of the commands and `recipe_from_options` share.
DEFAULT_UPSCALE_STRENGTH = 0.75
DEFAULT_FIDELITY = 0.5
DEFAULT_RESTORE_STRENGTH = 1.0
DEFAULT_GFPGAN_VERSION = "1.4"
DEFAULT_DETECTOR = "retinaface_resnet50"

# -- options every command that touches the weights folder shares ---------------------------------

WeightsDirOption = Annotated[
    Path | None,
    typer.Option(
        "--weights-dir",
        help="Model folder (default: $FACEFIX_WEIGHTS_DIR, facefix.toml, user cache).",
    ),
]
ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="A facefix.toml to read weights_dir from.")
]

# -- inputs --------------------------------------------------------------------------------------

PathsArgument = Annotated[
    list[Path], typer.Argument(help="PNG files or folders (walked recursively).")
]

# -- the recipe: what the pixels depend on -------------------------------------------------------

UpscaleOption = Annotated[
    Upscale, typer.Option("--upscale", "-U", help="Upscale factor: 1 (none), 2 or 4.")
]
UpscaleStrengthOption = Annotated[
    float,
    typer.Option(
        "--upscale-strength",
        min=0.0,
        max=1.0,
        help="Blend of Real-ESRGAN with a plain bicubic resize.",
    ),
]
GfpganOption = Annotated[
    float | None,
    typer.Option(
        "--gfpgan",
        "-G",
        metavar="STRENGTH",
        help="Restore faces with GFPGAN at this strength (0-1].",
    ),
]
CodeformerOption = Annotated[
    float | None,
    typer.Option(
        "--codeformer",
        metavar="STRENGTH",
        help="Restore faces with CodeFormer at this strength (0-1].",
    ),
]
FidelityOption = Annotated[
    float,
    typer.Option(
        "--fidelity",
        "-cf",
        min=0.0,
        max=1.0,
        help="CodeFormer fidelity weight: 0 restores most, 1 keeps most.",
    ),
]
GfpganModelOption = Annotated[GfpganVersion, typer.Option("--gfpgan-model", help="GFPGAN version.")]
UpscalerOption = Annotated[
    Path | None,
    typer.Option(
        "--upscaler",
        help="Any super-resolution checkpoint spandrel loads, instead of Real-ESRGAN.",
    ),
]
RestorerOption = Annotated[
    Path | None,
    typer.Option(
        "--restorer",
        help="Restore faces with this model file instead: a spandrel checkpoint (GFPGAN, "
        "CodeFormer, RestoreFormer) or an .onnx file (GPEN, ...; needs facefix[onnx]).",
    ),
]
RestoreStrengthOption = Annotated[
    float,
    typer.Option(
        "--restore-strength",
        metavar="STRENGTH",
        help="With --restorer: its strength (0-1].",
    ),
]
TileOption = Annotated[
    int | None,
    typer.Option(
        "--tile",
        help="Upscale in tiles of N pixels (0 = whole image; default depends on the device).",
    ),
]
PrecisionOption = Annotated[
    Precision,
    typer.Option(
        "--precision",
        help="auto (fp16 upscaler on CUDA, bf16 on a CPU with native bf16, fp32 elsewhere), "
        "fp32, fp16 or bf16.",
    ),
]
HalfOption = Annotated[bool, typer.Option("--half", help="Same as --precision fp16.")]
OnlyCenterFaceOption = Annotated[
    bool, typer.Option("--only-center-face", help="Restore only the most central face.")
]
DetectorOption = Annotated[Detector, typer.Option("--detector", help="RetinaFace backbone.")]
FaceThresholdOption = Annotated[
    float,
    typer.Option(
        "--face-threshold",
        metavar="CONFIDENCE",
        help="Restore faces the detector is at least this sure of (0-1).",
    ),
]
MinFaceOption = Annotated[
    str | None,
    typer.Option(
        "--min-face",
        metavar="PX|SHAREx",
        help="Skip faces smaller than this: pixels of the output (64), or a share of the "
        "image's largest face (0.3x).",
    ),
]
MaxFacesOption = Annotated[
    int | None,
    typer.Option("--max-faces", min=1, metavar="N", help="Restore at most the N largest faces."),
]
DetectSizeOption = Annotated[
    int,
    typer.Option(
        "--detect-size",
        min=0,
        metavar="PX",
        help="Look for faces on a copy of at most this long side (0: always full size).",
    ),
]
OrderOption = Annotated[
    Order,
    typer.Option(
        "--order",
        help="upscale-first (restore the faces of the upscaled image) or restore-first.",
    ),
]

# -- run settings: how files are found, written and scheduled ------------------------------------

DeviceOption = Annotated[
    str,
    typer.Option(
        "--device",
        help="auto, cpu, cuda, cuda:N or mps; several GPUs: cuda (all visible) or cuda:0,cuda:1.",
    ),
]
WorkersOption = Annotated[
    int | None,
    typer.Option(
        "--workers",
        min=0,
        help="Decode+encode threads beside the GPU stage (default: cores - 1, at most 8, on a "
        "GPU; none on the CPU alone); 0 = everything in one thread, one file at a time.",
    ),
]
ThreadsOption = Annotated[
    int | None,
    typer.Option(
        "--threads",
        min=1,
        help="Threads the networks and the workers share, never more (default: the cores "
        "this process may use, or OMP_NUM_THREADS).",
    ),
]
BatchSizeOption = Annotated[
    int | None,
    typer.Option(
        "--batch-size",
        min=1,
        help="Images of one size per GPU pass (default: 1 on the CPU, from free memory on CUDA).",
    ),
]
OutputDirOption = Annotated[
    Path | None,
    typer.Option(
        "--output-dir",
        help="Write outputs here, mirroring the input layout, instead of beside the inputs.",
    ),
]
OverwriteOption = Annotated[
    bool,
    typer.Option(
        "--overwrite",
        help="Redo files whose output already exists, and those an earlier run found no "
        "face in or set aside.",
    ),
]
RetryFailedOption = Annotated[
    bool,
    typer.Option(
        "--retry-failed",
        help="Try again the files set aside after failing 3 runs in a row.",
    ),
]
FormatOption = Annotated[
    Format | None,
    typer.Option(
        "--format",
        help="Output format: png (NAME.fixed.png), webp, webp-lossless (.fixed.webp), jpeg "
        "(.fixed.jpg), avif, or same as each input; the metadata is kept in each. Default: "
        "facefix.toml's format, else png.",
        show_default=False,
    ),
]
QualityOption = Annotated[
    int | None,
    typer.Option(
        "--quality",
        min=1,
        max=100,
        metavar="1-100",
        help="Quality of lossy webp/jpeg/avif outputs (default: facefix.toml's quality, else "
        "webp 90, jpeg 95, avif 80). PNG is lossless.",
        show_default=False,
    ),
]
DryRunOption = Annotated[
    bool, typer.Option("--dry-run", help="List what would be done; load no model.")
]
RecursiveOption = Annotated[
    bool, typer.Option("--recursive/--no-recursive", help="Walk folders recursively.")
]
ExtOption = Annotated[
    str, typer.Option("--ext", help="Input types, comma-separated: png, jpg, webp.")
]
OfflineOption = Annotated[
    bool,
    typer.Option(
        "--offline",
        envvar="FACEFIX_OFFLINE",
        help="Never download; fail if weights are missing.",
    ),
]
MirrorOption = Annotated[
    list[str], typer.Option("--mirror", help="Download missing weights from this URL or folder.")
]
MaxPixelsOption = Annotated[
    int,
    typer.Option(
        "--max-pixels",
        min=0,
        help="Refuse images whose header declares more pixels than this (0: no limit).",
    ),
]
PngLevelOption = Annotated[
    int,
    typer.Option(
        "--png-level",
        min=0,
        max=9,
        metavar="0-9",
        help="PNG compression of the outputs, lossless at every level: 1 writes ~3.5x faster "
        "than 6 for files ~16% larger; 9 is smallest and slowest.",
    ),
]
MaxTimeOption = Annotated[
    str | None,
    typer.Option(
        "--max-time",
        metavar="DURATION",
        help="Start no new file after this long: seconds, or 90s, 15m, 2h. Exit 0.",
    ),
]
RayOption = Annotated[
    bool,
    typer.Option(
        "--ray",
        help="Run on Ray workers: one per GPU (per CPU with --device cpu). Needs facefix[ray].",
    ),
]
RayAddressOption = Annotated[
    str | None,
    typer.Option(
        "--ray-address",
        metavar="ADDRESS",
        help="With --ray: local (default: start Ray on this machine), auto (the cluster this "
        "node belongs to) or ray://HOST:PORT. Implies --ray.",
    ),
]

# -- what the command prints ---------------------------------------------------------------------

ReportOption = Annotated[
    Path | None,
    typer.Option(
        "--report",
        metavar="PATH.html",
        help="Write an HTML before/after report of the run (thumbnails in PATH_files/).",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON summary on stdout.")]
QuietOption = Annotated[
    bool,
    typer.Option(
        "--quiet",
        "-q",
        help="Only failures, warnings and the summary; nothing at all when nothing was done "
        "(cron mails only what matters).",
    ),
]
VerboseOption = Annotated[bool, typer.Option("--verbose", "-v", help="Log each file as it starts.")]


def recipe_from_options(
    *,
    upscale: Upscale | str | int = Upscale.none,
    upscale_strength: float = DEFAULT_UPSCALE_STRENGTH,
    gfpgan: float | None = None,
    codeformer: float | None = None,
    fidelity: float = DEFAULT_FIDELITY,
    gfpgan_model: str = DEFAULT_GFPGAN_VERSION,
    upscaler: Path | None = None,
    restorer: Path | None = None,
    restore_strength: float = DEFAULT_RESTORE_STRENGTH,
    tile: int | None = None,
    precision: str = Precision.auto,
    half: bool = False,
    only_center_face: bool = False,
    detector: str = DEFAULT_DETECTOR,
    face_threshold: float = DEFAULT_FACE_THRESHOLD,
    min_face: str | None = None,
    max_faces: int | None = None,
    detect_size: int = DEFAULT_DETECT_SIZE,
    order: str = Order.upscale_first,
    warnings: list[str] | None = None,
) -> Recipe:
    """The recipe the recipe options ask for; SetupError for options that contradict each
    other or cannot apply (`INTERPLAY`), and the one-line warnings for options that are
    ignored appended to `warnings`. The recipe's own range checks are `Recipe.validate`'s, run
    by the library.

    Option interplay is decided here, so every command that takes these options follows the
    same rules; the README's "Options that go together" table is `INTERPLAY`."""
    if half and precision not in (Precision.auto, Precision.fp16):
        raise SetupError(f"--half means --precision fp16; it contradicts --precision {precision}")
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
    strength = gfpgan if gfpgan is not None else (codeformer or 0.0)
    if restorer is not None:
        restore_with, strength = "restorer", restore_strength
    min_face_px, min_face_share = (0.0, 0.0) if min_face is None else parse_min_face(min_face)
    if min_face is not None and 0 < min_face_px < 1:
        raise SetupError(
            f"--min-face {min_face}: faces are at least a pixel; for a share of the largest "
            f"face write {min_face.strip()}x"
        )
    notes = _interplay(
        upscales=str(upscale) != Upscale.none or upscaler is not None,
        restore_with=restore_with,
        given={
            "--upscale-strength": upscale_strength != DEFAULT_UPSCALE_STRENGTH,
            "--fidelity": fidelity != DEFAULT_FIDELITY,
            "--gfpgan-model": str(gfpgan_model) != DEFAULT_GFPGAN_VERSION,
            "--restore-strength": restore_strength != DEFAULT_RESTORE_STRENGTH,
            "--tile": tile is not None,
            "--only-center-face": only_center_face,
            "--detector": str(detector) != DEFAULT_DETECTOR,
            "--face-threshold": face_threshold != DEFAULT_FACE_THRESHOLD,
            "--min-face": min_face is not None,
            "--max-faces": max_faces is not None,
            "--detect-size": detect_size != DEFAULT_DETECT_SIZE,
            "--order": Order(str(order)) is not Order.upscale_first,
        },
    )
    if warnings is not None:
        warnings.extend(notes)
    return Recipe(
        scale=int(Upscale(str(upscale)).value),
        upscale_strength=upscale_strength,
        restore_with=restore_with,
        restore_strength=strength,
        fidelity=fidelity,
        gfpgan_version=str(gfpgan_model),
        upscaler_path=upscaler,
        tile=tile,
        precision="fp16" if half else Precision(str(precision)).value,
        only_center_face=only_center_face,
        detector=str(detector),
        face_threshold=face_threshold,
        min_face=min_face_px,
        min_face_share=min_face_share,
        max_faces=max_faces,
        detect_size=detect_size,
        order="restore-first" if Order(str(order)) is Order.restore_first else "upscale-first",
        restorer_path=restorer,
    )


# Options that apply only with others: (option, what it needs, verdict, why). The README's
# "Options that go together" table shows these rows; a test compares the two.
FACE_CHOICES = (
    "--only-center-face",
    "--max-faces",
    "--min-face",
    "--face-threshold",
    "--detector",
    "--detect-size",
)
INTERPLAY: tuple[tuple[str, str, str, str], ...] = (
    (
        "--fidelity",
        "--codeformer or --restorer",
        "error",
        "it is CodeFormer's fidelity weight, or a --restorer model's that takes one",
    ),
    ("--gfpgan-model", "--gfpgan", "error", "it chooses GFPGAN's version"),
    (
        "--restore-strength",
        "--restorer",
        "error",
        "it is --restorer's strength; GFPGAN's and CodeFormer's follow --gfpgan and --codeformer",
    ),
    (
        "--upscale-strength",
        "--upscale 2|4 or --upscaler",
        "error",
        "it blends the upscaler's output with a plain resize",
    ),
    *(
        (name, "--gfpgan, --codeformer or --restorer", "error", "it chooses the faces restored")
        for name in FACE_CHOICES
    ),
    ("--min-face below 1", "an x (0.3x)", "error", "a face is at least a pixel: 0.3 means 0.3x"),
    ("--max-faces", "no --only-center-face", "warning", "--only-center-face restores one face"),
    ("--tile", "--upscale 2|4 or --upscaler", "warning", "tiles split the upscale only"),
    (
        "--order restore-first",
        "an upscale and a face restorer",
        "warning",
        "with one step there is no order",
    ),
    (
        "--quality",
        "--format webp, jpeg, avif or same",
        "warning",
        "PNG and lossless WebP keep every value",
    ),
    ("--png-level", "--format png or same", "warning", "it is PNG's compression level"),
)


def _interplay(upscales: bool, restore_with: str | None, given: dict[str, bool]) -> list[str]:
    """SetupError for the first option given that cannot apply (INTERPLAY's errors); the
    warnings for those that are ignored."""
    needs_ok = {
        "--codeformer or --restorer": restore_with in ("codeformer", "restorer"),
        "--gfpgan": restore_with == "gfpgan",
        "--restorer": restore_with == "restorer",
        "--upscale 2|4 or --upscaler": upscales,
        "--gfpgan, --codeformer or --restorer": restore_with is not None,
    }
    for option, needs, verdict, why in INTERPLAY:
        if verdict == "error" and given.get(option) and not needs_ok[needs]:
            raise SetupError(f"{option} does nothing without {needs}: {why}")
    warnings = []
    if given["--max-faces"] and given["--only-center-face"]:
        warnings.append("--max-faces is ignored: --only-center-face restores one face")
    if given["--tile"] and not upscales:
        warnings.append("--tile is ignored: there is no upscale to split into tiles")
    if given["--order"] and not (upscales and restore_with is not None):
        warnings.append(
            "--order restore-first is ignored: it orders an upscale and a face restoration"
        )
    return warnings


def settings_from_options(
    *,
    weights_dir: Path,
    device: str = "auto",
    output_dir: Path | None = None,
    overwrite: bool = False,
    retry_failed: bool = False,
    dry_run: bool = False,
    recursive: bool = True,
    ext: str = "png",
    offline: bool = False,
    mirror: list[str] | tuple[str, ...] = (),
    max_pixels: int = DEFAULT_MAX_PIXELS,
    workers: int | None = None,
    threads: int | None = None,
    batch_size: int | None = None,
    png_level: int = DEFAULT_PNG_LEVEL,
    output_format: str = "png",
    quality: int | None = None,
    max_time: str | None = None,
    ray: bool = False,
    ray_address: str | None = None,
    warnings: list[str] | None = None,
) -> RunSettings:
    """The run settings the settings options ask for. `weights_dir` is already resolved
    (`config.resolve_weights_dir`: it reads the environment and facefix.toml, so it is the
    caller's); SetupError for a malformed `--max-time`. `warnings`, when given, receives one
    line for each option that cannot apply to the outputs' format (INTERPLAY's last rows)."""
    if warnings is not None and output_format in FORMAT_CHOICES and output_format != "same":
        spec = OutputFormat(output_format).spec
        if quality is not None and not spec.lossy:
            warnings.append(
                f"--quality {quality} is ignored: {output_format} outputs keep every value"
            )
        if png_level != DEFAULT_PNG_LEVEL and spec.carrier != "png chunks":
            warnings.append(f"--png-level {png_level} is ignored: the outputs are {output_format}")
    return RunSettings(
        weights_dir=weights_dir,
        device=device,
        output_dir=output_dir,
        overwrite=overwrite,
        retry_failed=retry_failed,
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
        output_format=output_format,  # type: ignore[arg-type]  # RunSettings.validate checks it
        quality=quality,
        time_limit=(
            None
            if max_time is None
            else TimeLimit.from_process_start(parse_duration(max_time), f"--max-time {max_time}")
        ),
        # --ray alone starts Ray on this machine; --ray-address names a cluster to join.
        ray_address=ray_address or ("local" if ray else None),
    )


def parse_duration(text: str) -> float:
    """Seconds from `90`, `90s`, `15m` or `2h`; SetupError otherwise."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", text.lower())
    if match is None or float(match.group(1)) <= 0:
        raise SetupError(f"--max-time {text!r}: expected a duration such as 3600, 90s, 15m or 2h")
    return float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)]
