"""The Ray executor: one `fix` run spread over every GPU (or CPU) of a Ray cluster.

What it guarantees:

* Same outputs as a local run. Each worker is a Ray actor that builds one `Networks` for its
  life and runs the single-machine per-file code (`fix_file`) on the jobs it is given, so it
  reads, fixes and writes each file itself, atomically, under the same name with the same
  metadata. Inputs and outputs must be on storage every node sees under the same path (NFS, a
  mounted bucket); paths are made absolute before they cross to the workers.
* Results stream back: one `FileResult` is yielded per job as soon as its worker finishes it,
  so the driver shows the same progress, summary, --json and exit codes as a local run. The
  driver alone discovers files and applies the skip rules (`pipeline.run.fix`); only the small
  `Recipe`, `RunSettings` and `Job` paths are pickled to the workers, and `FileResult`s come back.
* Weights are checked on every worker before it gets any file: a node that lacks a file
  `options.required_weights()` names fails the run at once (SetupError, exit 2) with the
  `facefix download` command to run there, unless `--mirror` is given (and not `--offline`), in
  which case the node fetches them from the mirror with the usual checks.
* Faults: a worker process or node that dies has the files it held handed to other workers
  (and the actor itself is restarted by Ray, `max_restarts`); a file whose worker died
  `MAX_ATTEMPTS` times is reported failed rather than retried forever. A file that fails for
  its own reasons (corrupt, unreadable) is a failed `FileResult` from `fix_file` and is never
  retried. A setup problem raised inside a worker (a model that will not load) stops the run
  with that error, as locally.
* Stopping: `should_stop()` is checked before each file is handed out; on Ctrl-C (or when the
  caller closes this generator) queued files are cancelled and the files being written are
  given `STOP_GRACE_S` seconds to finish before the workers are killed. `write_atomic` means a
  killed worker can leave only a hidden temporary file, never a partial file under a final name.

Why actors driven directly rather than Ray Data's `map_batches`: Ray Data's documented batch
inference pattern (a stateful class loading models once per actor, `num_gpus=1`,
`concurrency=N`) is the model followed here, but its streaming executor prefetches and buffers
blocks, so it neither reports a file when it starts nor stops between files for
`should_stop`, turns an exception in the callable into a failed dataset rather than a setup
error with its message, and costs seconds of start-up plus Arrow conversion for what are a few
paths per row. Driving a pool of actors with `ray.wait` over their result references gives the
same model (one actor per GPU, networks loaded once, Ray restarting dead actors) with exact
per-file events, per-file retry bookkeeping and only `ray` core as a dependency.

Ray is optional: nothing outside this module imports it, and here it is imported only inside
functions, so the plain install and plain runs never load it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import logging
import os
import socket
from collections import deque
from collections.abc import Callable, Generator, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from facefix_cli.errors import EnvironmentFault, FacefixError, SetupError, first_line
from facefix_cli.io.discover import Job
from facefix_cli.io.names import display_path
from facefix_cli.networks.cache import Networks
from facefix_cli.pipeline.executors.work import Work
from facefix_cli.pipeline.file import fix_file
from facefix_cli.pipeline.results import FileResult, FixEvents, Status
from facefix_cli.pipeline.settings import RunSettings
from facefix_cli.recipe import Recipe
from facefix_cli.weights.registry import REGISTRY, Registry

INSTALL_HINT = "pip install 'facefix[ray]' (or, in a checkout: uv sync --extra ray)"
LOCAL = "local"
# Files handed to one worker at once: the one it works on and the next, so it never idles
# while a result travels back and the driver hands out another.
IN_FLIGHT_PER_WORKER = 2
# A file whose worker died this many times is reported failed (it may be what kills them).
MAX_ATTEMPTS = 3
# Ray restarts a dead worker (on any node with room) this many times.
MAX_RESTARTS = 3
# On Ctrl-C, how long the files being written may take to finish before workers are killed.
STOP_GRACE_S = 10.0
# The local instance only carries small results: keep its shared-memory store small.
LOCAL_OBJECT_STORE_BYTES = 100 * 2**20

FixOne = Callable[[Job, Recipe, RunSettings, Networks], FileResult]


def ray_installed() -> bool:
    return importlib.util.find_spec("ray") is not None


def require_ray() -> None:
    """Raise SetupError (exit 2) with the install command when Ray is not installed."""
    if not ray_installed():
        raise SetupError(f"--ray needs Ray, an optional extra: {INSTALL_HINT}")


def import_ray() -> ModuleType:
    """Ray, imported with facefix's defaults: no usage reporting (facefix runs offline), and no
    packaging of the current folder for the workers when run under `uv run` (Ray does that by
    default, and the current folder may be a tree of renders). Both can be overridden in the
    environment."""
    require_ray()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
    import ray

    return ray


def connect(address: str, *, num_cpus: int | None = None) -> bool:
    """Start a local Ray instance (`local`; `num_cpus` caps its CPUs, default all) or join a
    cluster (`auto`, `ray://host:port`, `host:port`), unless this process is already
    connected. True if this call connected (so the caller disconnects when done)."""
    ray = import_ray()
    if ray.is_initialized():
        return False
    if address.startswith("ray://") and importlib.util.find_spec("grpc") is None:
        raise SetupError(
            f"--ray-address {address}: ray:// addresses need Ray Client: pip install 'ray[client]'"
        )
    settings: dict[str, Any] = {
        "log_to_driver": False,  # workers never print; Ray's own logs stay in its session folder
        "logging_level": logging.WARNING,
    }
    if address == LOCAL:
        settings |= {
            "include_dashboard": False,
            "object_store_memory": LOCAL_OBJECT_STORE_BYTES,
            "num_cpus": num_cpus,
            # A private instance this run starts and stops: Ray's notices about it (token
            # authentication, start-up) are noise in cron logs.
            "logging_level": logging.ERROR,
        }
    try:
        ray.init(address=address, **settings)
    except Exception as exc:  # Ray raises bare Exception for a start-up timeout, among others
        where = "start Ray on this machine" if address == LOCAL else f"join Ray at {address}"
        raise SetupError(f"--ray: cannot {where}: {first_line(exc, type(exc).__name__)}") from None
    return True


def worker_plan(device: str, resources: Mapping[str, float]) -> tuple[str, int]:
    """The device each worker uses and how many workers to start, from `--device` and the
    cluster's resources: one worker per GPU, else (or with --device cpu) one per CPU."""
    name = device.strip().lower()
    gpus = int(resources.get("GPU", 0))
    cpus = int(resources.get("CPU", 0))
    if name == "cpu" or (name == "auto" and gpus == 0):
        if cpus == 0:
            raise SetupError("--ray: the Ray cluster has no CPUs to run workers on")
        return "cpu", cpus
    if name in ("auto", "cuda"):
        if gpus == 0:
            raise SetupError(
                "--ray --device cuda: the Ray cluster has no GPUs; use --device cpu or auto"
            )
        return "cuda", gpus
    raise SetupError(
        f"--ray --device {device}: with Ray each worker gets its own GPU; "
        "use --device auto, cuda or cpu"
    )


