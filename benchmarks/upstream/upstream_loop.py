"""The upstream-style sequential loop that facefix's benchmark compares against.

Run with the upstream venv's python (setup_env.sh). For each PNG in --inputs, in file-name
order, it does what AUTOMATIC1111 and InvokeAI 2.x do with the original PyPI packages:

  1. cv2.imread -> BGR uint8
  2. RealESRGANer(RRDBNet x2plus/x4plus, tile=0, tile_pad=10, pre_pad=0, half on CUDA)
     .enhance(img, outscale=scale)
  3. GFPGANer(GFPGANv1.4, upscale=1, arch='clean', channel_multiplier=2, bg_upsampler=None)
     .enhance(upscaled, has_aligned=False, only_center_face=False, paste_back=True):
     RetinaFace landmarks, alignment to 512x512, GFPGAN, ParseNet-masked paste-back
  4. InvokeAI's strength blend: Image.blend(upscaled, restored, strength) in PIL (RGB)

It measures the models' load time (both constructors, which also load RetinaFace and ParseNet)
and, per image, the seconds of each stage: read, upscale (step 2), restore (step 3) and blend
(step 4). Writing --output files is not timed. The first image is a warm-up and left out of the
steady-state figures (per-image seconds, images/s, stage split) unless it is the only one.

Fixed landmarks (--faces-json): random-weight RetinaFace finds no faces or hundreds, so for
benchmarks the JSON file gives each image's faces instead, {"name.png": [[[x, y] * 5], ...]},
five landmarks per face (left eye, right eye, nose, left and right mouth corner, as RetinaFace
orders them) in the UPSCALED image's pixel coordinates. The loop then replaces
FaceRestoreHelper.get_face_landmarks_5 with a method that fills det_faces / all_landmarks_5
from the file (keeping upstream's eye-distance filter); alignment, GFPGAN and the paste-back
stay upstream's own code. Without the file the real detector runs.

All weights come from --weights (released file names and layouts); GFPGANer's face helper is
pointed there too, so nothing is downloaded.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import cv2
import gfpgan.utils
import numpy as np
import torch
from basicsr.archs.rrdbnet_arch import RRDBNet
from facexlib.utils.face_restoration_helper import FaceRestoreHelper
from gfpgan import GFPGANer
from PIL import Image
from realesrgan import RealESRGANer

FACEXLIB_FILES = ("detection_Resnet50_Final.pth", "parsing_parsenet.pth")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--inputs", type=Path, required=True, help="folder of PNG files")
    p.add_argument("--weights", type=Path, required=True, help="folder of released .pth files")
    p.add_argument("--scale", type=int, choices=(2, 4), default=2)
    p.add_argument("--gfpgan-strength", type=float, default=0.8)
    p.add_argument(
        "--device", choices=("cpu", "cuda"), default="cuda" if torch.cuda.is_available() else "cpu"
    )
    p.add_argument("--faces-json", type=Path, help="fixed landmarks per file name (see module doc)")
    p.add_argument("--output", type=Path, help="write results here (cv2.imwrite)")
    p.add_argument("--json", action="store_true", help="print the timings as JSON")
    return p.parse_args(argv)


def use_local_facexlib_weights(folder: Path) -> None:
    """GFPGANer builds its FaceRestoreHelper with model_rootpath='gfpgan/weights' (relative to
    the working directory), where facexlib downloads missing files; point it at `folder`."""

    class LocalWeightsHelper(FaceRestoreHelper):
        def __init__(self, *args, **kwargs):
            kwargs["model_rootpath"] = str(folder)
            super().__init__(*args, **kwargs)

    gfpgan.utils.FaceRestoreHelper = LocalWeightsHelper


def fixed_landmarks_5(
    self,
    only_keep_largest=False,
    only_center_face=False,
    resize=None,
    blur_ratio=0.01,
    eye_dist_threshold=None,
):
    """Stands in for FaceRestoreHelper.get_face_landmarks_5: faces from self.fixed_faces."""
    for face in self.fixed_faces:
        landmarks = np.asarray(face, dtype=np.float32).reshape(5, 2)
        if (
            eye_dist_threshold is not None
            and np.linalg.norm(landmarks[0] - landmarks[1]) < eye_dist_threshold
        ):
            continue  # upstream skips faces whose eyes are closer than this
        x0, y0 = landmarks.min(axis=0)
        x1, y1 = landmarks.max(axis=0)
        self.det_faces.append(np.array([x0, y0, x1, y1, 1.0], dtype=np.float32))
        self.all_landmarks_5.append(landmarks)
    return len(self.all_landmarks_5)


def load_models(args: argparse.Namespace) -> tuple[RealESRGANer, GFPGANer]:
    device = torch.device(args.device)
    upsampler = RealESRGANer(
        scale=args.scale,
        model_path=str(args.weights / f"RealESRGAN_x{args.scale}plus.pth"),
        model=RRDBNet(
            num_in_ch=3, num_out_ch=3, num_feat=64, num_block=23, num_grow_ch=32, scale=args.scale
        ),
        tile=0,
        tile_pad=10,
        pre_pad=0,
        half=args.device == "cuda",
        device=device,
    )
    restorer = GFPGANer(
        model_path=str(args.weights / "GFPGANv1.4.pth"),
        upscale=1,
        arch="clean",
        channel_multiplier=2,
        bg_upsampler=None,
        device=device,
    )
    return upsampler, restorer


def fix_one(
    path: Path,
    upsampler: RealESRGANer,
    restorer: GFPGANer,
    strength: float,
    timer: dict[str, float],
) -> np.ndarray:
    """One image through the upstream recipe; adds each stage's seconds to `timer`."""
    t0 = time.perf_counter()
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)  # BGR uint8
    t1 = time.perf_counter()
    upscaled, _ = upsampler.enhance(img, outscale=upsampler.scale)
    t2 = time.perf_counter()
    _, restored_faces, restored = restorer.enhance(
        upscaled, has_aligned=False, only_center_face=False, paste_back=True
    )
    t3 = time.perf_counter()
    if strength < 1.0:  # InvokeAI: blend the restored picture over the upscaled one, in RGB
        base = Image.fromarray(upscaled[..., ::-1])
        restored = np.asarray(Image.blend(base, Image.fromarray(restored[..., ::-1]), strength))[
            ..., ::-1
        ]
    t4 = time.perf_counter()  # both enhance() calls return host arrays: the GPU work is done
    timer.update(
        read=t1 - t0,
        upscale=t2 - t1,
        restore=t3 - t2,
        blend=t4 - t3,
        total=t4 - t0,
        faces=len(restored_faces),
    )
    return np.ascontiguousarray(restored)


