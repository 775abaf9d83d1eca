"""Restore aligned faces with a spandrel face model (GFPGAN, CodeFormer, RestoreFormer, ...).

Tensors in, tensors out, on the model's device: F x 3 x S x S float32 in [0, 1] (S = 512 for
GFPGAN and CodeFormer; see `networks.restorers` for the crop size of other models). The model
runs in its own dtype (fp32 unless a precision was asked for); the result is float32, clamped
to [0, 1]. At most FACE_BATCH faces go through the network at once."""

from __future__ import annotations

from typing import Any, Protocol

import torch

FACE_BATCH = 4  # faces per forward pass; bounded so crowded images do not exhaust GPU memory


class FaceModel(Protocol):
    """What `restore_faces` needs of a face model: a spandrel `ImageModelDescriptor` is one
    (`architecture.id` names it; `model` is the network that GFPGAN and CodeFormer are called
    through with their own arguments)."""

    @property
    def architecture(self) -> Any: ...

    @property
    def dtype(self) -> torch.dtype: ...

    @property
    def model(self) -> Any: ...

    def __call__(self, image: torch.Tensor) -> torch.Tensor: ...


@torch.inference_mode()
def restore_faces(
    model: FaceModel, faces: torch.Tensor, *, fidelity: float = 0.5, batch: int = FACE_BATCH
) -> torch.Tensor:
    """Restored copies of aligned faces.

    The call depends on the architecture the descriptor reports: GFPGAN runs with its stored
    noise (randomize_noise=False) so results repeat; CodeFormer takes the fidelity weight;
    any other face model runs through the descriptor's own call ([0, 1] in and out).
    """
    restored: list[torch.Tensor] = []
    for chunk in faces.split(batch):
        architecture = model.architecture.id
        if architecture not in ("CodeFormer", "GFPGAN"):
            restored.append(model(chunk.to(model.dtype)).float().clamp(0.0, 1.0))
            continue
        tensor = (chunk * 2.0 - 1.0).to(model.dtype)  # the models take [-1, 1]
        if architecture == "CodeFormer":
            output = model.model(tensor, weight=fidelity, adain=True)[0]
        else:
            output = model.model(tensor, return_rgb=False, randomize_noise=False)[0]
        restored.append((output.float().clamp(-1.0, 1.0) + 1.0) / 2.0)
    return torch.cat(restored) if restored else faces.new_zeros(faces.shape)
