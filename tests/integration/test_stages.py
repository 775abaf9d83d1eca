"""Each stage on its own: discover, read, write, upscale, detect, align, paste."""

from __future__ import annotations

import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import gradient_image
from helpers import discover
from ops_support import as_batch
from PIL import Image

from facefix_cli.errors import ImageError
from facefix_cli.io import pngchunks
from facefix_cli.io.read import read_image
from facefix_cli.io.write import encode_png, quantize, write_atomic
from facefix_cli.metadata import chunks_from_bytes
from facefix_cli.networks import detectors
from facefix_cli.networks.load import load_retinaface, load_spandrel_model
from facefix_cli.ops import upscale

CPU = torch.device("cpu")


def save_png(path: Path, rgb: np.ndarray, **info) -> Path:
    Image.fromarray(quantize(rgb, 8)).save(path, **info)
    return path


# --- discover ---------------------------------------------------------------------------


def test_discover_walks_sorted_recursive_skipping_outputs_hidden_and_fakes(tmp_path):
    image = gradient_image(8, 8)
    save_png(tmp_path / "b.png", image)
    save_png(tmp_path / "a.PNG", image)
    save_png(tmp_path / "a.fixed.png", image)
    (tmp_path / "sub").mkdir()
    save_png(tmp_path / "sub" / "c.png", image)
    (tmp_path / ".hidden").mkdir()
    save_png(tmp_path / ".hidden" / "d.png", image)
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "fake.png").write_bytes(b"GIF89a not really a png")
    jobs, rejected = discover([tmp_path])
    assert [j.source.relative_to(tmp_path).as_posix() for j in jobs] == [
        "a.PNG",
        "b.png",
        "sub/c.png",
    ]
    assert jobs[0].output == tmp_path / "a.fixed.png"
    assert [(r.path.name, r.reason) for r in rejected] == [
        ("fake.png", "not an image of that type (bad signature)")
    ]

    flat, _ = discover([tmp_path], recursive=False)
    assert [j.source.name for j in flat] == ["a.PNG", "b.png"]


def test_discover_named_files_missing_paths_and_output_dir(tmp_path):
    save_png(tmp_path / "x.png", gradient_image(8, 8))
    (tmp_path / "deep").mkdir()
    save_png(tmp_path / "deep" / "y.png", gradient_image(8, 8))
    out = tmp_path / "out"
    jobs, rejected = discover(
        [tmp_path / "x.png", tmp_path / "x.png", tmp_path / "missing.png", tmp_path], output_dir=out
    )
    assert [j.source.name for j in jobs] == ["x.png", "y.png"]  # named twice, listed once
    assert jobs[1].output == out / "deep" / "y.fixed.png"  # mirrors the layout below the folder
    assert [(r.path.name, r.reason) for r in rejected] == [
        ("missing.png", "no such file or folder")
    ]


def test_discover_other_extensions_only_when_asked(tmp_path):
    Image.fromarray(quantize(gradient_image(8, 8), 8)).save(tmp_path / "p.jpg")
    assert discover([tmp_path])[0] == []
    jobs, _ = discover([tmp_path], extensions=("png", "jpg"))
    assert [j.output.name for j in jobs] == ["p.jpg.fixed.png"]  # never a PNG's output name


# --- read and write ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "expect_alpha"),
    [("RGB", False), ("RGBA", True), ("L", False), ("LA", True), ("P", False)],
)
def test_read_converts_every_colour_type_to_rgb(tmp_path, mode, expect_alpha):
    rgb8 = quantize(gradient_image(12, 10), 8)
    picture = (
        Image.fromarray(rgb8).convert("RGBA" if mode in ("RGBA", "LA") else "RGB").convert(mode)
    )
    picture.save(tmp_path / "in.png")
    source = read_image(tmp_path / "in.png", chunks_from_bytes)
    assert source.rgb.shape == (10, 12, 3) and source.rgb.dtype == np.float32
    assert (source.alpha is not None) == expect_alpha
    assert source.bit_depth == 8
    expected = np.asarray(picture.convert("RGB"), dtype=np.float32) / 255
    np.testing.assert_allclose(source.rgb, expected, atol=1e-6)


