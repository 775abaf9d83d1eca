"""CUDA checks: run only where a GPU is present (the project's GPU machines), skipped elsewhere."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import gradient_image
from helpers import centred_face_detector, source_image

from facefix_cli.networks import detectors
from facefix_cli.networks.cache import Networks
from facefix_cli.networks.load import load_retinaface, load_spandrel_model
from facefix_cli.ops.upscale import super_resolve_checked
from facefix_cli.pipeline import fix_image, fix_images
from facefix_cli.recipe import Recipe

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
CUDA = torch.device("cuda") if torch.cuda.is_available() else None
CPU = torch.device("cpu")


def batch_of(*images: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous().to(device)


def test_cuda_upscale_agrees_with_cpu(weights_dir):
    image = gradient_image(48, 40)
    model = load_spandrel_model(weights_dir / "RealESRGAN_x2plus.pth", CPU)
    on_cpu = super_resolve_checked(batch_of(image, device=CPU), model)
    model = load_spandrel_model(weights_dir / "RealESRGAN_x2plus.pth", CUDA)
    on_gpu = super_resolve_checked(batch_of(image, device=CUDA), model).cpu()
    assert on_gpu.shape == on_cpu.shape
    # TF32 convolutions differ from CPU fp32 in the last bits only.
    assert (on_gpu - on_cpu).abs().mean() < 2e-3
    half = load_spandrel_model(weights_dir / "RealESRGAN_x2plus.pth", CUDA).half()
    fast = super_resolve_checked(batch_of(image, device=CUDA), half, fallback=model)
    assert fast.shape == on_cpu.shape and torch.isfinite(fast).all()
    assert fast.min() >= 0.0 and fast.max() <= 1.0


def test_cuda_resize_warp_and_paste_agree_with_cpu():
    from facefix_cli.ops import align, paste
    from facefix_cli.ops.upscale import resize_bicubic

    image = gradient_image(96, 80, seed=6)
    on = {d: batch_of(image, device=d) for d in (CPU, CUDA)}
    resized = {d: resize_bicubic(on[d], 160, 192) for d in on}
    torch.testing.assert_close(resized[CUDA].cpu(), resized[CPU], rtol=0, atol=1e-5)
    landmarks = (align.FFHQ_TEMPLATE_512 - 256) * 0.1 + np.array([48, 40], np.float32)
    matrix = align.alignment_matrix(landmarks.astype(np.float32))
    crops = {d: align.warp_faces(on[d][0], [matrix]) for d in on}
    torch.testing.assert_close(crops[CUDA].cpu(), crops[CPU], rtol=0, atol=1e-4)
    mask = torch.from_numpy(paste.soften_mask(np.pad(np.ones((312, 312), np.float32), 100)))
    for d in on:
        paste.paste_faces(on[d][0], 1 - crops[d], mask[None].to(d), [matrix])
    torch.testing.assert_close(on[CUDA].cpu(), on[CPU], rtol=0, atol=1e-4)


def test_cuda_batch_equals_one_at_a_time(weights_dir):
    options = Recipe(scale=2, precision="fp32")
    models = Networks(options, weights_dir, CUDA)
    sources = [source_image(64, 48, alpha=s == 0, seed=s) for s in range(3)]
    batch = fix_images(sources, options, models)
    for source, fixed in zip(sources, batch, strict=True):
        alone = fix_image(source, options, models)
        difference = np.abs(np.rint(fixed.rgb * 255) - np.rint(alone.rgb * 255))
        assert difference.max() <= 1


def test_cuda_detector_input_and_network_match_cpu(tmp_path):
    from checkpoints import retinaface_state_dict, save_bare

    path = save_bare(retinaface_state_dict("mobile0.25", finds_faces=True), tmp_path / "det.pth")
    image = gradient_image(96, 80, seed=5)
    with torch.inference_mode():
        on_cpu = load_retinaface(path, "mobile0.25", CPU)(
            detectors.retinaface_input(batch_of(image, device=CPU))
        )
        on_gpu = load_retinaface(path, "mobile0.25", CUDA)(
            detectors.retinaface_input(batch_of(image, device=CUDA))
        )
    # Box offsets, class scores and landmark offsets agree; NMS over random near-tied scores
    # may keep different neighbours per device, so whole detections are not compared.
    for cpu_out, gpu_out in zip(on_cpu, on_gpu, strict=True):
        np.testing.assert_allclose(gpu_out.cpu().numpy(), cpu_out.numpy(), rtol=1e-2, atol=1e-2)


def test_cuda_restoration_is_deterministic(gfpgan_weights):
    options = Recipe(scale=2, restore_with="gfpgan", restore_strength=0.8)
    models = Networks(options, gfpgan_weights, CUDA)
    models.detector = centred_face_detector([])
    assert models.upscaler.dtype == torch.float16  # auto: fp16 upscaler on CUDA
    assert models.upscaler_fallback.dtype == torch.float32
    source = source_image(96, 80, alpha=True)
    first = fix_image(source, options, models)
    second = fix_image(source, options, models)
    assert first.faces == 1
    np.testing.assert_array_equal(first.rgb, second.rgb)
    np.testing.assert_array_equal(first.alpha, second.alpha)
