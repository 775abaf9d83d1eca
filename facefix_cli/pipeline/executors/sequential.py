"""The sequential executor: one file after another in this process, in discovery order, on
the first device (`--workers 0`). The shape every executor shares is described in
`pipeline.executors`."""

from __future__ import annotations

from collections.abc import Generator

from facefix_cli.networks.cache import Networks
from facefix_cli.networks.device import make_deterministic, resolve_devices, torch_threads
from facefix_cli.pipeline.clock import current_clock
from facefix_cli.pipeline.executors.work import Work
from facefix_cli.pipeline.file import fix_file
from facefix_cli.pipeline.results import FileResult
from facefix_cli.pipeline.threads import default_threads


def run(work: Work) -> Generator[FileResult, None, None]:
    make_deterministic()
    device = resolve_devices(work.settings.device)[0]
    with torch_threads(work.settings.threads or default_threads()):  # the whole budget
        yield from run_sequential(work, work.networks(device))


def run_sequential(work: Work, networks: Networks) -> Generator[FileResult, None, None]:
    """`work`'s files one by one with `networks` (tests pass stand-ins)."""
    clock = current_clock()
    events = work.events
    if work.jobs:
        events.waiting(work.loading_text(networks))
        with clock.stage("load"):
            work.load(networks)  # or wait for the load the run started in the background
        events.waiting(None)
    for job in work.jobs:
        if work.should_stop():
            return
        events.file_started(job)
        result = fix_file(job, work.recipe, work.settings, networks, clock)
        clock.file_finished()
        yield result
