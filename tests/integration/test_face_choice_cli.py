"""Which faces are restored (--face-threshold, --min-face, --max-faces, --only-center-face, the
5-px eye rule), where they are looked for (--detect-size) and when (--order), through
`fix_image` with faces at known places.

A detector stand-in places the faces (tests/helpers.py), and a 3x3 convolution and a 1x1
"parser" stand in for GFPGAN and ParseNet, so each case costs milliseconds; the real networks'
paste-back is checked in test_pipeline.py. What is certain is checked: which faces come back,
the counts in the record, and that the pixels of every face not chosen, and everywhere else
outside the chosen faces, are exactly the input's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import TinyParser, TinyRestorer, placed_faces_detector, source_image, with_tiny_faces

from facefix_cli.networks import detectors
from facefix_cli.networks.cache import Networks
from facefix_cli.networks.load import load_retinaface
from facefix_cli.ops import align, detect, paste
from facefix_cli.pipeline import fix_image, fix_images
from facefix_cli.recipe import Recipe

CPU = torch.device("cpu")
WIDTH, HEIGHT = 320, 96
# (x, y, size) as shares of the width (x, size) and height (y): boxes of 80, 48, 30 and
# 12 px on the 320 x 96 image, far enough apart that their paste areas do not overlap. The
# last one's eyes are 3 px apart: the 5-px rule always skips it.
LAYOUT = [(50 / 320, 0.5, 80 / 320), (140 / 320, 0.5, 48 / 320), (220 / 320, 0.5, 30 / 320)]
LAYOUT.append((290 / 320, 0.5, 12 / 320))
SIZES = [80.0, 48.0, 30.0, 12.0]


def networks(recipe: Recipe, weights: Path, calls: list | None = None) -> Networks:
    models = Networks(recipe, weights, CPU)
    models.detector = placed_faces_detector(LAYOUT, calls)
    with_tiny_faces(models)
    return models


def paste_area(face: detect.Face, width: int, height: int) -> np.ndarray:
    """Where pasting `face` may change pixels: its aligned crop's area mapped back."""
    x0, y0, x1, y1 = paste.inverse_region(align.alignment_matrix(face.landmarks), width, height)
    area = np.zeros((height, width), bool)
    area[y0:y1, x0:x1] = True
    return area


def restored_sizes(fixed) -> list[float]:
    return [round(face.size, 3) for face in fixed.detections]


@pytest.fixture(scope="module")
def source():
    return source_image(WIDTH, HEIGHT, seed=21)


@pytest.mark.parametrize(
    ("choices", "kept"),
    [
        ({}, [80, 48, 30]),  # today's rules: the 5-px eye rule skips the smallest
        ({"min_face": 40}, [80, 48]),  # pixels of the output
        ({"min_face": 30}, [80, 48, 30]),  # a face of exactly the minimum is kept
        ({"min_face_share": 0.5}, [80, 48]),  # half the largest face: 40 px
        ({"min_face_share": 0.3}, [80, 48, 30]),
        ({"max_faces": 1}, [80]),
        ({"max_faces": 2}, [80, 48]),
        ({"max_faces": 5}, [80, 48, 30]),
        ({"only_center_face": True}, [48]),  # the face at x = 140 is nearest the centre, 160
        ({"min_face": 40, "max_faces": 1}, [80]),
        ({"min_face": 100}, []),
    ],
)
def test_each_choice_restores_exactly_its_faces_and_nothing_else(
    choices, kept, source, weights_dir
):
    recipe = Recipe(restore_with="gfpgan", restore_strength=1.0, **choices)
    fixed = fix_image(source, recipe, networks(recipe, weights_dir))
    assert restored_sizes(fixed) == kept
    assert fixed.faces == len(kept) and fixed.found == 4 and fixed.skipped == 4 - len(kept)
    (operation,) = fixed.operations
    assert operation.faces == len(kept) and operation.found == 4
    assert operation.to_json()["found"] == 4
    assert [d.box for d in operation.detections] == [
        tuple(round(v, 2) for v in face.box) for face in fixed.detections
    ]
    # Every face chosen changed; every pixel outside the chosen faces' areas is the input's.
    chosen = np.zeros((HEIGHT, WIDTH), bool)
    changed = np.any(fixed.rgb != source.rgb, axis=2)
    for face in fixed.detections:
        area = paste_area(face, WIDTH, HEIGHT)
        assert changed[area].any(), f"the {face.size:g} px face was not restored"
        chosen |= area
    assert not (changed & ~chosen).any()
    assert chosen.mean() < 0.6 and (changed.any() or not kept)


