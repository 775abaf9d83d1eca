"""The `fix` job: the recipe (`FixOptions`), the per-image work (`fix_image`), one file
(`fix_file`), the executors that schedule many files, and the run around them (`fix`)."""

from facefix.pipeline.file import fix_file
from facefix.pipeline.image import FixedImage, fix_image, fix_images
from facefix.pipeline.options import FixOptions
from facefix.pipeline.results import FileResult, FixEvents, FixSummary, SilentEvents, Status
from facefix.pipeline.run import fix

__all__ = [
    "FileResult",
    "FixEvents",
    "FixOptions",
    "FixSummary",
    "FixedImage",
    "SilentEvents",
    "Status",
    "fix",
    "fix_file",
    "fix_image",
    "fix_images",
]
