"""The `fix` job: the recipe (`FixOptions`), the per-image work (`fix_image`), one file
(`fix_file`), the executors that schedule many files, and the run around them (`fix`)."""

from facefix.pipeline.file import (
    begin_file,
    failure_result,
    finish_file,
    fix_file,
    read_source,
)
from facefix.pipeline.image import FixedImage, fix_image, fix_images
from facefix.pipeline.options import FixOptions
from facefix.pipeline.results import (
    FileResult,
    FixEvents,
    FixSummary,
    RunInfo,
    SilentEvents,
    Status,
)
from facefix.pipeline.run import fix

__all__ = [
    "FileResult",
    "FixEvents",
    "FixOptions",
    "FixSummary",
    "RunInfo",
    "FixedImage",
    "SilentEvents",
    "begin_file",
    "failure_result",
    "finish_file",
    "read_source",
    "Status",
    "fix",
    "fix_file",
    "fix_image",
    "fix_images",
]
