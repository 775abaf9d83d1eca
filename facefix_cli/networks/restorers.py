"""Face restorers behind one small interface: `FaceRestorer.restore(crops, fidelity)`.

Two kinds of file, chosen by the file and never by class checks:
- spandrel checkpoints (`.pth`, `.safetensors`, ...): any face model spandrel 0.4.2 or
  spandrel-extra-arches loads (GFPGAN, CodeFormer, RestoreFormer). What the model is comes
  from its descriptor: purpose `FaceSR`, scale 1, 3 channels in and out; its crop size is the
  smallest square its size requirements allow that is at least FFHQ's 512 (512 for all three);
  CodeFormer (architecture id) takes the fidelity weight.
- ONNX files (`.onnx`, run by ONNX Runtime, the `onnx` extra): the layout ReActor and
  FaceFusion load (GPEN-BFR-256/512/1024/2048, GFPGAN, CodeFormer, RestoreFormer++ exports):
  input 1 x 3 x S x S float RGB in [-1, 1], output the same, S read from the input's shape; a
  second input, if any, is CodeFormer's fidelity weight (a scalar or 1-element float/double
  tensor, its type read from the model).

Guarantees: `restore` takes F x 3 x S x S float32 crops in [0, 1] on the run's device and
returns the same shape, float32, clamped to [0, 1], on that device; the same crops give the
same result. Loading failures a user can cause are `SetupError`s with one line.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch

from facefix_cli.errors import SetupError, first_line
from facefix_cli.networks.load import load_spandrel_model
from facefix_cli.ops.align import FACE_SIZE
from facefix_cli.ops.restore import FACE_BATCH, restore_faces

if TYPE_CHECKING:
    from spandrel import ImageModelDescriptor

ONNX_SUFFIX = ".onnx"
TENSORRT_CACHE = "tensorrt"  # the engine cache's folder, inside the weights folder
ONNX_INSTALL_HINT = "install facefix[onnx] (pip install 'facefix[onnx]', or uv sync --extra onnx)"


class FaceRestorer(Protocol):
    """What the pipeline needs of a face model."""

    @property
    def size(self) -> int:
        """The side of the aligned square crops the model takes and returns."""
        ...

    @property
    def architecture(self) -> str:
        """spandrel's architecture id (`GFPGAN`, `CodeFormer`, `RestoreFormer`) or `ONNX`."""
        ...

    @property
    def takes_fidelity(self) -> bool:
        """Whether `fidelity` changes the result (CodeFormer and its exports)."""
        ...

    def restore(self, faces: torch.Tensor, fidelity: float) -> torch.Tensor:
        """Restored copies of F x 3 x S x S crops in [0, 1]."""
        ...


@dataclass
class SpandrelRestorer:
    """A spandrel FaceSR descriptor: GFPGAN, CodeFormer, RestoreFormer."""

    model: ImageModelDescriptor
    batch: int = FACE_BATCH  # faces per pass (`networks.device.face_batch`)

    @property
    def size(self) -> int:
        return spandrel_crop_size(self.model.size_requirements)

    @property
    def architecture(self) -> str:
        return str(self.model.architecture.id)

    @property
    def takes_fidelity(self) -> bool:
        return self.architecture == "CodeFormer"

    def restore(self, faces: torch.Tensor, fidelity: float) -> torch.Tensor:
        return restore_faces(self.model, faces, fidelity=fidelity, batch=self.batch)


def spandrel_crop_size(requirements: Any) -> int:
    """The smallest square a model's size requirements allow that is at least FFHQ's 512.
    GFPGAN (minimum 512), CodeFormer (multiple of 512), RestoreFormer (multiple of 32): 512."""
    multiple = max(int(requirements.multiple_of), 1)
    least = max(int(requirements.minimum), FACE_SIZE)
    return math.ceil(least / multiple) * multiple


