"""A lean start: import only the architecture a checkpoint needs, and build modules without
the random initialisation their weights replace at once.

- spandrel's package `__init__` builds its main registry, which imports all ~40 architectures
  (LaMa pulls in torchvision, torchvision pulls in `torch._dynamo`): about as much CPU time as
  torch itself. `defer_spandrel_registry()` puts a stand-in for that registry module in
  `sys.modules` before spandrel is imported, so `import spandrel` and one architecture's
  module (`spandrel.architectures.ESRGAN`) load alone. The first real use of the registry
  (a checkpoint of unknown architecture, `spandrel_extra_arches.install()`) imports the real
  one, and every use of `spandrel.MAIN_REGISTRY` goes to it from then on: nothing spandrel
  offers is lost, it is only imported later.
- facexlib's package `__init__` imports every facexlib model; `facexlib_module()` imports one
  of its modules with the packages' `__init__` files skipped, and takes the stand-ins out of
  `sys.modules` afterwards, so a later `import facexlib` runs the real ones.
- `build_on_meta(build)` builds a spandrel model on the meta device (no memory, no random
  draws) and has spandrel's own strict weight load assign the checkpoint's tensors (memory-
  mapped) instead of copying them, each in the dtype the module declares; a model left with
  any meta tensor is built again the ordinary way. `no_random_init()` turns torch's random
  initialisers into no-ops for builds whose every tensor is loaded strictly right after
  (facexlib's networks). Either way the weights, and so the outputs, are the same bytes.

Each narrow path falls back to the ordinary import when it fails (another spandrel layout),
so a lean start can be slower than planned, never wrong."""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import sys
import threading
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

_REGISTRY_MODULE = "spandrel.__helpers.main_registry"


class _DeferredRegistry:
    """Stands in for spandrel's MAIN_REGISTRY until something uses it, then hands every use to
    the real one (imported then, with all its architectures)."""

    def __init__(self) -> None:
        self._real: Any = None
        self._lock = threading.Lock()

    def _registry(self) -> Any:
        with self._lock:
            if self._real is None:
                module = sys.modules.get(_REGISTRY_MODULE)
                if module is None or isinstance(module, _StandIn):
                    sys.modules.pop(_REGISTRY_MODULE, None)
                    module = importlib.import_module(_REGISTRY_MODULE)
                self._real = module.MAIN_REGISTRY
            return self._real

    @property
    def loaded(self) -> bool:
        return self._real is not None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._registry(), name)

    def __contains__(self, item: object) -> bool:
        return item in self._registry()

    def __getitem__(self, item: Any) -> Any:
        return self._registry()[item]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._registry())

    def __len__(self) -> int:
        return len(self._registry())


class _StandIn(types.ModuleType):
    """The stand-in module: MAIN_REGISTRY deferred; any other name from the real module."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # import machinery probing (`__path__`): not a package
            raise AttributeError(name)
        registry = self.__dict__["MAIN_REGISTRY"]
        registry._registry()  # replaces this stand-in in sys.modules with the real module
        return getattr(sys.modules[_REGISTRY_MODULE], name)


def defer_spandrel_registry() -> None:
    """Install the stand-in registry module if spandrel is not imported yet (cheap: imports
    nothing). Called when `facefix_cli.networks` is imported, before anything imports spandrel."""
    if "spandrel" in sys.modules or _REGISTRY_MODULE in sys.modules:
        return
    try:
        if importlib.util.find_spec("spandrel") is None:
            return
    except (ImportError, ValueError):
        return
    stand_in = _StandIn(_REGISTRY_MODULE)
    stand_in.MAIN_REGISTRY = _DeferredRegistry()  # type: ignore[attr-defined]
    sys.modules[_REGISTRY_MODULE] = stand_in


def spandrel_registry_loaded() -> bool:
    """Whether spandrel's full registry (every architecture) has been imported."""
    module = sys.modules.get(_REGISTRY_MODULE)
    if module is None:
        return False
    registry = getattr(module, "MAIN_REGISTRY", None)
    return not isinstance(registry, _DeferredRegistry) or registry.loaded


def spandrel_architecture(module: str, name: str) -> Any | None:
    """An instance of spandrel's architecture `name` from `spandrel.architectures.<module>`,
    imported alone; None where that fails (the caller then uses the full registry)."""
    try:
        imported = importlib.import_module(f"spandrel.architectures.{module}")
        return getattr(imported, name)()
    except Exception:  # noqa: BLE001 - any failure means: take the ordinary path
        return None


