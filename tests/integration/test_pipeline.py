"""The pipeline with real networks (random weights) and a face at known landmarks.

GFPGAN and CodeFormer take seconds per face on a CPU, so each runs in as few tests as possible.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from conftest import gradient_image
from helpers import centred_face_detector, source_image

from facefix.networks.cache import Networks
from facefix.networks.load import load_parsenet
from facefix.ops import align, paste
from facefix.ops.upscale import upscale_alpha
from facefix.pipeline import FixOptions, fix_image

CPU = torch.device("cpu")


def models_for(options: FixOptions, calls: list) -> Networks:
    models = Networks(options, CPU)
    models.detector = centred_face_detector(calls)  # known landmarks through the detector interface
    return models


@pytest.fixture(scope="module")
def gfpgan_run(gfpgan_weights):
    """One upscale-then-GFPGAN run at strength 1, and the same at 0.5, on an RGBA picture."""
    base = dict(weights_dir=gfpgan_weights, scale=2, upscale_strength=0.75, restore_with="gfpgan")
    calls: list = []
    full_options = FixOptions(**base, restore_strength=1.0)
    models = models_for(full_options, calls)
    source = source_image(48, 40, alpha=True)
    full = fix_image(source, full_options, models)
    half_options = FixOptions(**base, restore_strength=0.5)
    half_models = models_for(half_options, calls)
    half_models.restorer, half_models.upscaler, half_models.parser = (
        models.restorer,
        models.upscaler,
        models.parser,
    )
    half = fix_image(source, half_options, half_models)
    upscaled_only = fix_image(source, FixOptions(weights_dir=gfpgan_weights, scale=2), models)
    return source, full, half, upscaled_only, models, calls


def test_faces_are_detected_on_the_upscaled_image(gfpgan_run):
    source, full, _, upscaled_only, _, calls = gfpgan_run
    assert calls[0] == (80, 96, 3)  # the detector saw the 2x image, not the input
    assert full.rgb.shape == upscaled_only.rgb.shape == (80, 96, 3)
    assert full.faces == 1


def test_the_restored_faces_are_in_the_result_and_its_record(gfpgan_run):
    _, full, _, upscaled_only, _, _ = gfpgan_run
    face = centred_face_detector([])(upscaled_only.rgb)[0]
    assert [d.box for d in full.detections] == [face.box]  # the Face objects themselves
    restoration = full.operations[-1]
    assert restoration.faces == 1
    (recorded,) = restoration.detections
    assert recorded.box == (0.0, 0.0, 96.0, 80.0) and recorded.score == 0.99
    np.testing.assert_allclose(recorded.landmarks, face.landmarks, atol=0.005)
    assert upscaled_only.detections == () and upscaled_only.operations[-1].detections is None


def test_restored_face_is_pasted_at_the_landmarks_and_nowhere_else(gfpgan_run):
    _, full, _, upscaled_only, _, _ = gfpgan_run
    landmarks = centred_face_detector([])(upscaled_only.rgb)[0].landmarks
    matrix = align.alignment_matrix(landmarks)
    # The paste mask is zero within MASK_BORDER of the aligned crop's edge, so nothing outside
    # the inner square, mapped back into the image, may change.
    inner = np.zeros((align.FACE_SIZE, align.FACE_SIZE), np.float32)
    inner[paste.MASK_BORDER : -paste.MASK_BORDER, paste.MASK_BORDER : -paste.MASK_BORDER] = 1
    allowed = cv2.warpAffine(inner, cv2.invertAffineTransform(matrix), (96, 80)) > 0
    changed = np.any(full.rgb != upscaled_only.rgb, axis=2)
    assert changed.any(), "the restored face was not pasted"
    assert not (changed & ~allowed).any(), "pixels outside the face area changed"
    assert allowed.mean() < 0.5  # the check above is not vacuous: most of the image is outside
    # The change is centred on the face: its centroid sits near the landmarks' centre.
    ys, xs = np.nonzero(changed)
    centre = landmarks.mean(axis=0)
    assert abs(xs.mean() - centre[0]) < 8 and abs(ys.mean() - centre[1]) < 8


def test_restore_strength_blends_linearly(gfpgan_run):
    _, full, half, upscaled_only, _, _ = gfpgan_run
    # Also a determinism check: the 0.5 run restored the face again from scratch.
    np.testing.assert_allclose(half.rgb, 0.5 * full.rgb + 0.5 * upscaled_only.rgb, atol=1e-5)


def test_alpha_is_upscaled_and_never_touched_by_restoration(gfpgan_run):
    source, full, _, upscaled_only, _, _ = gfpgan_run
    expected = upscale_alpha(source.alpha, 96, 80)
    np.testing.assert_array_equal(full.alpha, expected)
    np.testing.assert_array_equal(upscaled_only.alpha, expected)


def test_operations_record_models_digests_and_settings(gfpgan_run):
    _, full, half, _, _, _ = gfpgan_run
    esrgan, gfpgan = (operation.to_json() for operation in full.operations)
    assert esrgan["type"] == "esrgan" and esrgan["scale"] == 2 and esrgan["strength"] == 0.75
    assert esrgan["model"] == "RealESRGAN_x2plus.pth" and len(esrgan["sha256"]) == 64
    assert gfpgan == {
        "type": "gfpgan",
        "strength": 1.0,
        "version": "1.4",
        "model": "GFPGANv1.4.pth",
        "sha256": "e2cd4703ab14f4d01fd1383a8a8b266f9a5833dacee8e6a79d3bf21a1b6be5ad",
        "faces": 1,
    }
    assert half.operations[1].strength == 0.5


def test_codeformer_restores_at_known_landmarks_with_fidelity(codeformer_weights):
    options = FixOptions(
        weights_dir=codeformer_weights,
        restore_with="codeformer",
        restore_strength=1.0,
        fidelity=0.3,
    )
    calls: list = []
    source = source_image(64, 56)
    models = models_for(options, calls)
    fixed = fix_image(source, options, models)
    assert models.restorer.architecture.id == "CodeFormer"
    assert fixed.rgb.shape == (56, 64, 3) and fixed.faces == 1
    assert [operation.to_json() for operation in fixed.operations] == [
        {
            "type": "codeformer",
            "strength": 1.0,
            "fidelity": 0.3,
            "model": "codeformer.pth",
            "sha256": "1009e537e0c2a07d4cabce6355f53cb66767cd4b4297ec7a4a64ca4b8a5684b7",
            "faces": 1,
        }
    ]
    changed = np.any(fixed.rgb != source.rgb, axis=2)
    assert changed[28, 32] and not changed[0, 0] and not changed[-1, -1]


def test_face_mask_from_parsenet_is_soft_and_zero_at_the_crop_border(weights_dir):
    parser = load_parsenet(weights_dir / "parsing_parsenet.pth", CPU)
    mask = paste.face_mask(parser, gradient_image(512, 512), CPU)
    assert mask.shape == (512, 512) and mask.dtype == np.float32
    assert mask.min() >= 0.0 and mask.max() <= 1.0
    assert not mask[:10].any() and not mask[:, -10:].any()


def test_no_faces_means_upscaled_only(weights_dir):
    options = FixOptions(
        weights_dir=weights_dir, scale=2, restore_with="gfpgan", restore_strength=0.8
    )
    models = Networks(options, CPU)  # the real (random-weight) RetinaFace, which finds no face
    source = source_image(20, 16)
    fixed = fix_image(source, options, models)
    reference = fix_image(source, FixOptions(weights_dir=weights_dir, scale=2), models)
    assert fixed.faces == 0 and fixed.operations[1].faces == 0
    np.testing.assert_array_equal(fixed.rgb, reference.rgb)
    assert "restorer" not in vars(models)  # GFPGAN never loaded when no face needs it


def test_batched_face_masks_match_one_at_a_time():
    # A 1x1-convolution stand-in for ParseNet (same call and output form) keeps this cheap;
    # the real ParseNet runs in the test above.
    class TinyParser(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.conv = torch.nn.Conv2d(3, 19, 1)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
            return (self.conv(x),)

    parser = TinyParser()
    faces = [gradient_image(512, 512, seed=s) for s in range(6)]  # more than one batch
    batched = paste.face_masks(parser, faces, CPU)
    assert len(batched) == 6
    for face, mask in zip(faces, batched, strict=True):
        np.testing.assert_allclose(mask, paste.face_mask(parser, face, CPU), atol=1e-5)
    assert any(mask.max() > 0 for mask in batched)  # the comparison is not between empty masks
