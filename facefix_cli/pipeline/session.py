"""`FixSession`: the recipe, the run settings and the networks, loaded once, that fix one list of
jobs after another (rembg's session). `fix` (pipeline.run) opens one per run and hands it the
jobs its walk found; `watch` (pipeline.watch) keeps one open for hours and hands it each batch of
files as they become complete. Either way every file goes through the executor the settings
choose and the per-file steps of `pipeline.file`, so outputs, claims and results are the same.

The steps, each once per session:
1. `FixSession(recipe, settings)`: both validated and the executor chosen and checked
   (SetupError: nothing touched yet);
2. `prepare(first_output)` (a dry run: `check(first_output)`, touching nothing): the machine
   checked for that output (a full disk, an --output-dir
   that cannot be written: the fault's line is returned and nothing is loaded), the weights made
   sure of (MissingWeightsError), and the networks started loading in the background;
3. `devices()`: the devices in words (SetupError for one that is not there); `load()` waits for
   the networks (a bad checkpoint: SetupError), for a caller that must know before it waits;
4. `fix(jobs, should_stop)`, as often as needed: one result per job, as each finishes;
5. `close()`: returns once no load thread runs.

Guarantees: the networks are loaded once per session and device, however many times `fix` is
called; the session keeps no per-file state, so its memory does not grow with the files it
fixes."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Generator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from facefix_cli.io.discover import Job
from facefix_cli.io.environment import output_fault
from facefix_cli.io.ledger import RecipeTag
from facefix_cli.pipeline.executors import Work, choose_executor
from facefix_cli.pipeline.results import FileResult, FixEvents
from facefix_cli.pipeline.settings import RunSettings
from facefix_cli.recipe import Recipe
from facefix_cli.silent import Silent
from facefix_cli.weights.registry import REGISTRY, Registry

if TYPE_CHECKING:
    from facefix_cli.pipeline.preload import NetworkLoad
    from facefix_cli.weights.digests import WeightsNotice
    from facefix_cli.weights.progress import DownloadProgress


class FixSession:
    def __init__(
        self,
        recipe: Recipe,
        settings: RunSettings,
        *,
        events: FixEvents | None = None,
        registry: Registry = REGISTRY,
        download_progress: DownloadProgress | None = None,
    ) -> None:
        recipe.validate()
        settings.validate()
        self.recipe, self.settings, self.registry = recipe, settings, registry
        self.recipe_tag = RecipeTag(tuple(recipe.rows()))  # outputs' ledger entries (io.ledger)
        self.events: FixEvents = events or Silent()
        self.download_progress = download_progress
        self.executor = choose_executor(settings)
        self.executor.check()
        self.preload: NetworkLoad | None = None
        # (file, sha256) of the weights the outputs record, once `prepare` hashed them; the
        # registry's pins until then
        self.models: tuple[tuple[str, str], ...] = tuple(
            (m.file, m.sha256) for m in recipe.required_weights(registry)
        )
        self.notices: list[WeightsNotice] = []  # weight files that are not the released ones
        self.prepared = False

    def prepare(
        self,
        first_output: Path,
        waiting: str = "found files to do: loading the networks while finding the rest",
    ) -> str | None:
        """Check the machine for `first_output`, make sure of the weights and start loading the
        networks in the background (`waiting` tells the events so). The environment fault's
        line if the machine cannot take a single output (nothing is loaded then), else None."""
        settings = self.settings
        # Here, not at the top: a run with nothing to do never imports the download machinery.
        from facefix_cli.pipeline.preload import NetworkLoad
        from facefix_cli.weights import digests
        from facefix_cli.weights.download import ensure_weights

        fault = output_fault(first_output, settings.output_dir)
        if fault is not None:  # before any network loads: exit 4 in a second
            return fault
        self.prepared = True
        here = self.executor.fetches_weights_here(settings)
        if here:
            ensure_weights(
                self.recipe.required_weights(self.registry),
                settings.weights_dir,
                offline=settings.offline,
                mirrors=settings.mirrors,
                progress=self.download_progress,
            )
        if self.executor.loads_networks_here:
            self.preload = NetworkLoad(self.recipe, settings, self.registry).start()
            self.events.waiting(waiting)
        if here:
            # What the outputs will record: each file's own digest (cached beside it), and one
            # warning per file that is not the released one. Hashed while the networks load.
            models, self.notices = digests.compare(
                self.recipe.required_weights(self.registry),
                settings.weights_dir,
                [
                    p
                    for p in (self.recipe.upscaler_path, self.recipe.restorer_path)
                    if p is not None
                ],
            )
            self.models = tuple(models)
        return None

    def check(self, first_output: Path) -> str | None:
        """A dry run's `prepare`: the same checks of the machine and the weights, creating,
        fetching and loading nothing. The environment fault's line, else None; raises
        MissingWeightsError for weights a real run could not get (offline, no mirror folder)."""
        from facefix_cli.weights.download import check_weights

        settings = self.settings
        fault = output_fault(first_output, settings.output_dir, dry=True)
        if fault is None and self.executor.fetches_weights_here(settings):
            check_weights(
                self.recipe.required_weights(self.registry),
                settings.weights_dir,
                offline=settings.offline,
                mirrors=settings.mirrors,
                progress=self.download_progress,
            )
        return fault

    def devices(self) -> str:
        """The devices the networks run on, in words (`cuda:0 (NVIDIA H100)`, `cpu`)."""
        if self.preload is not None:
            self.preload.wait_imported()  # torch is imported by the load: one thread imports it
        return self.executor.devices(self.settings)

    def load(self) -> None:
        """Wait until the networks are loaded; raises what the load raised (SetupError for a
        checkpoint that does not load)."""
        if self.preload is not None:
            self.preload.wait_all()

    def fix(
        self, jobs: Sequence[Job], should_stop: Callable[[], bool] = lambda: False
    ) -> Generator[FileResult, None, None]:
        """One result per job as each finishes, through the settings' executor; `should_stop`
        is asked before each new file. Raises EnvironmentFault for a fault that dooms every
        later file, and KeyboardInterrupt (claims released, no temporary file left)."""
        work = Work(
            jobs,
            self.recipe,
            self.settings,
            self.events,
            should_stop,
            self.registry,
            self.preload,
        )
        # closing: Ctrl-C in the caller's loop stops the executor's threads or workers at once,
        # not at garbage collection (the traceback keeps the generator alive).
        with contextlib.closing(self.executor.run(work)) as results:
            yield from results

    def close(self) -> None:
        if self.preload is not None:
            self.preload.join()  # torch loading at interpreter exit can abort the process
