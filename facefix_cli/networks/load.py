"""Load checkpoints into networks: spandrel for upscalers and face restorers, facexlib for the
face detector and parser. Only tensors are unpickled (`weights_only=True`) or safetensors.

Leanly (`networks.lean`): files are memory-mapped rather than read whole, a known
architecture is imported alone rather than spandrel's every architecture, and modules are
built without the random initialisation that the strict weight load replaces at once. The
networks, and so the outputs, are the same as with the ordinary path."""

from __future__ import annotations

import functools
import importlib
import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from facefix_cli.errors import SetupError, first_line
from facefix_cli.networks.lean import (
    build_on_meta,
    facexlib_module,
    no_random_init,
    spandrel_architecture,
)
from facefix_cli.weights import digests

if TYPE_CHECKING:
    from spandrel import ImageModelDescriptor


@functools.cache
def _install_extra_arches() -> None:
    # CodeFormer lives in spandrel-extra-arches; registering it once per process is enough.
    with warnings.catch_warnings():
        # CodeFormer's module applies torch.jit.script at import; its deprecation notice would
        # land in every cron log.
        warnings.simplefilter("ignore", FutureWarning)
        import spandrel_extra_arches

    spandrel_extra_arches.install()


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A checkpoint's tensors, without running any pickled code."""
    try:
        if path.suffix.lower() == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path), device="cpu")
        try:
            # Mapped, not read: pages are read as the weights are copied into the module.
            return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as exc:
            if "mmap" not in str(exc):  # a legacy (pre-zip) file cannot be mapped
                raise
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise SetupError(f"model file not found: {path}") from None
    except Exception as exc:  # torch raises many types for bad files; all mean the same to a user
        raise SetupError(
            f"cannot load model file {path}: {first_line(exc, type(exc).__name__)[:200]}"
        ) from None


# spandrel architectures a caller may name: (module in spandrel.architectures, class)
ARCHITECTURES = {"ESRGAN": ("ESRGAN", "ESRGANArch"), "GFPGAN": ("GFPGAN", "GFPGANArch")}


def load_spandrel_model(
    path: Path, device: torch.device, architecture: str | None = None
) -> ImageModelDescriptor[Any]:
    """A spandrel ImageModelDescriptor (ESRGAN, GFPGAN, CodeFormer and the rest), in eval mode.
    `architecture` (a key of ARCHITECTURES), when the caller knows it, is imported alone and
    tried first. Without one, the architecture the file's digest sidecar remembers (from the
    last time it was identified, for the file as it is now) is imported alone and tried; a
    file neither fits goes through spandrel's full registry, and the architecture found there
    is remembered in the sidecar for the next run."""
    import spandrel

    state_dict = spandrel.canonicalize_state_dict(load_state_dict(path))
    remembered = None if architecture is not None else digests.cached_architecture(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            descriptor = _load_known(state_dict, architecture)
            if descriptor is None and remembered is not None:
                descriptor = _load_with(state_dict, remembered_architecture(remembered))
            if descriptor is None:
                _install_extra_arches()
                descriptor = spandrel.ModelLoader(device).load_from_state_dict(state_dict)
                if architecture is None:  # identified once: later runs import it alone
                    digests.remember_architecture(path, architecture_name(descriptor))
            descriptor = descriptor.to(device)
    except spandrel.UnsupportedModelError:
        raise SetupError(f"{path} is not a model architecture facefix can load") from None
    except (RuntimeError, KeyError, ValueError) as exc:
        raise SetupError(f"cannot build a model from {path}: {first_line(exc)[:200]}") from None
    if not isinstance(descriptor, spandrel.ImageModelDescriptor):  # an inpainting model
        raise SetupError(f"{path} is a masked-image (inpainting) model, not an image model")
    descriptor.eval()
    return descriptor


def _load_known(
    state_dict: dict[str, torch.Tensor], architecture: str | None
) -> ImageModelDescriptor[Any] | None:
    if architecture is None:
        return None
    return _load_with(state_dict, spandrel_architecture(*ARCHITECTURES[architecture]))


# Where spandrel's architectures live: a remembered name outside these is never imported.
_ARCHITECTURE_PACKAGES = ("spandrel.architectures.", "spandrel_extra_arches.architectures.")
_ARCHITECTURE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_]*Arch")


def architecture_name(descriptor: Any) -> str:
    """`module:Class` of the spandrel architecture that built `descriptor`, as the digest
    sidecar remembers it (`spandrel.architectures.SPAN:SPANArch`)."""
    kind = type(descriptor.architecture)
    return f"{kind.__module__}:{kind.__qualname__}"


def remembered_architecture(name: str) -> Any | None:
    """An instance of the architecture a sidecar remembers, imported alone; None for a name
    that is not a spandrel architecture class (a sidecar is a file others may write: nothing
    but spandrel's own architecture modules is ever imported from it) or that fails."""
    if not _ARCHITECTURE_NAME.fullmatch(name) or not name.startswith(_ARCHITECTURE_PACKAGES):
        return None
    module, _, class_name = name.partition(":")
    try:
        import spandrel

        kind = getattr(importlib.import_module(module), class_name)
        if not (isinstance(kind, type) and issubclass(kind, spandrel.Architecture)):
            return None
        return kind()
    except Exception:  # noqa: BLE001 - any failure means: identify the file again
        return None


def _load_with(
    state_dict: dict[str, torch.Tensor], arch: Any | None
) -> ImageModelDescriptor[Any] | None:
    """The descriptor `arch` builds from `state_dict`, or None if it does not fit it."""
    if arch is None or not arch.detect(state_dict):
        return None
    # spandrel's descriptor loads the state dict strictly into the module it is given, so the
    # random draws of the build would be overwritten anyway (ESRGAN and GFPGAN: every tensor).
    descriptor = build_on_meta(lambda: arch.load(state_dict))
    if descriptor is not None:
        return descriptor
    with no_random_init():
        return arch.load(state_dict)


def _strip_prefix(state_dict: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k.removeprefix(prefix): v for k, v in state_dict.items()}


def load_retinaface(path: Path, network_name: str, device: torch.device) -> torch.nn.Module:
    """facexlib's RetinaFace ('resnet50' or 'mobile0.25') with the checkpoint's weights."""
    retinaface = facexlib_module("facexlib.detection.retinaface")
    with warnings.catch_warnings(), no_random_init():
        warnings.simplefilter("ignore")  # torchvision's deprecation notice for `pretrained=`
        net = retinaface.RetinaFace(network_name=network_name, half=False, device=device)
    # The released file was saved from DataParallel, so its keys start with "module.".
    state_dict = _strip_prefix(load_state_dict(path), "module.")
    _load_strict(net, state_dict, path)
    return net.to(device).eval()


def load_parsenet(path: Path, device: torch.device) -> torch.nn.Module:
    parsenet = facexlib_module("facexlib.parsing.parsenet")
    with no_random_init():
        net = parsenet.ParseNet(in_size=512, out_size=512, parsing_ch=19)
    _load_strict(net, load_state_dict(path), path)
    return net.to(device).eval()


def _load_strict(net: torch.nn.Module, state_dict: dict, path: Path) -> None:
    try:
        net.load_state_dict(state_dict, strict=True)
    except RuntimeError as exc:
        raise SetupError(f"{path} does not match the expected network: {first_line(exc)}") from None
