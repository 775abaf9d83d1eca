"""`fix_image`: the per-image work, pure arrays in and arrays out. Upscale, then restore the
faces found in the upscaled image. No files, no events: executors call this."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facefix.io.read import SourceImage
from facefix.networks.cache import Networks
from facefix.ops.align import alignment_matrix, warp_face
from facefix.ops.detect import Face, select_faces
from facefix.ops.paste import blend_restored, face_masks, paste_face
from facefix.ops.restore import restore_faces
from facefix.ops.upscale import upscale, upscale_alpha
from facefix.pipeline.options import FixOptions
from facefix.record import Detection, Operation


@dataclass(frozen=True)
class FixedImage:
    rgb: np.ndarray  # float32, H x W x 3, [0, 1]
    alpha: np.ndarray | None
    faces: int
    operations: list[Operation]
    detections: tuple[Face, ...] = ()  # the faces restored, in the output's pixels


def fix_image(source: SourceImage, options: FixOptions, networks: Networks) -> FixedImage:
    """Upscale, then restore the faces of the upscaled image. Pure arrays in, arrays out."""
    rgb, alpha = source.rgb, source.alpha
    operations: list[Operation] = []
    if options.upscales:
        model = networks.upscaler
        rgb = upscale(
            rgb,
            model,
            strength=options.upscale_strength,
            device=networks.device,
            tile=networks.tile,
            half=networks.half,
        )
        if alpha is not None:
            alpha = upscale_alpha(alpha, rgb.shape[1], rgb.shape[0])
        operations.append(
            Operation(
                type="esrgan",
                scale=model.scale,
                strength=options.upscale_strength,
                model=networks.upscaler_path.name,
                sha256=networks.upscaler_sha256,
            )
        )
    faces = 0
    found: list[Face] = []
    if options.restore_with is not None:
        height, width = rgb.shape[:2]
        found = select_faces(
            networks.detector(rgb), (width, height), only_center_face=options.only_center_face
        )
        faces = len(found)
        if found:
            matrices = [alignment_matrix(face.landmarks) for face in found]
            crops = [warp_face(rgb, matrix) for matrix in matrices]
            restored = restore_faces(
                networks.restorer, crops, device=networks.device, fidelity=options.fidelity
            )
            masks = face_masks(networks.parser, restored, networks.device)
            pasted = rgb.copy()
            for face, mask, matrix in zip(restored, masks, matrices, strict=True):
                paste_face(pasted, face, mask, matrix)
            rgb = blend_restored(rgb, pasted, options.restore_strength)
        info = networks.restorer_info
        codeformer = options.restore_with == "codeformer"
        operations.append(
            Operation(
                type=options.restore_with,
                strength=options.restore_strength,
                fidelity=options.fidelity if codeformer else None,
                version=None if codeformer else options.gfpgan_version,
                model=info.file,
                sha256=info.sha256,
                faces=faces,
                detections=tuple(
                    Detection.rounded(face.box, face.score, face.landmarks) for face in found
                ),
            )
        )
    return FixedImage(rgb, alpha, faces, operations, tuple(found))


def fix_images(
    sources: list[SourceImage], options: FixOptions, networks: Networks
) -> list[FixedImage]:
    """The batch form of `fix_image`, the seam executors call: one result per source, in order.
    Images of one size may share network passes; results must equal `fix_image`'s within the
    tolerances the tests state."""
    return [fix_image(source, options, networks) for source in sources]
