"""The `fix` job: the recipe (`FixOptions`), the per-image work (`fix_image`), one file
(`fix_file`), the executors that schedule many files, and the run around them (`fix`).

Names are imported on first use: `FixOptions` or `FixSummary` alone must not pull in torch and
every spandrel architecture (seconds), which the CLI's option checks and error paths need not."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# name -> the module of this package that defines it
_EXPORTS = {
    "begin_file": "file",
    "failure_result": "file",
    "finish_file": "file",
    "fix_file": "file",
    "read_source": "file",
    "FixedImage": "image",
    "fix_image": "image",
    "fix_images": "image",
    "FixOptions": "options",
    "FileResult": "results",
    "FixEvents": "results",
    "FixSummary": "results",
    "RunInfo": "results",
    "SilentEvents": "results",
    "Status": "results",
    "fix": "run",
}

__all__ = [
    "begin_file",
    "failure_result",
    "finish_file",
    "fix_file",
    "read_source",
    "FixedImage",
    "fix_image",
    "fix_images",
    "FixOptions",
    "FileResult",
    "FixEvents",
    "FixSummary",
    "RunInfo",
    "SilentEvents",
    "Status",
    "fix",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:
    # Explicit re-exports (`x`) for type checkers; at run time `__getattr__` imports them.
    from facefix_cli.pipeline.file import (
        begin_file,
        failure_result,
        finish_file,
        fix_file,
        read_source,
    )
    from facefix_cli.pipeline.image import (
        FixedImage,
        fix_image,
        fix_images,
    )
    from facefix_cli.pipeline.options import FixOptions
    from facefix_cli.pipeline.results import (
        FileResult,
        FixEvents,
        FixSummary,
        RunInfo,
        SilentEvents,
        Status,
    )
    from facefix_cli.pipeline.run import fix
