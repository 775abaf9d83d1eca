"""The pipeline with real networks (random weights) and a face at known landmarks.

GFPGAN and CodeFormer take seconds per face on a CPU, so each runs in as few tests as possible.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import gradient_image
from helpers import (
    TinyParser,
    centred_face_detector,
    centred_faces,
    source_image,
    with_tiny_faces,
)

from facefix_cli.io.write import quantize
from facefix_cli.networks.cache import Networks
from facefix_cli.networks.load import load_parsenet
from facefix_cli.ops import align, detect, paste
from facefix_cli.ops.upscale import upscale_alpha
from facefix_cli.pipeline import fix_image, fix_images
from facefix_cli.recipe import Recipe

CPU = torch.device("cpu")


def models_for(recipe: Recipe, weights: Path, calls: list) -> Networks:
    models = Networks(recipe, weights, CPU)
    models.detector = centred_face_detector(calls)  # known landmarks through the detector interface
    return models


@pytest.fixture(scope="module")
def gfpgan_run(gfpgan_weights):
    """One upscale-then-GFPGAN run at strength 1, and the same at 0.5, on an RGBA picture."""
    base = dict(scale=2, upscale_strength=0.75, restore_with="gfpgan")
    calls: list = []
    full_options = Recipe(**base, restore_strength=1.0)
    models = models_for(full_options, gfpgan_weights, calls)
    source = source_image(48, 40, alpha=True)
    full = fix_image(source, full_options, models)
    half_options = Recipe(**base, restore_strength=0.5)
    half_models = models_for(half_options, gfpgan_weights, calls)
    half_models.restorer, half_models.upscaler, half_models.parser = (
        models.restorer,
        models.upscaler,
        models.parser,
    )
    half = fix_image(source, half_options, half_models)
    upscaled_only = fix_image(source, Recipe(scale=2), models)
    return source, full, half, upscaled_only, models, calls


def test_faces_are_detected_on_the_upscaled_image(gfpgan_run):
    source, full, _, upscaled_only, _, calls = gfpgan_run
    assert calls[0] == (1, 3, 80, 96)  # the detector saw the 2x image, not the input
    assert full.rgb.shape == upscaled_only.rgb.shape == (80, 96, 3)
    assert full.faces == 1


def test_the_restored_faces_are_in_the_result_and_its_record(gfpgan_run):
    _, full, _, upscaled_only, _, _ = gfpgan_run
    (face,) = centred_faces(*upscaled_only.rgb.shape[:2])
    assert [d.box for d in full.detections] == [face.box]  # the Face objects themselves
    restoration = full.operations[-1]
    assert restoration.faces == 1
    (recorded,) = restoration.detections
    assert recorded.box == (0.0, 0.0, 96.0, 80.0) and recorded.score == 0.99
    np.testing.assert_allclose(recorded.landmarks, face.landmarks, atol=0.005)
    assert upscaled_only.detections == () and upscaled_only.operations[-1].detections is None


def test_restored_face_is_pasted_at_the_landmarks_and_nowhere_else(gfpgan_run):
    _, full, _, upscaled_only, _, _ = gfpgan_run
    landmarks = centred_faces(80, 96)[0].landmarks
    assert full.detections[0].landmarks.tolist() == landmarks.tolist()
    matrix = align.alignment_matrix(landmarks)
    # The paste mask is zero within MASK_BORDER of the aligned crop's edge, so nothing outside
    # the inner square, mapped back into the image, may change.
    inner = np.zeros((align.FACE_SIZE, align.FACE_SIZE), np.float32)
    inner[paste.MASK_BORDER : -paste.MASK_BORDER, paste.MASK_BORDER : -paste.MASK_BORDER] = 1
    inverse = cv2.invertAffineTransform(matrix)
    allowed = align.warp_affine(torch.from_numpy(inner)[None, None], [inverse], (96, 80))[0, 0] > 0
    allowed = allowed.numpy()
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
    expected = upscale_alpha(torch.from_numpy(source.alpha)[None, None], 80, 96)[0, 0].numpy()
    np.testing.assert_array_equal(full.alpha, expected)
    np.testing.assert_array_equal(upscaled_only.alpha, expected)


def own_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_operations_record_models_digests_and_settings(gfpgan_run, gfpgan_weights):
    _, full, half, _, _, _ = gfpgan_run
    esrgan, gfpgan = (operation.to_json() for operation in full.operations)
    assert esrgan["type"] == "esrgan" and esrgan["scale"] == 2 and esrgan["strength"] == 0.75
    # The random stand-ins are recorded with their own digests, never the registry's.
    assert esrgan["model"] == "RealESRGAN_x2plus.pth"
    assert esrgan["sha256"] == own_digest(gfpgan_weights / "RealESRGAN_x2plus.pth")
    # The face's box, score and landmarks (checked in the test above) ride along in the record.
    assert [d["box"] for d in gfpgan.pop("detections")] == [[0.0, 0.0, 96.0, 80.0]]
    assert gfpgan == {
        "type": "gfpgan",
        "strength": 1.0,
        "version": "1.4",
        "model": "GFPGANv1.4.pth",
        "sha256": own_digest(gfpgan_weights / "GFPGANv1.4.pth"),
        "faces": 1,
    }
    assert half.operations[1].strength == 0.5


def test_codeformer_restores_at_known_landmarks_with_fidelity(codeformer_weights):
    recipe = Recipe(
        restore_with="codeformer",
        restore_strength=1.0,
        fidelity=0.3,
    )
    calls: list = []
    source = source_image(64, 56)
    models = models_for(recipe, codeformer_weights, calls)
    fixed = fix_image(source, recipe, models)
    assert models.restorer.architecture.id == "CodeFormer"
    assert fixed.rgb.shape == (56, 64, 3) and fixed.faces == 1
    (restoration,) = [operation.to_json() for operation in fixed.operations]
    assert [d["box"] for d in restoration.pop("detections")] == [[0.0, 0.0, 64.0, 56.0]]
    assert restoration == {
        "type": "codeformer",
        "strength": 1.0,
        "fidelity": 0.3,
        "model": "codeformer.pth",
        "sha256": own_digest(codeformer_weights / "codeformer.pth"),
        "faces": 1,
    }
    changed = np.any(fixed.rgb != source.rgb, axis=2)
    assert changed[28, 32] and not changed[0, 0] and not changed[-1, -1]


def test_face_mask_from_parsenet_is_soft_and_zero_at_the_crop_border(weights_dir):
    parser = load_parsenet(weights_dir / "parsing_parsenet.pth", CPU)
    face = torch.from_numpy(gradient_image(512, 512)).permute(2, 0, 1)[None]
    mask = paste.face_masks(parser, face)[0].numpy()
    assert mask.shape == (512, 512) and mask.dtype == np.float32
    assert mask.min() >= 0.0 and mask.max() <= 1.0
    assert not mask[:10].any() and not mask[:, -10:].any()


def test_the_cpu_parser_is_channels_last_with_the_same_face_masks(weights_dir):
    parser = Networks(Recipe(restore_with="gfpgan", restore_strength=1.0), weights_dir, CPU).parser
    assert parser.encoder[0].conv2d.weight.is_contiguous(memory_format=torch.channels_last)
    plain = load_parsenet(weights_dir / "parsing_parsenet.pth", CPU)
    assert plain.encoder[0].conv2d.weight.is_contiguous()  # the layout is the only difference
    face = torch.from_numpy(gradient_image(512, 512)).permute(2, 0, 1)[None]
    with torch.inference_mode():
        fast, reference = parser(face * 2 - 1)[0], plain(face * 2 - 1)[0]
    torch.testing.assert_close(fast, reference, rtol=0, atol=1e-4)
    # A pixel whose two best classes tie within the rounding may flip (1 in 262,144 here); the
    # mask it weights the paste with moves by far less than a level.
    classes = torch.from_numpy(paste.FACE_CLASSES)
    labels = fast.argmax(1), reference.argmax(1)
    assert float((labels[0] != labels[1]).float().mean()) < 1e-4
    masks = [paste.soften_masks(classes[label]) for label in labels]
    assert float(masks[0].max()) > 0
    torch.testing.assert_close(masks[0], masks[1], rtol=0, atol=0.5 / 255)


def test_no_faces_means_upscaled_only(gfpgan_weights):
    # the GFPGAN file is there (the record carries its digest) but never loaded
    recipe = Recipe(scale=2, restore_with="gfpgan", restore_strength=0.8)
    models = Networks(
        recipe, gfpgan_weights, CPU
    )  # the real (random-weight) RetinaFace, which finds no face
    source = source_image(20, 16)
    fixed = fix_image(source, recipe, models)
    reference = fix_image(source, Recipe(scale=2), models)
    assert fixed.faces == 0 and fixed.operations[1].faces == 0
    np.testing.assert_array_equal(fixed.rgb, reference.rgb)
    assert "restorer" not in vars(models)  # GFPGAN never loaded when no face needs it


def test_batched_face_masks_match_one_at_a_time():
    # TinyParser stands in for ParseNet to keep this cheap; the real one runs in the test above.
    parser = TinyParser()
    faces = torch.from_numpy(np.stack([gradient_image(512, 512, seed=s) for s in range(6)]))
    faces = faces.permute(0, 3, 1, 2).contiguous()  # more than one batch
    batched = paste.face_masks(parser, faces)
    assert batched.shape == (6, 512, 512)
    for index, mask in enumerate(batched):
        one = paste.face_masks(parser, faces[index : index + 1])[0]
        torch.testing.assert_close(mask, one, rtol=0, atol=1e-5)
    assert batched.max() > 0  # the comparison is not between empty masks


# --- batches ----------------------------------------------------------------------------


def faces_by_first_pixel(table: dict[float, int]):
    """A detector giving each image the number of faces `table` holds for its first pixel
    (restore-only runs hand the detector the source pixels unchanged), spread over the image."""

    def detect_faces(images: torch.Tensor) -> list[list]:
        found = []
        for image in images:
            height, width = image.shape[1:]
            count = table[round(float(image[0, 0, 0]), 6)]
            faces = []
            for k in range(count):
                landmarks = (align.FFHQ_TEMPLATE_512 - 256) * 0.1 + np.array(
                    [width * (k + 1) / (count + 1), height / 2]
                )
                faces.append(detect.Face((0, 0, width, height), 0.99, landmarks.astype(np.float32)))
            found.append(faces)
        return found

    return detect_faces


def assert_within_one_level(a: np.ndarray, b: np.ndarray) -> None:
    assert np.abs(quantize(a, 8).astype(int) - quantize(b, 8).astype(int)).max() <= 1


def test_batch_equals_one_at_a_time_with_faces_gathered_across_images(weights_dir):
    recipe = Recipe(restore_with="gfpgan", restore_strength=0.7)
    sources = [source_image(120, 64, seed=s) for s in (11, 12, 13)] + [source_image(40, 30)]
    counts = [2, 0, 1, 1]  # faces per image; the last image has another size
    models = Networks(recipe, weights_dir, CPU)
    models.detector = faces_by_first_pixel(
        {round(float(s.rgb[0, 0, 0]), 6): n for s, n in zip(sources, counts, strict=True)}
    )
    with_tiny_faces(models)
    batch = fix_images(sources, recipe, models)
    again = fix_images(sources, recipe, models)
    for source, fixed, repeat, count in zip(sources, batch, again, counts, strict=True):
        alone = fix_image(source, recipe, models)
        assert fixed.faces == len(fixed.detections) == alone.faces == count
        assert fixed.rgb.shape == source.rgb.shape
        assert_within_one_level(fixed.rgb, alone.rgb)
        np.testing.assert_array_equal(fixed.rgb, repeat.rgb)  # deterministic run to run
        assert fixed.operations[0].faces == count
        # Outside the faces' regions the pixels are the input's, exactly.
        untouched = np.ones(source.rgb.shape[:2], bool)
        for face in fixed.detections:
            matrix = align.alignment_matrix(face.landmarks)
            x0, y0, x1, y1 = paste.inverse_region(matrix, *source.size)
            untouched[y0:y1, x0:x1] = False
        np.testing.assert_array_equal(fixed.rgb[untouched], source.rgb[untouched])
        assert (count == 0) == np.array_equal(fixed.rgb, source.rgb)


def test_upscale_batch_equals_one_at_a_time(weights_dir):
    recipe = Recipe(scale=2, upscale_strength=0.6)
    sources = [source_image(24, 20, alpha=s == 1, seed=s) for s in range(3)]
    models = Networks(recipe, weights_dir, CPU)
    batch = fix_images(sources, recipe, models)
    for source, fixed in zip(sources, batch, strict=True):
        alone = fix_image(source, recipe, models)
        assert fixed.rgb.shape == (40, 48, 3) and fixed.detections == ()
        assert_within_one_level(fixed.rgb, alone.rgb)
        assert (fixed.alpha is None) == (source.alpha is None)
        if fixed.alpha is not None:
            np.testing.assert_array_equal(fixed.alpha, alone.alpha)


def test_out_of_memory_on_a_batch_retries_its_images_one_at_a_time(weights_dir, monkeypatch):
    from facefix_cli.pipeline import image

    recipe = Recipe(scale=2, upscale_strength=0.0)
    models = Networks(recipe, weights_dir, CPU)
    sources = [source_image(12, 10, seed=s) for s in range(3)]
    sizes_tried = []
    real = image._fix_batch

    def short_of_memory(batch, recipe, networks):
        sizes_tried.append(len(batch))
        if len(batch) > 1:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(batch, recipe, networks)

    monkeypatch.setattr(image, "_fix_batch", short_of_memory)
    fixed = fix_images(sources, recipe, models)
    assert sizes_tried == [3, 1, 1, 1]
    for source, result in zip(sources, fixed, strict=True):
        np.testing.assert_array_equal(result.rgb, real([source], recipe, models)[0].rgb)

    def never_fits(batch, recipe, networks):
        sizes_tried.append(len(batch))
        raise torch.OutOfMemoryError("CUDA out of memory (simulated)")

    monkeypatch.setattr(image, "_fix_batch", never_fits)
    sizes_tried.clear()
    with pytest.raises(torch.OutOfMemoryError):  # a single image that does not fit fails
        fix_images(sources[:1], recipe, models)
    assert sizes_tried == [1]