def test_every_face_restored_leaves_no_found_count_in_the_record(source, weights_dir):
    recipe = Recipe(restore_with="gfpgan", restore_strength=1.0, face_threshold=0.5)
    models = networks(recipe, weights_dir)
    models.detector = placed_faces_detector(LAYOUT[:2])
    fixed = fix_image(source, recipe, models)
    (operation,) = fixed.operations
    assert fixed.faces == fixed.found == 2 and fixed.skipped == 0
    record = operation.to_json()
    assert "found" not in record and record["face_threshold"] == 0.5
    assert not {"min_face", "min_face_share", "max_faces", "detect_size"} & set(record)


def test_default_choices_record_nothing_new(source, weights_dir):
    recipe = Recipe(restore_with="gfpgan", restore_strength=1.0)
    models = networks(recipe, weights_dir)
    models.detector = placed_faces_detector(LAYOUT[:3])
    (operation,) = fix_image(source, recipe, models).operations
    assert set(operation.to_json()) == {
        "type", "strength", "version", "model", "sha256", "faces", "detections"
    }  # fmt: skip


def test_face_threshold_reaches_the_detector(monkeypatch, tmp_path):
    """--face-threshold is RetinaFace's own cut: what a run keeps at 0.5 is what
    `retinaface_detector(threshold=0.5)` finds, every score above it."""
    from checkpoints import retinaface_state_dict, save_bare

    path = save_bare(retinaface_state_dict("mobile0.25", finds_faces=True), tmp_path / "d.pth")
    net = load_retinaface(path, "mobile0.25", CPU)
    monkeypatch.setattr(detectors, "load_retinaface", lambda path, network, device: net)
    image = torch.from_numpy(source_image(64, 48, seed=4).rgb).permute(2, 0, 1)[None]
    found = {}
    for threshold in (0.3, 0.5):  # random weights score about 0.5
        recipe = Recipe(restore_with="gfpgan", restore_strength=1.0, face_threshold=threshold)
        found[threshold] = Networks(recipe, tmp_path, CPU).detector(image)[0]
        reference = detectors.retinaface_detector(net, threshold)(image)[0]
        assert [f.score for f in found[threshold]] == [f.score for f in reference]
        assert all(face.score > threshold for face in found[threshold])
    assert len(found[0.3]) > len(found[0.5]) > 0  # the threshold made a difference


# --- --detect-size ------------------------------------------------------------------------


def test_a_large_image_is_searched_on_a_copy_and_its_faces_mapped_back(source, weights_dir):
    recipe = Recipe(restore_with="gfpgan", restore_strength=1.0)
    full_calls: list = []
    full = fix_image(source, recipe, networks(recipe, weights_dir, full_calls))
    small_recipe = Recipe(restore_with="gfpgan", restore_strength=1.0, detect_size=160)
    calls: list = []
    small = fix_image(source, small_recipe, networks(small_recipe, weights_dir, calls))
    assert full_calls == [(1, 3, HEIGHT, WIDTH)] and calls == [(1, 3, 48, 160)]
    assert small.faces == full.faces == 3
    for mapped, direct in zip(small.detections, full.detections, strict=True):
        np.testing.assert_allclose(mapped.landmarks, direct.landmarks, atol=1.0)
        np.testing.assert_allclose(mapped.box, direct.box, atol=1.0)
    assert small.operations[0].detect_size == 160
    # Up to the detect size the detector sees the image itself, so outputs are as before.
    same = Recipe(restore_with="gfpgan", restore_strength=1.0, detect_size=WIDTH)
    calls.clear()
    at_limit = fix_image(source, same, networks(same, weights_dir, calls))
    assert calls == [(1, 3, HEIGHT, WIDTH)]
    np.testing.assert_array_equal(at_limit.rgb, full.rgb)


# --- --order ------------------------------------------------------------------------------


def restore_then_upscale(source, weights: Path, upscaler) -> tuple:
    """The two steps of restore-first as two runs: restore only, then upscale that result."""
    restore_only = Recipe(restore_with="gfpgan", restore_strength=0.8, min_face=35)
    restored = fix_image(source, restore_only, networks(restore_only, weights))
    upscale_only = Recipe(scale=2, upscale_strength=0.6)
    upscale_models = Networks(upscale_only, weights, CPU)
    upscale_models.upscaler = upscaler  # the same network
    as_source = source.__class__(source.path, restored.rgb, None, 8, [], source.sha256)
    return restored, fix_image(as_source, upscale_only, upscale_models)


