"""The one place that chooses how a run's files are scheduled (as black's `concurrency.py`
sits beside `format_file_in_place`).

Every executor has one shape: `run(work)` takes the jobs still to do with the recipe and the
run's settings, and yields one `FileResult` per job as each finishes, telling `work.events`
when a file starts and asking `work.should_stop()` before starting each new file. Each file
goes through the per-file steps of `pipeline.file`, whatever the executor, so results, claims
and output bytes do not depend on the choice. An `EnvironmentFault` ends the iteration.

A new executor is one module of this package with a `run(work)` generator and one row in
`EXECUTORS`. What the run needs to know about an executor is a field of `Executor` (a
capability), never its name. This module imports no executor module: each is imported when
its `run` is called, so choosing one costs nothing."""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass

from facefix_cli.networks.names import parse_devices
from facefix_cli.pipeline.executors.work import Work
from facefix_cli.pipeline.results import FileResult
from facefix_cli.pipeline.settings import RunSettings
from facefix_cli.pipeline.threads import plan_threads

__all__ = ["EXECUTORS", "Executor", "Run", "Work", "choose_executor"]

Run = Callable[[Work], Generator[FileResult, None, None]]


@dataclass(frozen=True)
class Executor:
    name: str
    run: Run
    # The devices it will run on, in words, for the run-start line (`cuda:0 (NVIDIA H100)`);
    # raises SetupError for devices that are not there. Called before `run`.
    devices: Callable[[RunSettings], str]
    # Whether the run fetches missing weights into this machine's folder before starting; a
    # Ray cluster's workers check the weights on their own nodes instead.
    fetches_weights_here: Callable[[RunSettings], bool]
    # SetupError for what the executor lacks (the Ray extra), before any file is touched.
    check: Callable[[], None] = lambda: None
    # Whether its networks run in this process, so the run starts loading them in the
    # background as soon as the walk finds a file (`Work.preload`); Ray workers load their own.
    loads_networks_here: bool = True


def _local_devices(settings: RunSettings) -> str:
    from facefix_cli.networks.device import describe_devices, resolve_devices

    return describe_devices(resolve_devices(settings.device))


def _sequential(work: Work) -> Generator[FileResult, None, None]:
    from facefix_cli.pipeline.executors.sequential import run

    return run(work)


def _pipelined(work: Work) -> Generator[FileResult, None, None]:
    from facefix_cli.pipeline.executors.pipelined import run

    return run(work)


def _ray(work: Work) -> Generator[FileResult, None, None]:
    from facefix_cli.pipeline.executors.ray import run

    return run(work)


def _ray_check() -> None:
    from facefix_cli.pipeline.executors.ray import require_ray

    require_ray()


EXECUTORS: dict[str, Executor] = {
    # one file after another in this process, on the first device (--workers 0)
    "sequential": Executor("sequential", _sequential, _local_devices, lambda _: True),
    # decode/encode threads around one network stage per device (the default)
    "pipelined": Executor("pipelined", _pipelined, _local_devices, lambda _: True),
    # Ray workers, one per GPU, on this machine or a cluster (--ray, --ray-address)
    "ray": Executor(
        "ray",
        _ray,
        lambda s: f"Ray {s.ray_address}, {s.device}",
        # This machine is the only node of a local cluster: fetch its weights here.
        lambda s: s.ray_address == "local",
        _ray_check,
        loads_networks_here=False,
    ),
}


def choose_executor(settings: RunSettings) -> Executor:
    """The executor the settings ask for: Ray with a Ray address; sequential with --workers 0,
    a budget of one thread, or --device cpu without --workers (`pipeline.threads.plan_threads`);
    else pipelined, which itself runs sequentially when `auto` finds only the CPU (known only
    once torch is imported, which this choice must not do)."""
    if settings.ray_address is not None:
        return EXECUTORS["ray"]
    cpu_only = all(name == "cpu" for name in parse_devices(settings.device))
    if plan_threads(settings.threads, settings.workers, cpu_only=cpu_only).sequential:
        return EXECUTORS["sequential"]
    return EXECUTORS["pipelined"]
