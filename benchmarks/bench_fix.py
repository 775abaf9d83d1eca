"""Speed of each stage and of whole `fix` runs, printed as a table.

Runs on random-weight checkpoints in the released layouts (built here, like the tests do), so
the figures are real network costs; a detector with fixed landmarks stands in for RetinaFace's
finds so the face count per image is known. Usage:

    uv run python benchmarks/bench_fix.py --device cuda --images 16 --size 512
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from checkpoints import build  # noqa: E402

from facefix_cli.io.read import SourceImage  # noqa: E402
from facefix_cli.networks import detectors  # noqa: E402
from facefix_cli.networks.cache import Networks  # noqa: E402
from facefix_cli.networks.load import load_parsenet, load_retinaface, load_spandrel_model  # noqa: E402
from facefix_cli.ops import align, detect, paste  # noqa: E402
from facefix_cli.ops.restore import restore_faces  # noqa: E402
from facefix_cli.ops.upscale import super_resolve  # noqa: E402
from facefix_cli.pipeline import fix_image, fix_images  # noqa: E402
from facefix_cli.recipe import Recipe  # noqa: E402


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(device: torch.device, fn, repeat: int = 3) -> float:
    """Median seconds of `repeat` runs after one warm-up."""
    fn()
    sync(device)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def fixed_faces(faces_per_image: int, eye_spacing: float, height: int, width: int):
    found = []
    for index in range(faces_per_image):
        centre = np.array([width * (index + 1) / (faces_per_image + 1), height / 2])
        landmarks = (align.FFHQ_TEMPLATE_512 - 256) * eye_spacing + centre
        found.append(detect.Face((0, 0, width, height), 0.99, landmarks.astype(np.float32)))
    return found


def fixed_faces_detector(faces_per_image: int, eye_spacing: float):
    """A batch FaceDetector that reports the same faces in every image."""

    def detect_faces(images: torch.Tensor) -> list[list[detect.Face]]:
        height, width = images.shape[2:]
        return [fixed_faces(faces_per_image, eye_spacing, height, width) for _ in images]

    return detect_faces


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--size", type=int, default=512, help="input side in pixels")
    parser.add_argument("--images", type=int, default=8, help="images in the end-to-end batch")
    parser.add_argument("--faces", type=int, default=2, help="faces per image end to end")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="skip the slow stage rows")
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "fp16", "bf16"])
    parser.add_argument("--batch", type=int, default=4, help="images per fix_images call")
    args = parser.parse_args()
    device = torch.device(args.device)
    rows: list[tuple[str, str]] = []

    def row(name: str, seconds: float, unit: str = "") -> None:
        rows.append((name, f"{seconds * 1000:9.1f} ms {unit}"))
        print(f"{name:58s} {seconds * 1000:9.1f} ms {unit}", flush=True)

    print(f"device {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'CPU'}), "
          f"torch {torch.__version__}, input {args.size}x{args.size}")  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        weights = Path(folder)
        for name in ("RealESRGAN_x2plus.pth", "RealESRGAN_x4plus.pth", "GFPGANv1.4.pth", "codeformer.pth",
                     "detection_Resnet50_Final.pth", "parsing_parsenet.pth"):  # fmt: skip
            build(name, weights)
        rng = np.random.default_rng(0)
        image = rng.random((args.size, args.size, 3), dtype=np.float32)
        batch1 = torch.from_numpy(image).permute(2, 0, 1)[None].contiguous().to(device)

        for scale in (2, 4):
            model = load_spandrel_model(weights / f"RealESRGAN_x{scale}plus.pth", device)
            row(
                f"upscale x{scale} fp32 whole",
                timed(device, lambda m=model: super_resolve(batch1, m)),
            )
            row(f"upscale x{scale} fp32 tile 256", timed(device, lambda m=model: super_resolve(batch1, m, tile=256)))  # fmt: skip
            if device.type == "cuda":
                half = load_spandrel_model(weights / f"RealESRGAN_x{scale}plus.pth", device).half()
                row(f"upscale x{scale} fp16 whole", timed(device, lambda m=half: super_resolve(batch1, m)))  # fmt: skip
                full = super_resolve(batch1, model).clamp(0, 1).cpu().numpy()
                approx = super_resolve(batch1, half).clamp(0, 1).cpu().numpy()
                print(f"  x{scale} fp16 vs fp32: max abs diff {np.abs(full - approx).max():.4f} "
                      f"(8-bit levels {np.abs(full - approx).max() * 255:.2f}), mean {np.abs(full - approx).mean():.5f}")  # fmt: skip
                rows.append(
                    (
                        f"x{scale} fp16 max diff (8-bit levels)",
                        f"{np.abs(full - approx).max() * 255:.2f}",
                    )
                )
            del model

        upscaled = np.clip(np.kron(image, np.ones((2, 2, 1), np.float32)), 0, 1)
        upscaled_t = torch.from_numpy(upscaled).permute(2, 0, 1).contiguous().to(device)
        retina = detectors.retinaface_detector(
            load_retinaface(weights / "detection_Resnet50_Final.pth", "resnet50", device)
        )
        row(
            f"detect RetinaFace R50 on {args.size * 2}x{args.size * 2}",
            timed(device, lambda: retina(upscaled_t[None])),
        )
        landmarks = fixed_faces(1, 0.3, *upscaled.shape[:2])[0].landmarks
        matrix = align.alignment_matrix(landmarks)
        row("align (warp to 512)", timed(device, lambda: align.warp_faces(upscaled_t, [matrix])))
        crop = align.warp_faces(upscaled_t, [matrix])
        parser_net = load_parsenet(weights / "parsing_parsenet.pth", device)
        row(
            "parse mask (ParseNet + blur)",
            timed(device, lambda: paste.face_masks(parser_net, crop)),
        )
        mask = paste.face_masks(parser_net, crop)
        row(
            "paste one face",
            timed(device, lambda: paste.paste_faces(upscaled_t.clone(), crop, mask, [matrix])),
        )
        if not args.quick:
            for name in ("GFPGANv1.4.pth", "codeformer.pth"):
                restorer = load_spandrel_model(weights / name, device)
                for batch in (1, 4):
                    seconds = timed(device, lambda r=restorer, b=batch: restore_faces(r, crop.expand(b, -1, -1, -1)),
                                    repeat=args.repeat)  # fmt: skip
                    row(f"restore {name} batch {batch}", seconds / batch, "per face")
                del restorer

        options = Recipe(
            scale=2, restore_with="gfpgan", restore_strength=0.8, precision=args.precision
        )
        models = Networks(options, weights, device)
        models.detector = fixed_faces_detector(args.faces, 0.3)
        sources = [
            SourceImage(
                Path(f"{i}.png"),
                rng.random((args.size, args.size, 3), dtype=np.float32),
                None,
                8,
                [],
                "0" * 64,
            )
            for i in range(args.images)
        ]
        fix_image(sources[0], options, models)  # warm-up: loads every model once
        sync(device)
        start = time.perf_counter()
        for source in sources:
            fix_image(source, options, models)
        sync(device)
        total = time.perf_counter() - start
        per_image = total / args.images
        row(f"end to end x2 + GFPGAN, {args.faces} faces/image", per_image, "per image")
        print(
            f"end to end: {args.images / total:.2f} images/s ({args.images} images of {args.size}x{args.size})"
        )
        rows.append(("end to end images/s", f"{args.images / total:.2f}"))
        fix_images(sources[: args.batch], options, models)  # warm-up at this batch size
        sync(device)
        start = time.perf_counter()
        for first_index in range(0, args.images, args.batch):
            fix_images(sources[first_index : first_index + args.batch], options, models)
        sync(device)
        total = time.perf_counter() - start
        print(
            f"end to end, fix_images in batches of {args.batch}: {args.images / total:.2f} images/s"
        )
        rows.append((f"end to end images/s, batches of {args.batch}", f"{args.images / total:.2f}"))
        first = fix_image(sources[1], options, models).rgb
        second = fix_image(sources[1], options, models).rgb
        print(f"deterministic on {device}: {np.array_equal(first, second)}")
        rows.append((f"deterministic on {device.type}", str(np.array_equal(first, second))))


if __name__ == "__main__":
    main()
