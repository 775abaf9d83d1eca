"""The command line: each command parses options, calls the library function of the same name,
and reports. No image or model logic lives here."""

from facefix_cli.cli import fix, info, report, weights  # noqa: F401  (each module registers its commands)
from facefix_cli.cli.app import app, main

__all__ = ["app", "main"]