def test_sixteen_bit_round_trip_keeps_sixteen_bits(tmp_path):
    rng = np.random.default_rng(1)
    deep = rng.integers(0, 65536, size=(9, 7, 3), dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "deep.png"), deep[:, :, ::-1])
    source = read_image(tmp_path / "deep.png", chunks_from_bytes)
    assert source.bit_depth == 16
    data = encode_png(source.rgb, None, 16, [])
    again = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert again.dtype == np.uint16
    np.testing.assert_array_equal(again[:, :, ::-1], deep)  # exact: no 8-bit step anywhere


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda b: b[: len(b) // 2], "truncated PNG"),
        (lambda b: b[:40] + bytes([b[40] ^ 0xFF]) + b[41:], "CRC mismatch"),
        (lambda b: b"\x00" + b[1:], "not a PNG"),  # bad signature
        (
            lambda b: (
                b[:33]
                + b"\x00\x00\x00\x04IDAT\x00\x01\x02\x03"
                + (zlib.crc32(b"IDAT\x00\x01\x02\x03")).to_bytes(4, "big")
                + b[-12:]
            ),
            "cannot decode",
        ),
    ],
)
def test_read_reports_corrupt_files_with_a_reason(tmp_path, damage, message):
    good = encode_png(gradient_image(16, 16), None, 8, [])
    path = tmp_path / "bad.png"
    path.write_bytes(damage(good))
    with pytest.raises(ImageError, match=message):
        read_image(path, chunks_from_bytes)


def test_read_reports_vanished_file(tmp_path):
    with pytest.raises(ImageError, match="no such file"):
        read_image(tmp_path / "gone.png", chunks_from_bytes)


def test_encode_carries_chunks_after_ihdr_and_drops_encoder_extras(tmp_path):
    chunks = [pngchunks.text_chunk("parameters", "a cat"), pngchunks.Chunk(b"pHYs", bytes(9))]
    data = encode_png(gradient_image(8, 8), gradient_image(8, 8)[:, :, 0], 8, chunks)
    types = [c.type for c in pngchunks.parse_chunks(data)]
    assert types[:3] == [b"IHDR", b"tEXt", b"pHYs"] and types[-1] == b"IEND"
    assert Image.open(__import__("io").BytesIO(data)).mode == "RGBA"


def test_write_atomic_leaves_no_temporary_and_reports_unwritable(tmp_path):
    target = tmp_path / "o.fixed.png"
    write_atomic(target, b"data")
    assert target.read_bytes() == b"data"
    assert [p.name for p in tmp_path.iterdir()] == ["o.fixed.png"]
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ImageError, match="cannot create output folder"):
        write_atomic(blocker / "sub" / "o.png", b"data")


def test_write_atomic_disk_full_leaves_nothing(tmp_path, monkeypatch):
    import errno
    import os

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(ImageError, match="disk full"):
        write_atomic(tmp_path / "o.fixed.png", b"data")
    assert list(tmp_path.iterdir()) == []


def test_text_chunk_decoding_of_all_three_kinds():
    compressed = pngchunks.itxt_chunk("k", "ünïcode", compressed=True)
    ztxt = pngchunks.Chunk(b"zTXt", b"z\x00\x00" + zlib.compress(b"latin"))
    assert pngchunks.decode_text_chunk(compressed) == ("k", "ünïcode")
    assert pngchunks.decode_text_chunk(ztxt) == ("z", "latin")
    assert pngchunks.decode_text_chunk(pngchunks.text_chunk("t", "plain")) == ("t", "plain")


# --- upscale ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def x2(weights_dir):
    return load_spandrel_model(weights_dir / "RealESRGAN_x2plus.pth", CPU)


@pytest.fixture(scope="module")
def x4(weights_dir):
    return load_spandrel_model(weights_dir / "RealESRGAN_x4plus.pth", CPU)


def test_realesrgan_checkpoints_load_with_their_scales(x2, x4):
    assert (x2.architecture.id, x2.scale, x2.input_channels) == ("ESRGAN", 2, 3)
    assert (x4.architecture.id, x4.scale) == ("ESRGAN", 4)


