"""Restore aligned 512 x 512 faces with GFPGAN or CodeFormer (spandrel descriptors)."""

from __future__ import annotations

import numpy as np
import torch

FACE_BATCH = 4  # faces per forward pass; bounded so crowded images do not exhaust GPU memory


@torch.inference_mode()
def restore_faces(
    model, faces: list[np.ndarray], *, device: torch.device, fidelity: float = 0.5
) -> list[np.ndarray]:
    """Restored copies of aligned float RGB faces, in [0, 1].

    The call depends on the architecture the descriptor reports: GFPGAN runs with its stored
    noise (randomize_noise=False) so results repeat; CodeFormer takes the fidelity weight.
    """
    restored: list[np.ndarray] = []
    for start in range(0, len(faces), FACE_BATCH):
        batch = np.stack(faces[start : start + FACE_BATCH]).transpose(0, 3, 1, 2)
        tensor = torch.from_numpy(np.ascontiguousarray(batch)).to(device, torch.float32)
        tensor = tensor * 2.0 - 1.0  # the models take [-1, 1]
        if model.architecture.id == "CodeFormer":
            output = model.model(tensor, weight=fidelity, adain=True)[0]
        else:
            output = model.model(tensor, return_rgb=False, randomize_noise=False)[0]
        output = ((output.float().clamp(-1.0, 1.0) + 1.0) / 2.0).permute(0, 2, 3, 1).cpu().numpy()
        restored.extend(np.ascontiguousarray(face) for face in output)
    return restored
