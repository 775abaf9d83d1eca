"""The sequential executor: one file after another in this process, in discovery order.

Every executor has this shape: it takes the jobs still to do, the recipe and the loaded
networks, and yields one `FileResult` per job as each finishes, telling `events` when a file
starts and asking `should_stop()` before starting each new file (--max-time, signals). The run
(`pipeline.run.fix`) does discovery, planning and the summary around it. Per-file rules (claims,
failure classification) live in `pipeline.file`; an `EnvironmentFault` from there ends the
iteration."""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence

from facefix_cli.io.discover import Job
from facefix_cli.networks.cache import Networks
from facefix_cli.pipeline.clock import current_clock
from facefix_cli.pipeline.file import fix_file
from facefix_cli.pipeline.options import FixOptions
from facefix_cli.pipeline.results import FileResult, FixEvents


def run_sequential(
    jobs: Sequence[Job],
    options: FixOptions,
    networks: Networks,
    events: FixEvents,
    *,
    should_stop: Callable[[], bool] = lambda: False,
) -> Generator[FileResult, None, None]:
    clock = current_clock()
    if jobs:
        events.waiting(networks.loading_text())
        with clock.stage("load"):
            networks.load_all()
        events.waiting(None)
    for job in jobs:
        if should_stop():
            return
        events.file_started(job)
        result = fix_file(job, options, networks, clock)
        clock.file_finished()
        yield result