def main(argv=None) -> int:
    args = parse_args(argv)
    inputs = sorted(args.inputs.glob("*.png"))
    if not inputs:
        sys.exit(f"no PNG files in {args.inputs}")
    needed = [f"RealESRGAN_x{args.scale}plus.pth", "GFPGANv1.4.pth", *FACEXLIB_FILES]
    missing = [name for name in needed if not (args.weights / name).is_file()]
    if missing:  # facexlib would otherwise try to download them
        sys.exit(f"missing in {args.weights}: {', '.join(missing)}")
    faces = json.loads(args.faces_json.read_text()) if args.faces_json else None
    if faces is not None:
        FaceRestoreHelper.get_face_landmarks_5 = fixed_landmarks_5
    use_local_facexlib_weights(args.weights)
    if args.output:
        args.output.mkdir(parents=True, exist_ok=True)

    t0 = time.perf_counter()
    upsampler, restorer = load_models(args)
    if args.device == "cuda":
        torch.cuda.synchronize()
    load_s = time.perf_counter() - t0

    runs = []
    for path in inputs:
        if faces is not None:
            restorer.face_helper.fixed_faces = faces.get(path.name, [])
        timer: dict[str, float] = {}
        result = fix_one(path, upsampler, restorer, args.gfpgan_strength, timer)
        runs.append({"image": path.name, **timer})
        if args.output:
            cv2.imwrite(str(args.output / path.name), result)

    steady = runs[1:] or runs
    per_image = statistics.mean(r["total"] for r in steady)
    report = {
        "device": args.device,
        "scale": args.scale,
        "gfpgan_strength": args.gfpgan_strength,
        "images": len(runs),
        "steady_images": len(steady),
        "load_s": load_s,
        "per_image_s": per_image,
        "images_per_s": 1.0 / per_image,
        "stages_s": {
            k: statistics.mean(r[k] for r in steady)
            for k in ("read", "upscale", "restore", "blend")
        },
        "runs": runs,
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(
            f"upstream loop on {args.device}, x{args.scale}, GFPGAN strength {args.gfpgan_strength}"
        )
        print(f"models load: {load_s:.2f} s")
        for r in runs:
            print(
                f"  {r['image']}: {r['total']:.3f} s (upscale {r['upscale']:.3f}, restore {r['restore']:.3f}, "
                f"{r['faces']} face(s))"
            )
        print(
            f"steady state over {len(steady)} image(s): {per_image:.3f} s/image, {1 / per_image:.2f} images/s"
        )
        print("  " + ", ".join(f"{k} {v:.3f} s" for k, v in report["stages_s"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
