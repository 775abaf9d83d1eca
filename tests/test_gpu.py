"""CUDA checks: run only where a GPU is present (the project's GPU machines), skipped elsewhere."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import gradient_image
from test_pipeline import centred_face_detector, source_image

from facefix_cli import detect
from facefix_cli.models import load_retinaface, load_spandrel_model
from facefix_cli.pipeline import FixOptions, Models, fix_image
from facefix_cli.upscale import super_resolve

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
CUDA = torch.device("cuda") if torch.cuda.is_available() else None
CPU = torch.device("cpu")


def test_cuda_upscale_agrees_with_cpu(weights_dir):
    image = gradient_image(48, 40)
    on_cpu = super_resolve(
        image, load_spandrel_model(weights_dir / "RealESRGAN_x2plus.pth", CPU), device=CPU
    )
    model = load_spandrel_model(weights_dir / "RealESRGAN_x2plus.pth", CUDA)
    on_gpu = super_resolve(image, model, device=CUDA)
    assert on_gpu.shape == on_cpu.shape
    # TF32 convolutions differ from CPU fp32 in the last bits only.
    assert np.abs(on_gpu - on_cpu).mean() < 2e-3
    half = load_spandrel_model(weights_dir / "RealESRGAN_x2plus.pth", CUDA).half()
    fast = super_resolve(image, half, device=CUDA, half=True)
    assert fast.shape == on_cpu.shape and np.isfinite(fast).all()
    assert fast.min() >= 0.0 and fast.max() <= 1.0


def test_cuda_detector_matches_cpu(tmp_path):
    from checkpoints import retinaface_state_dict, save_bare

    state = retinaface_state_dict("mobile0.25", finds_faces=True)
    for key in [
        k for k in state if ".BboxHead." in k or ".LandmarkHead." in k or ".ClassHead." in k
    ]:
        state[key] = state[key] * 1e-2
    path = save_bare(state, tmp_path / "det.pth")
    image = gradient_image(96, 80, seed=5)
    on_cpu = detect.retinaface_detector(load_retinaface(path, "mobile0.25", CPU), threshold=0.5)(
        image
    )
    on_gpu = detect.retinaface_detector(load_retinaface(path, "mobile0.25", CUDA), threshold=0.5)(
        image
    )
    assert len(on_cpu) > 0
    cpu_boxes = sorted(np.round(f.box, 1).tolist() for f in on_cpu)
    gpu_boxes = sorted(np.round(f.box, 1).tolist() for f in on_gpu)
    assert len(gpu_boxes) == len(cpu_boxes)
    np.testing.assert_allclose(gpu_boxes, cpu_boxes, atol=0.5)


def test_cuda_restoration_is_deterministic(gfpgan_weights):
    options = FixOptions(
        weights_dir=gfpgan_weights,
        upscale=2,
        restorer="gfpgan",
        restore_strength=0.8,
        device="cuda",
    )
    models = Models(options, CUDA)
    models.detector = centred_face_detector([])
    source = source_image(96, 80, alpha=True)
    first = fix_image(source, options, models)
    second = fix_image(source, options, models)
    assert first.faces == 1
    np.testing.assert_array_equal(first.rgb, second.rgb)
    np.testing.assert_array_equal(first.alpha, second.alpha)