def check_face_model(model: ImageModelDescriptor, path: Path) -> ImageModelDescriptor:
    """`model` if its descriptor says it restores RGB faces in place; SetupError otherwise."""
    if (
        model.purpose != "FaceSR"
        or model.scale != 1
        or model.input_channels != 3
        or model.output_channels != 3
    ):
        raise SetupError(
            f"{path.name} is a {model.architecture.name} {model.purpose} model "
            f"(x{model.scale}, {model.input_channels} channels), not a face restoration model"
        )
    return model


class OnnxRestorer:
    """An ONNX face model run by ONNX Runtime on the providers `choose_providers` picks."""

    architecture = "ONNX"

    def __init__(self, session: Any, path: Path, batch: int = FACE_BATCH) -> None:
        self.session = session
        inputs = session.get_inputs()
        outputs = session.get_outputs()
        image = inputs[0] if inputs else None
        shape = list(image.shape) if image is not None else []
        if (
            image is None
            or image.type != "tensor(float)"
            or len(shape) != 4
            or shape[1] != 3
            or not isinstance(shape[2], int)
            or shape[2] != shape[3]
            or shape[2] < 16
            or len(inputs) > 2
            or not outputs
        ):
            raise SetupError(
                f"{path.name} is not a face restoration model: its input is "
                f"{_describe_input(image)}, not a 1x3xSxS float RGB image"
            )
        self.image_name: str = image.name
        self._size: int = shape[2]
        # A fixed batch of 1 (GPEN's, most exports) runs one face at a time; a dynamic one
        # `batch` faces per pass (`networks.device.face_batch`).
        self.batch = shape[0] if isinstance(shape[0], int) and shape[0] > 0 else batch
        self.fidelity_name: str | None = None
        self.fidelity_dtype: type = np.float64
        self.fidelity_shape: tuple[int, ...] = ()
        if len(inputs) == 2:
            weight = inputs[1]
            dtypes = {"tensor(double)": np.float64, "tensor(float)": np.float32}
            if weight.type not in dtypes or math.prod(_fixed(weight.shape)) != 1:
                raise SetupError(
                    f"{path.name} is not a face restoration model: its second input is "
                    f"{_describe_input(weight)}, not a fidelity weight (one float or double)"
                )
            self.fidelity_name = weight.name
            self.fidelity_dtype = dtypes[weight.type]
            self.fidelity_shape = tuple(_fixed(weight.shape))
        out_shape = list(outputs[0].shape)
        if len(out_shape) != 4 or any(
            isinstance(d, int) and d != want
            for d, want in zip(out_shape[1:], shape[1:], strict=True)
        ):
            raise SetupError(
                f"{path.name} is not a face restoration model: its output is "
                f"{_describe_input(outputs[0])}, not the input's 1x3x{shape[2]}x{shape[3]}"
            )
        self.output_name: str = outputs[0].name

    @property
    def size(self) -> int:
        return self._size

    @property
    def takes_fidelity(self) -> bool:
        return self.fidelity_name is not None

    def restore(self, faces: torch.Tensor, fidelity: float) -> torch.Tensor:
        if faces.shape[0] == 0:
            return faces.new_zeros(faces.shape)
        feeds: dict[str, np.ndarray] = {}
        if self.fidelity_name is not None:
            feeds[self.fidelity_name] = np.full(
                self.fidelity_shape, fidelity, dtype=self.fidelity_dtype
            )
        restored = []
        # The crops cross to the host: ONNX Runtime takes numpy (its CUDA provider copies in).
        host = (faces.float() * 2.0 - 1.0).cpu().numpy()
        for start in range(0, len(host), self.batch):
            feeds[self.image_name] = np.ascontiguousarray(host[start : start + self.batch])
            (output,) = self.session.run([self.output_name], feeds)
            restored.append(np.asarray(output, dtype=np.float32))
        result = torch.from_numpy(np.concatenate(restored)).to(faces.device)
        if result.shape != faces.shape:  # a symbolic output shape that resolved otherwise
            raise ValueError(
                f"the ONNX restorer returned {tuple(result.shape)} for {tuple(faces.shape)}"
            )
        return (result.clamp(-1.0, 1.0) + 1.0) / 2.0


