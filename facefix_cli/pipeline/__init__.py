"""The `fix` job: the run's settings (`RunSettings`; the recipe is `facefix_cli.recipe.Recipe`),
the per-image work (`fix_image(s)`), the per-file steps every executor calls (`read_job`,
`write_fixed`, `abandon`, `fix_file`), the executors, the `FixSession` that holds the networks
and fixes lists of jobs, and the two runs around it: `fix` (a batch) and `watch` (a service).

Names are imported on first use: `RunSettings` or `FixSummary` alone must not pull in torch and
every spandrel architecture (seconds), which the CLI's option checks and error paths need not."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# name -> the module of this package that defines it
_EXPORTS = {
    "Executor": "executors",
    "Work": "executors",
    "choose_executor": "executors",
    "OpenFile": "file",
    "abandon": "file",
    "failure_result": "file",
    "fix_file": "file",
    "read_job": "file",
    "write_fixed": "file",
    "FixedImage": "image",
    "fix_image": "image",
    "fix_images": "image",
    "FileResult": "results",
    "FixEvents": "results",
    "FixSummary": "results",
    "RunStart": "results",
    "Status": "results",
    "StopReason": "results",
    "fix": "run",
    "FixSession": "session",
    "RunSettings": "settings",
    "TimeLimit": "settings",
    "WatchSummary": "watch",
    "watch": "watch",
}

__all__ = [
    "Executor",
    "FileResult",
    "FixEvents",
    "FixSummary",
    "FixSession",
    "FixedImage",
    "OpenFile",
    "RunSettings",
    "RunStart",
    "Status",
    "StopReason",
    "TimeLimit",
    "WatchSummary",
    "Work",
    "abandon",
    "choose_executor",
    "failure_result",
    "fix",
    "fix_file",
    "fix_image",
    "fix_images",
    "read_job",
    "watch",
    "write_fixed",
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
    from facefix_cli.pipeline.executors import Executor, Work, choose_executor
    from facefix_cli.pipeline.file import (
        OpenFile,
        abandon,
        failure_result,
        fix_file,
        read_job,
        write_fixed,
    )
    from facefix_cli.pipeline.image import FixedImage, fix_image, fix_images
    from facefix_cli.pipeline.results import (
        FileResult,
        FixEvents,
        FixSummary,
        RunStart,
        Status,
        StopReason,
    )
    from facefix_cli.pipeline.run import fix
    from facefix_cli.pipeline.session import FixSession
    from facefix_cli.pipeline.settings import RunSettings, TimeLimit
    from facefix_cli.pipeline.watch import WatchSummary, watch