def _absolute(path: Path | None) -> Path | None:
    return None if path is None else Path(path).absolute()


def worker_recipe(recipe: Recipe) -> Recipe:
    """The recipe as workers on other machines need it: absolute paths."""
    return dataclasses.replace(
        recipe,
        upscaler_path=_absolute(recipe.upscaler_path),
        restorer_path=_absolute(recipe.restorer_path),
    )


def worker_settings(settings: RunSettings, device: str) -> RunSettings:
    """The settings as workers need them: absolute paths, a concrete device, no Ray of their
    own and no time limit (the driver stops handing out files when it passes)."""
    return dataclasses.replace(
        settings,
        device=device,
        weights_dir=Path(settings.weights_dir).absolute(),
        output_dir=_absolute(settings.output_dir),
        ray_address=None,
        time_limit=None,
    )


class FixWorker:
    """One Ray actor: the networks for one recipe on one device, loaded once, fixing files."""

    def __init__(
        self,
        recipe: Recipe,
        settings: RunSettings,
        fix_one: FixOne,
        registry: Registry = REGISTRY,
    ) -> None:
        self.recipe, self.settings = recipe, settings
        self.fix_one = fix_one
        self.registry = registry  # the weight files to check on this node
        self.networks: Networks | None = None

    def prepare(self) -> str:
        """Check (or fetch from --mirror) the weights on this node and set up the networks.
        Returns this node's name; raises SetupError naming the node if weights are missing."""
        node = socket.gethostname()
        if self.networks is None:
            from facefix_cli.networks.device import make_deterministic, resolve_device
            from facefix_cli.weights.download import ensure_weights

            settings = self.settings
            try:
                ensure_weights(
                    self.recipe.required_weights(self.registry),
                    settings.weights_dir,
                    offline=settings.offline or not settings.mirrors,
                    mirrors=settings.mirrors,
                )
                device = resolve_device(settings.device)
                make_deterministic()
                networks = Networks(self.recipe, settings.weights_dir, device, self.registry)
                networks.load_all()  # here, so the first file is not the slow one
            except FacefixError as exc:
                # A plain SetupError: it pickles back to the driver with its message.
                raise SetupError(f"on Ray node {node}: {exc}") from None
            self.networks = networks
        return node

    def fix(self, job: Job) -> FileResult:
        self.prepare()
        assert self.networks is not None
        return self.fix_one(job, self.recipe, self.settings, self.networks)