def facexlib_module(name: str) -> types.ModuleType:
    """facexlib's module `name` (`facexlib.parsing.parsenet`) without running the `__init__`
    of the packages above it, which import every facexlib model; the ordinary import where
    facexlib is already imported or the narrow one fails."""
    if name in sys.modules or "facexlib" in sys.modules:
        return importlib.import_module(name)
    spec = importlib.util.find_spec("facexlib")
    if spec is None or not spec.submodule_search_locations:
        return importlib.import_module(name)
    root = Path(next(iter(spec.submodule_search_locations)))
    parts = name.split(".")
    stand_ins = []
    for depth in range(1, len(parts)):
        package = ".".join(parts[:depth])
        module = types.ModuleType(package)
        module.__path__ = [str(root.joinpath(*parts[1:depth]))]
        sys.modules[package] = module
        stand_ins.append(package)
    try:
        return importlib.import_module(name)
    except Exception:  # noqa: BLE001 - the ordinary import below says what is wrong
        for loaded in [m for m in sys.modules if m == "facexlib" or m.startswith("facexlib.")]:
            del sys.modules[loaded]
        stand_ins.clear()
        return importlib.import_module(name)
    finally:
        for package in stand_ins:  # a later `import facexlib` runs the real __init__ files
            sys.modules.pop(package, None)


_RANDOM_INITS = (
    "uniform_",
    "normal_",
    "trunc_normal_",
    "kaiming_uniform_",
    "kaiming_normal_",
    "xavier_uniform_",
    "xavier_normal_",
    "orthogonal_",
    "sparse_",
)
_init_lock = threading.Lock()
_init_depth = 0
_saved_inits: dict[str, Any] = {}


def _keep(tensor: Any, *args: Any, **kwargs: Any) -> Any:
    return tensor


@contextlib.contextmanager
def no_random_init() -> Iterator[None]:
    """torch.nn.init's random initialisers do nothing inside the block (nested and threaded
    uses share one patch, restored when the last leaves). Only for modules whose every
    parameter is then loaded strictly from a checkpoint."""
    global _init_depth
    import torch.nn.init

    with _init_lock:
        if _init_depth == 0:
            for name in _RANDOM_INITS:
                _saved_inits[name] = getattr(torch.nn.init, name)
                setattr(torch.nn.init, name, _keep)
        _init_depth += 1
    try:
        yield
    finally:
        with _init_lock:
            _init_depth -= 1
            if _init_depth == 0:
                for name, function in _saved_inits.items():
                    setattr(torch.nn.init, name, function)
                _saved_inits.clear()


def build_on_meta(build: Callable[[], Any]) -> Any | None:
    """`build()` (a spandrel `Architecture.load(state_dict)`) with its module made on the meta
    device and the state dict assigned into it by the descriptor's strict `load_state_dict`;
    None when a tensor stays on the meta device (a buffer the checkpoint does not hold), so
    the caller builds the ordinary way."""
    import torch

    owner = threading.get_ident()
    ordinary_load = torch.nn.Module.load_state_dict

    def assigning_load(self: torch.nn.Module, state_dict: Any, strict: bool = True, assign: bool = False) -> Any:  # fmt: skip
        if threading.get_ident() != owner:  # another thread's load: untouched
            return ordinary_load(self, state_dict, strict=strict, assign=assign)
        declared = self.state_dict(keep_vars=True)
        converted = {
            key: value.to(declared[key].dtype)
            if key in declared and value.dtype != declared[key].dtype
            else value
            for key, value in state_dict.items()
        }
        return ordinary_load(self, converted, strict=True, assign=True)

    with _meta_lock:
        torch.nn.Module.load_state_dict = assigning_load  # type: ignore[method-assign]
        try:
            # No random init either: torch's `normal_` on meta tensors imports torch._dynamo.
            with no_random_init(), torch.device("meta"):
                descriptor = build()
        finally:
            torch.nn.Module.load_state_dict = ordinary_load  # type: ignore[method-assign]
    module = descriptor.model
    if any(t.is_meta for t in (*module.parameters(), *module.buffers())):
        return None
    return descriptor


_meta_lock = threading.Lock()
