"""`RunSettings`: how a `fix` run works through its files, apart from what it does to pixels
(that is the `Recipe`). Inputs and outputs, limits, where weights come from, which devices run
the networks, and which executor schedules the files. Frozen and picklable, like the recipe:
the Ray executor sends both to its workers.

Changing a setting never changes an output's pixels: `workers`, `threads`, `batch_size` (within the
batch guarantee of `pipeline.image`), `png_level` (lossless at every level) and the executor
only change how fast outputs appear. `output_format` and `quality` are how the pixels are
stored (`io.outputs`): a lossy format changes the stored pixels, never what was computed."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from facefix_cli.errors import SetupError
from facefix_cli.io.defaults import DEFAULT_PNG_LEVEL
from facefix_cli.io.header import DEFAULT_MAX_PIXELS
from facefix_cli.io.outputs import FORMAT_CHOICES, FormatChoice, OutputFormat, check_quality
from facefix_cli.networks.names import parse_devices


@dataclass(frozen=True)
class TimeLimit:
    """Start no new file once `seconds` have passed since `since` (a `time.monotonic()` value:
    by default when the limit was made). `text` names it in the stop line (`--max-time 15m`)."""

    seconds: float
    text: str
    since: float = field(default_factory=lambda: time.monotonic())  # looked up per call

    def passed(self) -> bool:
        return time.monotonic() - self.since >= self.seconds

    @classmethod
    def from_process_start(cls, seconds: float, text: str) -> TimeLimit:
        """A limit that counts from when this process started, not from now (`--max-time`:
        a cron run's interval includes its imports)."""
        from facefix_cli.pipeline.clock import process_age

        return cls(seconds, text, time.monotonic() - process_age())


@dataclass(frozen=True)
class RunSettings:
    weights_dir: Path
    device: str = "auto"  # one device, or several comma-separated (one GPU stage each)
    output_dir: Path | None = None
    overwrite: bool = False
    retry_failed: bool = False  # inputs set aside after failing FAIL_LIMIT runs (io.marks) too
    dry_run: bool = False
    recursive: bool = True
    extensions: tuple[str, ...] = ("png",)
    offline: bool = False
    mirrors: tuple[str, ...] = ()
    max_pixels: int = DEFAULT_MAX_PIXELS  # refuse larger images from the header; 0 = no limit
    workers: int | None = None  # decode+encode threads; 0 = sequential; None = from the cores
    # Threads the network stage and the workers share (--threads); None = the cores this
    # process may use (`pipeline.threads`).
    threads: int | None = None
    batch_size: int | None = None  # images per GPU pass; None = from the device and image size
    png_level: int = DEFAULT_PNG_LEVEL  # zlib level of the outputs, 0-9; all lossless
    output_format: FormatChoice = "png"  # --format: png, webp, jpeg, avif, or same as the input
    quality: int | None = None  # --quality 1-100 of the lossy formats; None: each one's default
    time_limit: TimeLimit | None = None  # --max-time
    # None: this process. `local`, `auto` or `ray://host:port`: Ray workers (`--ray`).
    ray_address: str | None = None

    def validate(self) -> None:
        """Raise SetupError for settings no run can satisfy, before any work starts."""
        if self.max_pixels < 0:
            raise SetupError("--max-pixels must be 0 (no limit) or a positive number")
        if self.workers is not None and self.workers < 0:
            raise SetupError("--workers must be 0 (sequential) or a positive number of threads")
        if self.threads is not None and self.threads < 1:
            raise SetupError("--threads must be at least 1")
        if self.batch_size is not None and self.batch_size < 1:
            raise SetupError("--batch-size must be at least 1")
        if not 0 <= self.png_level <= 9:
            raise SetupError(f"--png-level must be 0 to 9, not {self.png_level}")
        if self.output_format not in FORMAT_CHOICES:
            choices = ", ".join(FORMAT_CHOICES)
            raise SetupError(f"--format must be one of {choices}, not {self.output_format!r}")
        problem = check_quality(self.quality)
        if problem:
            raise SetupError(problem)
        if self.output_format != "same" and not OutputFormat(self.output_format).available():
            raise SetupError(
                f"--format {self.output_format}: this Pillow cannot encode it "
                f"(PIL.features.check({OutputFormat(self.output_format).spec.pillow_feature!r}) "
                "is False); install a Pillow wheel built with it, or choose another format"
            )
        parse_devices(self.device)  # the syntax; whether the devices exist is checked at the run

    def rows(self) -> list[tuple[str, str]]:
        """The settings that shape what a run touches, as (label, value) rows."""
        rows = [("max-pixels", str(self.max_pixels))]
        if self.output_dir is not None:
            rows.append(("output-dir", str(self.output_dir)))
        if self.overwrite:
            rows.append(("overwrite", "yes"))
        if self.retry_failed:
            rows.append(("retry-failed", "yes"))
        if self.output_format != "png":
            rows.append(("format", self.output_format))
            if self.quality is not None:
                rows.append(("quality", str(self.quality)))
        return rows