def _setup_error(exc: BaseException) -> BaseException:
    """The worker's own exception inside a RayTaskError: FacefixErrors keep their message and
    exit code; anything else is re-raised as Ray reports it."""
    cause = getattr(exc, "cause", None)
    return cause if isinstance(cause, FacefixError) else exc


def run(work: Work, fix_one: FixOne = fix_file) -> Generator[FileResult, None, None]:
    """Fix `work.jobs` on Ray workers at `work.settings.ray_address`, yielding one FileResult
    per job as each finishes (in completion order). Each worker loads its own networks.
    `fix_one` is the per-file function the workers run (the seam for another single-machine
    engine)."""
    jobs, events, should_stop = work.jobs, work.events, work.should_stop
    address = work.settings.ray_address or LOCAL
    ray = import_ray()
    events.waiting("starting Ray" if address == "local" else f"connecting to Ray at {address}")
    owned = connect(address)
    actors: list[Any] = []
    in_flight: dict[Any, tuple[Any, Job]] = {}
    try:
        device, count = worker_plan(work.settings.device, ray.cluster_resources())
        recipe, settings = worker_recipe(work.recipe), worker_settings(work.settings, device)
        actor_class = ray.remote(FixWorker).options(
            num_cpus=1,
            num_gpus=1 if device == "cuda" else 0,
            max_restarts=MAX_RESTARTS,
            max_task_retries=0,  # the driver re-queues a dead worker's files itself
        )
        actors = [
            actor_class.remote(recipe, settings, fix_one, work.registry)
            for _ in range(min(count, len(jobs)))
        ]
        events.waiting(f"starting {len(actors)} Ray workers (weights check, loading networks)")
        try:
            ray.get([actor.prepare.remote() for actor in actors])
        except ray.exceptions.RayTaskError as exc:
            raise _setup_error(exc) from None
        events.waiting(None)
        _make_output_dir(settings)
        yield from _drive(ray, actors, jobs, events, should_stop, in_flight)
    finally:
        _stop(ray, actors, in_flight, owned)


