"""`Networks`: the networks one run needs, each loaded on first use and kept for the run.

Loading is lazy so that a run with nothing to do loads nothing, a run that only upscales
never reads the face models, and the restorer and parser are loaded at the first image that
has a face (a run over renders without faces never pays for them)."""

from __future__ import annotations

import copy
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from facefix_cli.errors import SetupError
from facefix_cli.networks.detectors import load_detector
from facefix_cli.networks.device import (
    DTYPES,
    channels_last_parser,
    channels_last_upscaler,
    face_batch,
    face_dtype,
    upscale_memory_budget,
    upscaler_dtype,
)
from facefix_cli.networks.load import load_parsenet, load_spandrel_model
from facefix_cli.networks.restorers import FaceRestorer, SpandrelRestorer, load_restorer
from facefix_cli.ops.detect import FaceDetector
from facefix_cli.ops.upscale import choose_tile
from facefix_cli.recipe import Recipe
from facefix_cli.weights import digests, registry

if TYPE_CHECKING:
    from spandrel import ImageModelDescriptor


# MPS reports no free memory to size tiles from: its old fixed default.
MPS_TILE = 512


class Networks:
    """Upscaler, face restorer, face detector and face parser for one recipe on one device."""

    def __init__(
        self,
        recipe: Recipe,
        weights_dir: Path,
        device: torch.device,
        table: registry.Registry = registry.REGISTRY,
    ) -> None:
        self.recipe = recipe
        self.weights_dir = weights_dir
        self.device = device
        # The run's registry: the files it checked or fetched are the files loaded here.
        self.registry = table

    def load_all(self) -> None:
        """Load the networks every file needs now, so the first file does not pay for them (and
        the load can be announced and timed on its own): the upscaler and the face detector.
        The restorer and the parser wait for the first face."""
        if self.recipe.upscales:
            _ = self.upscaler, self.upscaler_sha256
        if self.recipe.restore_with is not None:
            # GFPGAN/CodeFormer and ParseNet load at the first face. --restorer's file loads
            # now: it is the user's, so a wrong one is a setup error before any work (exit 2),
            # and every output's record needs its architecture and crop size.
            _ = self.restorer_info, self.restorer_sha256, self.detector
            if self.recipe.restorer_path is not None:
                _ = self.face_restorer

    def loading_text(self) -> str:
        """What a front end shows while `load_all` runs, naming what loads now and what at the
        first face: `loading realesrgan-x2plus, retinaface-resnet50 on cpu (gfpgan-1.4,
        parsenet at the first face)`."""
        recipe = self.recipe
        now: list[str] = []
        later: list[str] = []
        if recipe.upscales:
            upscaler = recipe.upscaler_path
            now.append(
                upscaler.name
                if upscaler is not None
                else registry.upscaler_for_scale(recipe.scale).name
            )
        if recipe.restore_with is not None:
            now.append(registry.DETECTORS[recipe.detector])
            if recipe.restorer_path is not None:
                now.append(recipe.restorer_path.name)
            else:
                later.append(self.restorer_info.name)
            later.append("parsenet")
        text = f"loading {', '.join(now)} on {self.device}"
        return f"{text} ({', '.join(later)} at the first face)" if later else text

    def _path(self, name: str) -> Path:
        return self.weights_dir / self.registry.get(name).file

    @property
    def upscaler_path(self) -> Path:
        """--upscaler's file, else the registry's Real-ESRGAN for --upscale."""
        if self.recipe.upscaler_path is not None:
            return self.recipe.upscaler_path
        return self._path(self.registry.upscaler_for_scale(self.recipe.scale).name)

    @cached_property
    def upscaler_fp32(self) -> ImageModelDescriptor:
        """The upscaler in fp32: the model itself at fp32, the fallback otherwise."""
        path = self.upscaler_path
        # The registry's Real-ESRGAN files are ESRGAN; a file of the user's may be anything.
        known = "ESRGAN" if self.recipe.upscaler_path is None else None
        model = load_spandrel_model(path, self.device, known)
        if model.purpose not in ("SR", "Restoration") or model.input_channels != 3:
            raise SetupError(
                f"{path} is a {model.architecture.name} {model.purpose} model, not an RGB upscaler"
            )
        return model

    @cached_property
    def upscaler(self) -> ImageModelDescriptor:
        """The upscaler in the precision asked for, where the architecture supports it."""
        dtype = upscaler_dtype(self.recipe.precision, self.device)
        model = self.upscaler_fp32
        if _supports(model, dtype):
            model = copy.deepcopy(model).to(dtype)
            if channels_last_upscaler(dtype, self.device):
                model.model.to(memory_format=torch.channels_last)
        return model

    @property
    def upscaler_precision(self) -> str | None:
        """The upscaler's dtype for the output's record when it is not fp32 (`bf16`)."""
        dtype = self.upscaler.dtype
        names = {value: name for name, value in DTYPES.items()}
        return None if dtype == torch.float32 else names.get(dtype, str(dtype))

    @property
    def upscaler_fallback(self) -> ImageModelDescriptor | None:
        """The fp32 model to redo an image whose reduced-precision output is not finite."""
        return None if self.upscaler.dtype == torch.float32 else self.upscaler_fp32

    @cached_property
    def upscaler_sha256(self) -> str:
        """The digest of the upscaler file's own bytes (cached beside it), never the
        registry's: a fine-tune or a damaged copy under a registry name is recorded as what
        it is."""
        return digests.file_sha256(self.upscaler_path)

    @cached_property
    def restorer_sha256(self) -> str:
        """The face restorer file's own digest (see `upscaler_sha256`): --restorer's file or
        the registry's GFPGAN/CodeFormer."""
        path = self.recipe.restorer_path or self._path(self.restorer_info.name)
        return digests.file_sha256(path)

    @cached_property
    def restorer(self) -> ImageModelDescriptor:
        known = "GFPGAN" if self.recipe.restore_with == "gfpgan" else None
        model = load_spandrel_model(self._path(self.restorer_info.name), self.device, known)
        if model.purpose != "FaceSR":
            raise SetupError(f"{self.restorer_info.file} is not a face restoration model")
        dtype = face_dtype(self.recipe.precision, self.device)
        if _supports(model, dtype):  # GFPGAN and CodeFormer: bf16 yes, fp16 no (spandrel)
            model.to(dtype)
        return model

    @cached_property
    def face_restorer(self) -> FaceRestorer:
        """The face model behind one interface: --restorer's file (spandrel or ONNX Runtime),
        else the registry's GFPGAN or CodeFormer."""
        path = self.recipe.restorer_path
        if path is None:
            return SpandrelRestorer(self.restorer, self.face_batch)
        dtype = face_dtype(self.recipe.precision, self.device)
        return load_restorer(path, self.device, self.weights_dir, dtype, self.face_batch)

    @cached_property
    def restorer_info(self) -> registry.ModelInfo:
        if self.recipe.restore_with == "codeformer":
            return self.registry.get("codeformer")
        return self.registry.get(registry.GFPGAN_VERSIONS[self.recipe.gfpgan_version])

    @cached_property
    def detector(self) -> FaceDetector:
        path = self._path(registry.DETECTORS[self.recipe.detector])
        return load_detector(self.recipe.detector, path, self.device, self.recipe.face_threshold)

    @cached_property
    def parser(self) -> torch.nn.Module:
        net = load_parsenet(self._path("parsenet"), self.device)
        if channels_last_parser(self.device):
            net = net.to(memory_format=torch.channels_last)
        return net

    @property
    def face_batch(self) -> int:
        """Faces per restorer and parser pass on this device."""
        return face_batch(self.device)

    def tile_for(self, height: int, width: int, batch: int) -> int:
        """The one place that decides the upscaler's tile: --tile if given, else whole images
        (0) when a batch of `batch` images of this size fits the device's memory budget, else
        tiles that do (`ops.upscale.choose_tile`); MPS, which reports no free memory: 512."""
        if self.recipe.tile is not None:
            return self.recipe.tile
        budget = upscale_memory_budget(self.device)
        if budget is None:
            return MPS_TILE
        return choose_tile(
            height,
            width,
            scale=self.upscaler.scale,
            batch=batch,
            budget_bytes=budget,
            element_size=self.upscaler.dtype.itemsize,
        )


def _supports(model: ImageModelDescriptor, dtype: torch.dtype) -> bool:
    if dtype == torch.float16:
        return model.supports_half
    if dtype == torch.bfloat16:
        return model.supports_bfloat16
    return False  # fp32: nothing to convert