def _fixed(shape: list[Any]) -> list[int]:
    """A shape with symbolic dimensions taken as 1 (a scalar's shape is [])."""
    return [d if isinstance(d, int) and d > 0 else 1 for d in shape]


def _describe_input(node: Any) -> str:
    if node is None:
        return "missing"
    dims = "x".join(str(d) for d in node.shape) or "a scalar"
    return f"{dims} {node.type.removeprefix('tensor(').rstrip(')')}"


def choose_providers(
    available: list[str], device: torch.device, cache_dir: Path
) -> list[str | tuple[str, dict[str, Any]]]:
    """ONNX Runtime's execution providers for `device`, best first: on a CUDA device,
    TensorRT where the build has it (its engines cached in `cache_dir`, so they are built once),
    then CUDA, then the CPU; elsewhere the CPU only."""
    providers: list[str | tuple[str, dict[str, Any]]] = []
    if device.type == "cuda":
        index = device.index or 0
        if "TensorrtExecutionProvider" in available:
            providers.append(
                (
                    "TensorrtExecutionProvider",
                    {
                        "device_id": index,
                        "trt_engine_cache_enable": True,
                        "trt_engine_cache_path": str(cache_dir),
                    },
                )
            )
        if "CUDAExecutionProvider" in available:
            providers.append(("CUDAExecutionProvider", {"device_id": index}))
    providers.append("CPUExecutionProvider")
    return providers


def import_onnxruntime() -> Any:
    try:
        import onnxruntime  # type: ignore[import-untyped]
    except ImportError:
        raise SetupError(f"ONNX restorers need ONNX Runtime: {ONNX_INSTALL_HINT}") from None
    return onnxruntime


def load_onnx_restorer(
    path: Path, device: torch.device, weights_dir: Path, batch: int = FACE_BATCH
) -> OnnxRestorer:
    """An `.onnx` face model on `device`'s providers (TensorRT's engines kept in the weights
    folder's `tensorrt/`). On the CPU its threads sleep while they wait, as torch's do
    (OMP_WAIT_POLICY=PASSIVE): ONNX Runtime's spin by default, against other jobs' cores."""
    ort = import_onnxruntime()
    if not path.is_file():
        raise SetupError(f"--restorer: no such model file: {path}")
    providers = choose_providers(
        ort.get_available_providers(), device, weights_dir / TENSORRT_CACHE
    )
    if any(isinstance(p, tuple) and p[0] == "TensorrtExecutionProvider" for p in providers):
        (weights_dir / TENSORRT_CACHE).mkdir(parents=True, exist_ok=True)
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: its warnings would land in every cron log
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # As many threads as torch takes (OMP_NUM_THREADS, else the cores), not ONNX Runtime's own
    # count of physical cores, which ignores OMP_NUM_THREADS and the CPU affinity.
    options.intra_op_num_threads = torch.get_num_threads()
    try:
        session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
    except Exception as exc:  # ONNX Runtime raises its own types for unreadable models
        raise SetupError(
            f"cannot load {path.name} with ONNX Runtime: {first_line(exc, type(exc).__name__)[:200]}"
        ) from None
    return OnnxRestorer(session, path, batch)


def load_restorer(
    path: Path,
    device: torch.device,
    weights_dir: Path,
    dtype: torch.dtype = torch.float32,
    batch: int = FACE_BATCH,
) -> FaceRestorer:
    """The face model in `path`: ONNX Runtime for `.onnx` files, spandrel for the rest; `batch`
    faces per pass where the model allows it."""
    if path.suffix.lower() == ONNX_SUFFIX:
        return load_onnx_restorer(path, device, weights_dir, batch)
    model = check_face_model(load_spandrel_model(path, device), path)
    if (dtype == torch.bfloat16 and model.supports_bfloat16) or (
        dtype == torch.float16 and model.supports_half
    ):
        model.to(dtype)
    return SpandrelRestorer(model, batch)