def test_upscale_odd_sizes_for_x2plus(x2):
    # x2plus pixel-unshuffles its input, so odd sizes need padding; the output is cropped back.
    out = upscale.upscale(as_batch(gradient_image(13, 11)), x2, strength=1.0)
    assert out.shape == (1, 3, 22, 26) and out.dtype == torch.float32
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_upscale_strength_blends_with_bicubic(x2):
    batch = as_batch(gradient_image(16, 12))
    full = upscale.upscale(batch, x2, strength=1.0)
    none = upscale.upscale(batch, x2, strength=0.0)
    half = upscale.upscale(batch, x2, strength=0.25)
    bicubic = upscale.resize_bicubic(batch, 24, 32)
    torch.testing.assert_close(none, bicubic, rtol=0, atol=0)
    torch.testing.assert_close(half, 0.25 * full + 0.75 * bicubic, rtol=0, atol=1e-6)
    assert not torch.allclose(full, bicubic, atol=1e-2)  # the model really ran


def test_tiled_upscale_matches_whole_image_inside_tile_padding_reach(x4):
    batch = as_batch(gradient_image(40, 36), gradient_image(40, 36, seed=1))
    whole = upscale.super_resolve(batch, x4, tile=0)
    tiled = upscale.super_resolve(batch, x4, tile=32)
    assert tiled.shape == whole.shape == (2, 3, 144, 160)
    # Far from tile seams the receptive field fits in the padding and results agree closely.
    torch.testing.assert_close(tiled[..., :40, :40], whole[..., :40, :40], rtol=0, atol=2e-3)


def test_out_of_memory_retries_with_smaller_tiles(x2, monkeypatch):
    tiles_tried = []
    real = upscale.super_resolve

    def short_of_memory(images, model, *, tile=0):
        tiles_tried.append(tile)
        if tile == 0 or tile > 65:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(images, model, tile=tile)

    monkeypatch.setattr(upscale, "super_resolve", short_of_memory)
    batch = as_batch(gradient_image(260, 60))
    out = upscale.super_resolve_fitting(batch, x2, tile=0)
    assert tiles_tried == [0, 130, 65] and out.shape == (1, 3, 120, 520)
    torch.testing.assert_close(out, real(batch, x2, tile=65), rtol=0, atol=0)
    tiles_tried.clear()
    with pytest.raises(torch.OutOfMemoryError):
        upscale.super_resolve_fitting(as_batch(gradient_image(260, 60)), x2, tile=100)
    assert tiles_tried == [100]  # nothing below MIN_TILE (64) is tried


def test_cpu_tiles_follow_available_memory(monkeypatch):
    from facefix_cli.networks import device

    cpu = torch.device("cpu")
    assert device.available_host_memory() > 0
    monkeypatch.setattr(device, "available_host_memory", lambda: 64 * 2**30)
    assert device.upscale_memory_budget(cpu) == device.CPU_BUDGET_CAP  # "a few GB" at most

    def tile(side: int) -> int:
        budget = device.upscale_memory_budget(cpu)
        assert budget is not None
        return upscale.choose_tile(side, side, scale=4, batch=1, budget_bytes=budget)

    assert tile(256) == 0
    roomy = tile(4096)
    monkeypatch.setattr(device, "available_host_memory", lambda: 2**30)
    tight = tile(4096)
    assert upscale.MIN_TILE <= tight < roomy < 4096


def test_non_finite_reduced_precision_output_is_redone_in_fp32(x2):
    class Overflowing:
        """An upscaler whose output overflows for the second image only, like fp16 can."""

        scale, size_requirements, dtype = x2.scale, x2.size_requirements, torch.float32

        def __call__(self, tensor):
            out = x2(tensor)
            out[1, 0, 0, 0] = float("inf")
            return out

    batch = as_batch(gradient_image(16, 12), gradient_image(16, 12, seed=2))
    out = upscale.super_resolve_checked(batch, Overflowing(), fallback=x2)
    alone = upscale.super_resolve_checked(batch[1:], x2)  # what the fp32 model gives it alone
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out[1], alone[0], rtol=0, atol=0)


# --- detect and align -------------------------------------------------------------------


