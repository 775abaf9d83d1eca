"""`Work`: what every executor is handed (the jobs still to do, the recipe, the run's settings,
the events, the stop check) and how an executor gets its networks: the ones the run is already
loading in the background, or its own."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from facefix_cli.io.discover import Job
from facefix_cli.pipeline.results import FixEvents
from facefix_cli.pipeline.settings import RunSettings
from facefix_cli.recipe import Recipe
from facefix_cli.weights.registry import REGISTRY, Registry

if TYPE_CHECKING:
    import torch

    from facefix_cli.networks.cache import Networks
    from facefix_cli.pipeline.preload import NetworkLoad


@dataclass(frozen=True)
class Work:
    """What every executor is handed."""

    jobs: Sequence[Job]
    recipe: Recipe
    settings: RunSettings
    events: FixEvents
    should_stop: Callable[[], bool]
    registry: Registry = REGISTRY  # the weight files the recipe's networks come from
    # The networks already loading in the background (the run started them as the walk found
    # the first file); None: each executor loads its own.
    preload: NetworkLoad | None = None

    def networks(self, device: torch.device) -> Networks:
        """The networks this work needs on `device`: the ones loading in the background, or
        new ones, not loaded yet."""
        from facefix_cli.networks.cache import Networks

        if self.preload is not None and (loading := self.preload.networks(device)) is not None:
            return loading
        return Networks(self.recipe, self.settings.weights_dir, device, self.registry)

    def load(self, networks: Networks) -> None:
        """Load `networks` (from `networks()`), or wait for their background load to end."""
        if self.preload is not None and self.preload.owns(networks):
            self.preload.wait(networks)
        else:
            networks.load_all()

    def loading_text(self, networks: Networks) -> str | None:
        """What waiting for `load(networks)` is waiting for, or None if they are loaded."""
        if self.preload is not None and self.preload.owns(networks):
            if self.preload.loaded():
                return None
            return self.preload.waiting_text(networks.loading_text())
        return networks.loading_text()
