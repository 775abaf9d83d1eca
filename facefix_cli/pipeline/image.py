"""`fix_images` and `fix_image`: the per-image work, arrays in and arrays out. Upscale, then
restore the faces found in the upscaled image (or, with `Recipe.order` restore-first, restore
the faces of the original, then upscale the result). No files, no events: executors call these.

Faces are looked for at the image's own size up to `Recipe.detect_size`, on a smaller copy
above it (`ops.detect.detect_faces`), and chosen by the recipe's face rules
(`ops.detect.select_faces`): the faces restored and how many were found are in the result.

Batch-first: images of one size go through the upscaler and the detector as one
N x 3 x H x W batch; the faces of every image in the batch are aligned, restored and parsed
together (in bounded face batches: one face at a time on a CPU), pasted back and blended
where the images are, and each image comes back to the host once, at the end. The CPU runs
the same code.

Guarantees: one result per source, in order; a batch's results equal `fix_image` of each
source within 1/255 (8-bit) per channel (convolutions may sum in another order for another
batch size); the same input, recipe, weights, device and batch give the same bytes; pixels
outside the pasted faces' masks are the upscaled image's, exactly. An out-of-memory error on a
batch of several images retries them one at a time (the upscaler itself first retries with
smaller tiles).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facefix_cli.io.read import SourceImage
from facefix_cli.networks.cache import Networks
from facefix_cli.operations import Operation, OperationType, RecordedFace
from facefix_cli.ops.align import alignment_matrix, warp_faces
from facefix_cli.ops.detect import Face, detect_faces, scale_faces, select_faces
from facefix_cli.ops.paste import blend_restored, face_masks, inverse_region, paste_faces
from facefix_cli.ops.upscale import upscale, upscale_alpha
from facefix_cli.recipe import DEFAULT_DETECT_SIZE, DEFAULT_FACE_THRESHOLD, Recipe


@dataclass(frozen=True)
class FixedImage:
    rgb: np.ndarray  # float32, H x W x 3, [0, 1]
    alpha: np.ndarray | None
    faces: int
    operations: list[Operation]
    # The faces restored: box, score and landmarks in the output image's pixel coordinates.
    detections: tuple[Face, ...] = field(default=())
    found: int = 0  # faces the detector found, restored or not

    @property
    def skipped(self) -> int:
        """Faces found but not restored (the recipe's face rules chose others)."""
        return max(self.found - self.faces, 0)

    @property
    def upscaled(self) -> bool:
        return any(op.type == "esrgan" for op in self.operations)

    @property
    def looked_for_faces(self) -> bool:
        """A restoration ran (whether or not it found faces)."""
        return any(op.type != "esrgan" for op in self.operations)


def fix_image(source: SourceImage, recipe: Recipe, networks: Networks) -> FixedImage:
    """Upscale, then restore the faces of the upscaled image. Pure arrays in, arrays out."""
    return fix_images([source], recipe, networks)[0]


def fix_images(sources: list[SourceImage], recipe: Recipe, networks: Networks) -> list[FixedImage]:
    """The batch form of `fix_image`, the seam executors call: one result per source, in
    order. Sources of one size share network passes."""
    results: list[FixedImage | None] = [None] * len(sources)
    groups: dict[tuple[int, int], list[int]] = {}
    for index, source in enumerate(sources):
        groups.setdefault(source.rgb.shape[:2], []).append(index)
    for indices in groups.values():
        batch = [sources[i] for i in indices]
        for index, fixed in zip(indices, _fix_same_size(batch, recipe, networks), strict=True):
            results[index] = fixed
    return results  # type: ignore[return-value]


def _fix_same_size(
    batch: list[SourceImage], recipe: Recipe, networks: Networks
) -> list[FixedImage]:
    try:
        return _fix_batch(batch, recipe, networks)
    except torch.OutOfMemoryError:
        if len(batch) == 1:
            raise
    # Outside the except block, so the failed batch's tensors are already released.
    if networks.device.type == "cuda":
        torch.cuda.empty_cache()
    return [fixed for source in batch for fixed in _fix_batch([source], recipe, networks)]


def _to_device(planes: list[np.ndarray], device: torch.device) -> torch.Tensor:
    """N x C x H x W float32 on `device` from N host arrays (H x W x C or H x W): one copy."""
    stacked = torch.from_numpy(np.stack(planes))
    if stacked.ndim == 3:
        stacked = stacked[..., None]
    return stacked.to(device).permute(0, 3, 1, 2).contiguous()


@torch.inference_mode()
def _fix_batch(batch: list[SourceImage], recipe: Recipe, networks: Networks) -> list[FixedImage]:
    device = networks.device
    images = _to_device([source.rgb for source in batch], device)
    with_alpha = [i for i, source in enumerate(batch) if source.alpha is not None]
    alpha_planes = [source.alpha for source in batch if source.alpha is not None]
    alphas = _to_device(alpha_planes, device) if alpha_planes else None
    restoring = recipe.restore_with is not None
    restore_first = restoring and recipe.upscales and recipe.order == "restore-first"
    chosen: list[tuple[Face, ...]] = [()] * len(batch)
    found = [0] * len(batch)
    if restore_first:
        # Faces are chosen by their size in the output, which is the upscaler's scale larger.
        chosen, found = _restore_faces(images, recipe, networks, networks.upscaler.scale)
    upscaling: list[Operation] = []
    if recipe.upscales:
        model = networks.upscaler
        height, width = images.shape[2:]
        images = upscale(
            images,
            model,
            strength=recipe.upscale_strength,
            tile=networks.tile_for(height, width, len(batch)),
            fallback=networks.upscaler_fallback,
        )
        if alphas is not None:
            alphas = upscale_alpha(alphas, images.shape[2], images.shape[3])
        upscaling.append(
            Operation(
                type="esrgan",
                scale=model.scale,
                strength=recipe.upscale_strength,
                model=networks.upscaler_path.name,
                sha256=networks.upscaler_sha256,
                precision=networks.upscaler_precision,
            )
        )
        if restore_first:  # the faces' places in the output, as the upscale moved them
            chosen = [
                tuple(scale_faces(list(faces), images.shape[3] / width, images.shape[2] / height))
                for faces in chosen
            ]
    if restoring and not restore_first:
        chosen, found = _restore_faces(images, recipe, networks, 1)
    results = []
    for index in range(len(batch)):
        restore = _restore_operation(recipe, networks, chosen[index], found[index])
        restoration = [restore] if restore else []
        operations = restoration + upscaling if restore_first else upscaling + restoration
        planes = images[index]
        if alphas is not None and index in with_alpha:
            planes = torch.cat([planes, alphas[with_alpha.index(index)]])
        host = planes.permute(1, 2, 0).contiguous().cpu().numpy()  # the one copy back
        rgb, alpha = host, None
        if index in with_alpha:
            rgb, alpha = np.ascontiguousarray(host[:, :, :3]), np.ascontiguousarray(host[:, :, 3])
        results.append(
            FixedImage(rgb, alpha, len(chosen[index]), operations, chosen[index], found[index])
        )
    return results


def _restore_faces(
    images: torch.Tensor, recipe: Recipe, networks: Networks, output_scale: int
) -> tuple[list[tuple[Face, ...]], list[int]]:
    """Restore the chosen faces of every image in place (N x 3 x H x W); per image, the faces
    restored and how many were found. `output_scale`: how much larger the output will be
    than `images` (--min-face is in output pixels). Faces of all images are gathered, so the
    restorer and parser see full batches."""
    height, width = images.shape[2:]
    every = detect_faces(networks.detector, images, recipe.detect_size)
    selected = [
        tuple(
            select_faces(
                found,
                (width, height),
                only_center_face=recipe.only_center_face,
                min_size=recipe.min_face / output_scale,
                min_share=recipe.min_face_share,
                max_faces=recipe.max_faces,
            )
        )
        for found in every
    ]
    counts = [len(found) for found in every]
    if not any(selected):  # no face: the restorer and parser are never loaded
        return selected, counts
    restorer = networks.face_restorer
    size = restorer.size  # 512 for GFPGAN and CodeFormer; an ONNX model's own input size
    matrices = [[alignment_matrix(face.landmarks, size) for face in faces] for faces in selected]
    crops = torch.cat(
        [warp_faces(image, mats, size) for image, mats in zip(images, matrices, strict=True)]
    )
    restored = restorer.restore(crops, recipe.fidelity)
    masks = face_masks(networks.parser, restored, networks.face_batch)
    start = 0
    for index, mats in enumerate(matrices):
        if not mats:
            continue
        end = start + len(mats)
        # Pasted and blended only in the faces' window: elsewhere the blend gives the image
        # back exactly, and on an 8192 px output a full-size copy is 768 MiB.
        regions = [inverse_region(m, width, height, size) for m in mats]
        if boxes := [r for r in regions if r is not None]:
            x0, y0 = min(b[0] for b in boxes), min(b[1] for b in boxes)
            x1, y1 = max(b[2] for b in boxes), max(b[3] for b in boxes)
            area = images[index][:, y0:y1, x0:x1]
            pasted = area.clone()
            window = (x0, y0, width, height)
            paste_faces(pasted, restored[start:end], masks[start:end], mats, window)
            area.copy_(blend_restored(area, pasted, recipe.restore_strength))
        start = end
    return selected, counts


def _restore_operation(
    recipe: Recipe, networks: Networks, faces: tuple[Face, ...], found: int
) -> Operation | None:
    if recipe.restore_with is None:
        return None
    detections = tuple(RecordedFace.rounded(face.box, face.score, face.landmarks) for face in faces)
    if recipe.restorer_path is not None:
        return restorer_operation(recipe, recipe.restorer_path, networks, detections, found)
    info = networks.restorer_info
    codeformer = recipe.restore_with == "codeformer"
    return Operation(
        type=recipe.restore_with,
        strength=recipe.restore_strength,
        fidelity=recipe.fidelity if codeformer else None,
        version=None if codeformer else recipe.gfpgan_version,
        model=info.file,
        sha256=networks.restorer_sha256,
        faces=len(faces),
        detections=detections,
        **_face_choices(recipe, len(faces), found),
    )


def _face_choices(recipe: Recipe, restored: int, found: int) -> dict[str, Any]:
    """The record's face choices: only what differs from the defaults, so runs without
    these choices record as before."""
    return {
        "found": found if found != restored else None,
        "face_threshold": (
            recipe.face_threshold if recipe.face_threshold != DEFAULT_FACE_THRESHOLD else None
        ),
        "min_face": recipe.min_face or None,
        "min_face_share": recipe.min_face_share or None,
        "max_faces": recipe.max_faces,
        "detect_size": recipe.detect_size if recipe.detect_size != DEFAULT_DETECT_SIZE else None,
    }


def restorer_operation(
    recipe: Recipe, path: Path, networks: Networks, detections: tuple[RecordedFace, ...], found: int
) -> Operation:
    """The record of a --restorer file: its name, SHA-256, architecture and crop size; typed
    `gfpgan` or `codeformer` when it is one (so A1111 and InvokeAI see what they know)."""
    restorer = networks.face_restorer
    kind: OperationType = "restorer"
    if restorer.takes_fidelity:
        kind = "codeformer"
    elif restorer.architecture == "GFPGAN":
        kind = "gfpgan"
    return Operation(
        type=kind,
        strength=recipe.restore_strength,
        fidelity=recipe.fidelity if restorer.takes_fidelity else None,
        model=path.name,
        sha256=networks.restorer_sha256,
        architecture=restorer.architecture,
        size=restorer.size,
        faces=len(detections),
        detections=detections,
        **_face_choices(recipe, len(detections), found),
    )
