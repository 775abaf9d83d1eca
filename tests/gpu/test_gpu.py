"""CUDA checks: run only where a GPU is present (the project's GPU machines), skipped elsewhere."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import gradient_image
from helpers import centred_face_detector, source_image

from facefix.networks.cache import Networks
from facefix.networks.load import load_retinaface, load_spandrel_model
from facefix.ops import detect
from facefix.ops.upscale import super_resolve
from facefix.pipeline import FixOptions, fix_image

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


def test_cuda_detector_input_and_network_match_cpu(tmp_path):
    from checkpoints import retinaface_state_dict, save_bare

    path = save_bare(retinaface_state_dict("mobile0.25", finds_faces=True), tmp_path / "det.pth")
    image = gradient_image(96, 80, seed=5)
    with torch.inference_mode():
        on_cpu = load_retinaface(path, "mobile0.25", CPU)(detect.retinaface_input(image, CPU))
        on_gpu = load_retinaface(path, "mobile0.25", CUDA)(detect.retinaface_input(image, CUDA))
    # Box offsets, class scores and landmark offsets agree; NMS over random near-tied scores
    # may keep different neighbours per device, so whole detections are not compared.
    for cpu_out, gpu_out in zip(on_cpu, on_gpu, strict=True):
        np.testing.assert_allclose(gpu_out.cpu().numpy(), cpu_out.numpy(), rtol=1e-2, atol=1e-2)


def test_cuda_restoration_is_deterministic(gfpgan_weights):
    options = FixOptions(
        weights_dir=gfpgan_weights,
        scale=2,
        restore_with="gfpgan",
        restore_strength=0.8,
        device="cuda",
    )
    models = Networks(options, CUDA)
    models.detector = centred_face_detector([])
    source = source_image(96, 80, alpha=True)
    first = fix_image(source, options, models)
    second = fix_image(source, options, models)
    assert first.faces == 1
    np.testing.assert_array_equal(first.rgb, second.rgb)
    np.testing.assert_array_equal(first.alpha, second.alpha)