@pytest.fixture(scope="module")
def restore_first_run(source, weights_dir):
    """restore-first at x2 and the same two steps run one after the other."""
    base = dict(scale=2, upscale_strength=0.6, restore_with="gfpgan", restore_strength=0.8)
    recipe = Recipe(**base, order="restore-first", min_face=70)  # output pixels: 35 here
    models = networks(recipe, weights_dir)
    first = fix_image(source, recipe, models)
    restored, composed = restore_then_upscale(source, weights_dir, models.upscaler)
    return recipe, models, first, restored, composed


def test_restore_first_equals_restoring_then_upscaling(restore_first_run):
    _, _, first, restored, composed = restore_first_run
    assert first.rgb.shape == (2 * HEIGHT, 2 * WIDTH, 3)
    np.testing.assert_array_equal(first.rgb, composed.rgb)
    assert first.faces == restored.faces == 2 and first.found == 4


def test_restore_first_records_its_order_and_faces_in_output_pixels(restore_first_run):
    _, _, first, restored, _ = restore_first_run
    assert [op.type for op in first.operations] == ["gfpgan", "esrgan"]
    for mapped, original in zip(first.detections, restored.detections, strict=True):
        np.testing.assert_allclose(mapped.landmarks, (original.landmarks + 0.5) * 2 - 0.5)
        assert mapped.size == pytest.approx(2 * original.size)
    assert restored_sizes(first) == [160, 96]
    assert first.operations[0].min_face == 70


def test_restore_first_in_a_batch_equals_one_at_a_time(restore_first_run, source):
    recipe, models, first, _, _ = restore_first_run
    other = source_image(WIDTH, HEIGHT, seed=22)
    batch = fix_images([source, other, source], recipe, models)
    alone = fix_image(other, recipe, models)
    np.testing.assert_allclose(batch[0].rgb, first.rgb, atol=1.5 / 255)
    np.testing.assert_allclose(batch[1].rgb, alone.rgb, atol=1.5 / 255)
    assert [b.faces for b in batch] == [2, 2, 2]


@pytest.mark.parametrize(("workers", "batch"), [(0, 1), (2, 2)])
def test_restore_first_in_every_executor_writes_the_composed_image(
    workers, batch, restore_first_run, source, weights_dir, tmp_path, monkeypatch
):
    """The sequential and pipelined executors (Ray workers run the same `fix_file` in other
    processes, where these stand-ins cannot follow) write restore-first's pixels."""
    from PIL import Image

    from facefix_cli.io.write import quantize
    from facefix_cli.pipeline import RunSettings, Status, fix

    recipe = restore_first_run[0]
    # The files hold the 8-bit source: the two steps are composed on that.
    eight_bit = source.__class__(
        source.path, quantize(source.rgb, 8).astype(np.float32) / 255, None, 8, [], "0" * 64
    )
    _, composed_8 = restore_then_upscale(eight_bit, weights_dir, restore_first_run[1].upscaler)
    expected = quantize(composed_8.rgb, 8)
    weights = tmp_path / "weights"
    weights.mkdir()
    for path in weights_dir.iterdir():
        (weights / path.name).symlink_to(path)
    # Present (the stand-in is used instead); never written through a link to the shared file.
    (weights / "GFPGANv1.4.pth").unlink(missing_ok=True)
    (weights / "GFPGANv1.4.pth").write_bytes(b"")
    monkeypatch.setattr(Networks, "detector", property(lambda self: placed_faces_detector(LAYOUT)))
    monkeypatch.setattr(Networks, "restorer", property(lambda self: TinyRestorer()))
    monkeypatch.setattr(Networks, "parser", property(lambda self: TinyParser()))
    monkeypatch.setattr(Networks, "restorer_sha256", "0" * 64)
    inputs = tmp_path / "in"
    inputs.mkdir()
    for index in range(2):
        Image.fromarray(quantize(source.rgb, 8)).save(inputs / f"{index}.png")
    summary = fix(
        [inputs],
        recipe,
        RunSettings(weights_dir=weights, device="cpu", workers=workers, batch_size=batch),
    )
    assert [r.status for r in summary.results] == [Status.FIXED] * 2
    assert [(r.faces, r.faces_skipped) for r in summary.results] == [(2, 2)] * 2
    for index in range(2):
        written = np.asarray(Image.open(inputs / f"{index}.fixed.png").convert("RGB"))
        assert np.abs(written.astype(int) - expected.astype(int)).max() <= (batch > 1)
    assert expected.shape == (2 * HEIGHT, 2 * WIDTH, 3)
