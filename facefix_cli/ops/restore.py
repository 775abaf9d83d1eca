"""Restore aligned 512 x 512 faces with GFPGAN or CodeFormer (spandrel descriptors).

Tensors in, tensors out, on the model's device: F x 3 x 512 x 512 float32 in [0, 1]. The model
runs in its own dtype (fp32 unless a precision was asked for); the result is float32, clamped
to [0, 1]. At most FACE_BATCH faces go through the network at once."""

from __future__ import annotations

import torch

FACE_BATCH = 4  # faces per forward pass; bounded so crowded images do not exhaust GPU memory


@torch.inference_mode()
def restore_faces(
    model, faces: torch.Tensor, *, fidelity: float = 0.5, batch: int = FACE_BATCH
) -> torch.Tensor:
    """Restored copies of aligned faces.

    The call depends on the architecture the descriptor reports: GFPGAN runs with its stored
    noise (randomize_noise=False) so results repeat; CodeFormer takes the fidelity weight.
    """
    restored: list[torch.Tensor] = []
    for chunk in faces.split(batch):
        tensor = (chunk * 2.0 - 1.0).to(model.dtype)  # the models take [-1, 1]
        if model.architecture.id == "CodeFormer":
            output = model.model(tensor, weight=fidelity, adain=True)[0]
        else:
            output = model.model(tensor, return_rgb=False, randomize_noise=False)[0]
        restored.append((output.float().clamp(-1.0, 1.0) + 1.0) / 2.0)
    return torch.cat(restored) if restored else faces.new_zeros(faces.shape)