@pytest.mark.parametrize("network", ["resnet50", "mobile0.25"])
def test_real_retinaface_code_runs_on_random_weights(tmp_path, network):
    from checkpoints import retinaface_state_dict, save_bare

    path = save_bare(retinaface_state_dict(network, finds_faces=True), tmp_path / "det.pth")
    detector = detectors.retinaface_detector(load_retinaface(path, network, CPU), threshold=0.5)
    faces = detector(as_batch(gradient_image(64, 48)))[0]
    for face in faces:
        assert face.landmarks.shape == (5, 2) and face.landmarks.dtype == np.float32
        assert 0.5 <= face.score <= 1.0 and len(face.box) == 4


def test_detector_matches_facexlibs_own_detect_faces(tmp_path):
    from checkpoints import retinaface_state_dict, save_bare

    state = retinaface_state_dict("resnet50", finds_faces=True)
    # Tame the random heads so boxes stay near their anchors and scores differ (no ties).
    for key in [
        k for k in state if ".BboxHead." in k or ".LandmarkHead." in k or ".ClassHead." in k
    ]:
        state[key] = state[key] * 1e-2
    path = save_bare(state, tmp_path / "det.pth")
    net = load_retinaface(path, "resnet50", CPU)
    image = gradient_image(80, 64, seed=4)
    # Two different images in one batch: each gets its own detections.
    found = detectors.retinaface_detector(net, threshold=0.5)(as_batch(image, image[::-1].copy()))
    faces = found[0]
    with torch.no_grad():
        reference = net.detect_faces(image[:, :, ::-1] * 255.0, conf_threshold=0.5)
    assert len(faces) == len(reference) > 0
    for face, row in zip(faces, reference, strict=True):
        np.testing.assert_allclose(face.box, row[:4], rtol=1e-4, atol=1e-3)
        np.testing.assert_allclose(face.landmarks.ravel(), row[5:15], rtol=1e-4, atol=1e-3)
        assert face.score == pytest.approx(row[4], abs=1e-5)
    with torch.no_grad():
        flipped = net.detect_faces(image[::-1, :, ::-1] * 255.0, conf_threshold=0.5)
    assert len(found[1]) == len(flipped)
    for face, row in zip(found[1], flipped, strict=True):
        np.testing.assert_allclose(face.box, row[:4], rtol=1e-4, atol=1e-3)


def test_suppressed_test_detector_finds_nothing(weights_dir):
    net = load_retinaface(weights_dir / "detection_Resnet50_Final.pth", "resnet50", CPU)
    assert detectors.retinaface_detector(net)(as_batch(gradient_image(64, 64))) == [[]]


# --- precision --------------------------------------------------------------------------


def psnr(approx: torch.Tensor, exact: torch.Tensor) -> float:
    return float(10 * torch.log10(1.0 / ((approx - exact) ** 2).mean()))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_reduced_precision_upscale_is_within_40_db_of_fp32(dtype):
    import spandrel
    from checkpoints import realesrgan_state_dict

    try:  # fp16 convolutions on the CPU exist in recent torch only
        torch.nn.functional.conv2d(
            torch.ones(1, 1, 3, 3, dtype=dtype), torch.ones(1, 1, 1, 1, dtype=dtype)
        )
    except RuntimeError as exc:
        pytest.skip(f"{dtype} convolutions are not implemented on this CPU build: {exc}")
    # Random weights scaled so activations stay far below fp16's limit and the output is a
    # picture (tests/checkpoints.py says how); 2 blocks keep the CPU run short.
    state = realesrgan_state_dict(2, num_block=2, output_gain=0.004)
    exact = spandrel.ModelLoader().load_from_state_dict(state).eval()
    reduced = spandrel.ModelLoader().load_from_state_dict(state).eval().to(dtype)
    batch = as_batch(gradient_image(24, 16, seed=7))
    reference = upscale.super_resolve_checked(batch, exact)
    output = upscale.super_resolve_checked(batch, reduced, fallback=exact)
    assert reference.std() > 0.05  # a picture, not a flat grey
    value = psnr(output, reference)
    print(f"{dtype}: PSNR {value:.1f} dB against fp32")  # recorded in benchmarks/RESULTS.md
    assert value >= 40.0
