"""`NetworkLoad`: the run's networks loaded in the background, from the moment the walk finds the
first file to do, so that importing torch and loading the weights overlap the rest of the walk
and the first decodes instead of following them.

One thread imports the network modules (torch, spandrel) and resolves the devices; then one
thread per device loads that device's networks (as the pipelined executor's stages would).
Executors ask `Work.networks(device)` for a device's networks and `Work.load(networks)` to wait
until they are loaded: a failure of the load (a bad checkpoint: SetupError) is raised there, in
the thread that would have loaded them itself.

Guarantees: the networks loaded are the same objects, loaded the same way, as an executor would
load itself (`Networks.load_all`), so outputs do not depend on the preload; `join()` returns
only once no load thread runs (torch still loading at interpreter exit can abort the process)."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from facefix_cli.pipeline.settings import RunSettings
from facefix_cli.recipe import Recipe
from facefix_cli.weights.registry import REGISTRY, Registry

if TYPE_CHECKING:
    import torch

    from facefix_cli.networks.cache import Networks


class NetworkLoad:
    def __init__(
        self, recipe: Recipe, settings: RunSettings, registry: Registry = REGISTRY
    ) -> None:
        self.recipe, self.settings, self.registry = recipe, settings, registry
        self.started = time.monotonic()
        self._imported = threading.Event()
        self._stages: list[Networks] = []
        self._loaded: list[threading.Event] = []
        self._errors: dict[int, BaseException] = {}
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def start(self) -> NetworkLoad:
        thread = threading.Thread(target=self._import_and_load, name="facefix-load", daemon=True)
        self._threads.append(thread)
        thread.start()
        return self

    def _import_and_load(self) -> None:
        try:
            from facefix_cli.networks.cache import Networks
            from facefix_cli.networks.device import resolve_devices

            devices = resolve_devices(self.settings.device)
            stages = [
                Networks(self.recipe, self.settings.weights_dir, d, self.registry) for d in devices
            ]
        except BaseException as exc:  # noqa: BLE001 - raised again where the networks are asked for
            self._errors[-1] = exc
            self._imported.set()
            return
        with self._lock:
            self._stages = stages
            self._loaded = [threading.Event() for _ in stages]
            for index in range(1, len(stages)):  # the first device loads in this thread
                thread = threading.Thread(
                    target=self._load, args=(index,), name=f"facefix-load-{index}", daemon=True
                )
                self._threads.append(thread)
                thread.start()
        self._imported.set()
        if stages:
            self._load(0)

    def _load(self, index: int) -> None:
        networks = self._stages[index]
        try:
            if networks.device.type == "cuda":
                import torch

                torch.cuda.set_device(networks.device)
            networks.load_all()
        except BaseException as exc:  # noqa: BLE001 - raised again where the networks are asked for
            self._errors[index] = exc
        finally:
            self._loaded[index].set()

    def wait_imported(self) -> None:
        """Until torch and the network modules are imported (the caller imports them next:
        one thread importing them at a time)."""
        self._imported.wait()

    def networks(self, device: torch.device) -> Networks | None:
        """The networks being loaded for `device`, or None if this load has none for it."""
        self._imported.wait()
        if -1 in self._errors:
            raise self._errors[-1]
        return next((n for n in self._stages if n.device == device), None)

    def owns(self, networks: Networks) -> bool:
        return any(n is networks for n in self._stages)

    def wait(self, networks: Networks) -> None:
        """Until `networks` (from `networks()`) are loaded; raises what the load raised."""
        index = next(i for i, n in enumerate(self._stages) if n is networks)
        self._loaded[index].wait()
        if index in self._errors:
            raise self._errors[index]

    def wait_all(self) -> None:
        """Until every device's networks are loaded; raises the first thing a load raised."""
        self._imported.wait()
        if -1 in self._errors:
            raise self._errors[-1]
        for index, event in enumerate(self._loaded):
            event.wait()
            if index in self._errors:
                raise self._errors[index]

    def loaded(self) -> bool:
        return self._imported.is_set() and all(event.is_set() for event in self._loaded)

    def waiting_text(self, text: str) -> str:
        """`text` (`loading 4 networks on cuda:0`) with how long the load has been running."""
        return f"{text} (started {time.monotonic() - self.started:.1f}s ago)"

    def join(self) -> None:
        self._imported.wait()  # every load thread is started by then
        for thread in list(self._threads):
            thread.join()
