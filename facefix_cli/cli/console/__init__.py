"""How facefix talks to people: errors, progress, summaries and tables. The library reports
through protocols (events, download progress); this package implements them for the CLI."""

from facefix_cli.cli.console.base import (
    exit_with_error,
    human_size,
    is_terminal,
    print_error,
    printable,
    waiting,
)
from facefix_cli.cli.console.download import (
    PlainDownloadProgress,
    RichDownloadProgress,
    download_progress,
)
from facefix_cli.cli.console.fix import (
    PlainFixEvents,
    RichFixEvents,
    describe,
    fix_display,
    print_summary_table,
    summary_line,
    timestamp,
)
from facefix_cli.cli.console.models import print_model_table

__all__ = [
    "PlainDownloadProgress",
    "PlainFixEvents",
    "RichDownloadProgress",
    "RichFixEvents",
    "describe",
    "download_progress",
    "fix_display",
    "exit_with_error",
    "human_size",
    "is_terminal",
    "print_error",
    "print_model_table",
    "print_summary_table",
    "printable",
    "waiting",
    "summary_line",
    "timestamp",
]
