"""The command line: each command parses options, calls the library function of the same name,
and reports. No image or model logic lives here."""

import os

# Before anything imports torch: OpenMP threads that wait for work sleep instead of spinning,
# which on a busy machine cost ~10x the CPU time of the work itself (benchmarks/RESULTS.md,
# "CPU path"). A value the user set wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from facefix_cli.cli import fix, info, report, watch, weights  # noqa: E402, F401  (each module registers its commands)
from facefix_cli.cli.app import app, main  # noqa: E402

__all__ = ["app", "main"]