def _make_output_dir(settings: RunSettings) -> None:
    """Make --output-dir (the folder the user named, trusted) before any file is handed out,
    as a local run's environment check does: the workers make the folders below it one
    component at a time (`safefs.make_folders`), which needs it to exist. Made only once every
    worker is ready, so a run stopped by a node's setup leaves nothing behind."""
    if settings.output_dir is None:
        return
    try:
        settings.output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EnvironmentFault(
            f"cannot write to {display_path(settings.output_dir)}: {exc.strerror or exc}"
        ) from None


def _drive(
    ray: ModuleType,
    actors: list[Any],
    jobs: Sequence[Job],
    events: FixEvents,
    should_stop: Callable[[], bool],
    in_flight: dict[Any, tuple[Any, Job]],
) -> Generator[FileResult, None, None]:
    """Hand out jobs to the least busy healthy worker (telling `events` a file has started
    when it is handed out), yield results as they come back, and re-queue the files of
    workers that died. `in_flight` is shared with the caller so that
    stopping can cancel what is still out."""
    queue: deque[Job] = deque(jobs)
    attempts: dict[Job, int] = {}
    load = {id(actor): 0 for actor in actors}
    healthy = list(actors)
    probes: dict[Any, Any] = {}  # prepare() refs of restarting workers -> the worker
    stopping = False
    while queue or in_flight:
        while queue and not stopping:
            candidates = [a for a in healthy if load[id(a)] < IN_FLIGHT_PER_WORKER]
            if not candidates:
                break
            if should_stop():
                stopping = True
                break
            actor = min(candidates, key=lambda a: load[id(a)])
            job = queue.popleft()
            if job not in attempts:
                events.file_started(job)
            attempts[job] = attempts.get(job, 0) + 1
            remote_job = Job(job.source.absolute(), job.output.absolute(), job.format)
            in_flight[actor.fix.remote(remote_job)] = (actor, job)
            load[id(actor)] += 1
        if not in_flight and (stopping or not queue):
            return
        if not in_flight and not probes:
            raise SetupError("every Ray worker died and none could be restarted")
        ready, _ = ray.wait([*in_flight, *probes], num_returns=1)
        ref = ready[0]
        if ref in probes:
            actor = probes.pop(ref)
            try:
                ray.get(ref)
            except ray.exceptions.RayActorError:
                continue  # out of restarts: it gets no more work
            except ray.exceptions.RayTaskError as exc:
                raise _setup_error(exc) from None  # restarted on a node without the weights
            healthy.append(actor)  # restarted and ready again
            continue
        actor, job = in_flight.pop(ref)
        load[id(actor)] -= 1
        try:
            result: FileResult = ray.get(ref)
        except ray.exceptions.RayActorError:
            # The worker process or its node died: its files go to the other workers, and it
            # gets work again once Ray has restarted it (a prepare() call returns).
            if actor in healthy:
                healthy.remove(actor)
                probes[actor.prepare.remote()] = actor
            if attempts[job] >= MAX_ATTEMPTS:
                yield FileResult(
                    job.source,
                    job.output,
                    Status.FAILED,
                    f"the Ray worker died while fixing it, {attempts[job]} times",
                )
            else:
                queue.appendleft(job)
            continue
        except ray.exceptions.RayTaskError as exc:
            raise _setup_error(exc) from None
        # Report under the paths the driver discovered (they may be relative).
        result.source, result.output = job.source, job.output
        yield result


def _stop(ray: ModuleType, actors: list[Any], in_flight: dict[Any, Any], owned: bool) -> None:
    """Cancel queued files, let the ones being written finish (up to STOP_GRACE_S), then end
    the workers (and the local Ray instance this run started)."""
    if in_flight:
        for ref in in_flight:
            with contextlib.suppress(Exception):
                ray.cancel(ref)
        with contextlib.suppress(Exception):
            ray.wait(list(in_flight), num_returns=len(in_flight), timeout=STOP_GRACE_S)
    for actor in actors:
        with contextlib.suppress(Exception):
            ray.kill(actor, no_restart=True)
    if owned:
        ray.shutdown()
