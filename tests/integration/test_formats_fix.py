"""Output formats through the real `fix` pipeline (tiny random x2 upscaler, tiny images): names,
re-runs, another format, alpha, 16-bit, orientation, the metadata as A1111 and ComfyUI read it,
`info` and the report."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import hidden_leftovers
from metadata_support import A1111_PARAMETERS, COMFY_PROMPT, COMFY_WORKFLOW, png_with
from PIL import Image
from tool_readers import a1111_geninfo, comfyui_webp_workflow

from facefix_cli.io.pngchunks import Chunk, parse_chunks, text_chunk, with_chunks

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_upscaler(tmp_path_factory) -> Path:
    torch = pytest.importorskip("torch")
    from checkpoints import realesrgan_state_dict

    path = tmp_path_factory.mktemp("upscaler") / "tiny_x2.pth"
    torch.save(realesrgan_state_dict(2, num_block=1), path)
    return path


def run_fix(paths: list[Path], upscaler: Path, **settings):
    from facefix_cli import pipeline
    from facefix_cli.recipe import Recipe

    run_settings = pipeline.RunSettings(
        weights_dir=upscaler.parent / "weights", device="cpu", offline=True, workers=0, **settings
    )
    return pipeline.fix(paths, Recipe(upscaler_path=upscaler), run_settings)


def encoded_png(mode: str, array: np.ndarray, *chunks: Chunk) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array, mode).save(buffer, "PNG")
    return with_chunks(buffer.getvalue(), list(chunks))


@pytest.fixture
def folder(tmp_path) -> Path:
    rng = np.random.default_rng(5)
    rgb = rng.integers(0, 256, (16, 20, 3), dtype=np.uint8)
    (tmp_path / "a1111.png").write_bytes(
        encoded_png("RGB", rgb, text_chunk("parameters", A1111_PARAMETERS))
    )
    (tmp_path / "comfy.png").write_bytes(
        png_with(
            text_chunk("prompt", json.dumps(COMFY_PROMPT)),
            text_chunk("workflow", json.dumps(COMFY_WORKFLOW)),
        )
    )
    rgba = np.dstack([rgb, np.full((16, 20), 255, np.uint8)])
    rgba[:8, :, 3] = 0
    (tmp_path / "alpha.png").write_bytes(encoded_png("RGBA", rgba))
    deep = rng.integers(0, 65536, (16, 20, 3), dtype=np.uint16)
    (tmp_path / "deep.png").write_bytes(cv2.imencode(".png", deep)[1].tobytes())  # 16-bit RGB
    turned = Image.fromarray(rgb, "RGB")  # stored 20 wide, 16 high; Orientation 6: shown 16 x 20
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    turned.save(buffer, "JPEG", exif=exif.tobytes())
    (tmp_path / "turned.jpg").write_bytes(buffer.getvalue())
    return tmp_path


def statuses(summary) -> dict[str, tuple[str, str]]:
    return {r.source.name: (str(r.status), r.reason) for r in summary.results}


def test_webp_run_then_rerun_then_jpeg(folder, tiny_upscaler):
    summary = run_fix([folder], tiny_upscaler, extensions=("png", "jpg"), output_format="webp")
    done = statuses(summary)
    assert {name: status for name, (status, _r) in done.items()} == dict.fromkeys(
        ["a1111.png", "alpha.png", "comfy.png", "deep.png", "turned.jpg"], "fixed"
    )
    assert "16-bit input stored as 8-bit WEBP" in done["deep.png"][1]
    names = sorted(p.name for p in folder.iterdir() if ".fixed." in p.name)
    assert names == [
        "a1111.fixed.webp",
        "alpha.fixed.webp",
        "comfy.fixed.webp",
        "deep.fixed.webp",
        "turned.jpg.fixed.webp",
    ]
    assert hidden_leftovers(folder) == []  # no claim or temporary file left

    a1111 = (folder / "a1111.fixed.webp").read_bytes()
    assert a1111_geninfo(a1111) == A1111_PARAMETERS
    comfy = comfyui_webp_workflow((folder / "comfy.fixed.webp").read_bytes())
    assert comfy == {"prompt": COMFY_PROMPT, "workflow": COMFY_WORKFLOW}
    with Image.open(folder / "alpha.fixed.webp") as image:
        assert image.mode == "RGBA" and image.size == (40, 32)
        alpha = np.asarray(image)[:, :, 3]
        assert alpha[:12].max() < 32 and alpha[20:].min() > 223
    with Image.open(folder / "turned.jpg.fixed.webp") as image:
        assert image.size == (32, 40)  # upright: 16 x 20 shown, x2
        assert image.getexif().get(0x0112) == 1

    from facefix_cli import metadata

    infos = {r.path.name: r for r in metadata.info(sorted(folder.glob("*.fixed.webp")))}
    deep = infos["deep.fixed.webp"].record
    assert deep is not None and deep.facefix[-1]["output"] == {
        "format": "webp",
        "quality": 90,
        "bit_depth": "16 -> 8",
    }
    assert infos["a1111.fixed.webp"].record.tool == "AUTOMATIC1111"
    assert infos["comfy.fixed.webp"].record.tool == "ComfyUI"

    # the same run again: every file is done, nothing is opened
    again = statuses(
        run_fix([folder], tiny_upscaler, extensions=("png", "jpg"), output_format="webp")
    )
    assert {s for s, _r in again.values()} == {"skipped"}

    # another format: a run of its own; JPEG refuses the transparent image, saying what to do
    jpeg = statuses(
        run_fix([folder], tiny_upscaler, extensions=("png", "jpg"), output_format="jpeg")
    )
    assert jpeg["alpha.png"][0] == "failed"
    assert "--format webp" in jpeg["alpha.png"][1] and "png" in jpeg["alpha.png"][1]
    assert {jpeg[n][0] for n in ("a1111.png", "comfy.png", "deep.png", "turned.jpg")} == {"fixed"}
    assert a1111_geninfo((folder / "a1111.fixed.jpg").read_bytes()) == A1111_PARAMETERS
    assert not (folder / "alpha.fixed.jpg").exists()

    # a renamed output is never fixed again
    renamed = folder / "renamed.webp"
    shutil.copy(folder / "a1111.fixed.webp", renamed)
    (result,) = run_fix([renamed], tiny_upscaler, extensions=("webp",)).results
    assert result.status == "skipped" and "already a facefix output" in result.reason

    # the report finds outputs of every format and shows them
    from facefix_cli.report.build import inputs_from_paths, write_report

    inputs = inputs_from_paths([folder])
    found = sorted(entry.output.name for entry in inputs.outputs)
    assert "a1111.fixed.jpg" in found and "alpha.fixed.webp" in found and len(found) == 9
    report = write_report(folder / "report.html", inputs, workers=1)
    assert report.images == 9 and report.failed == 0


def test_png_and_same(folder, tiny_upscaler):
    """`same` writes each output in its input's format; PNG outputs carry chunks as always."""
    summary = run_fix([folder], tiny_upscaler, extensions=("png", "jpg"), output_format="same")
    assert {str(r.status) for r in summary.results} == {"fixed"}
    assert (folder / "turned.jpg.fixed.jpg").is_file()
    chunks = parse_chunks((folder / "a1111.fixed.png").read_bytes())
    assert text_chunk("parameters", A1111_PARAMETERS) in chunks


def test_lossless_webp_keeps_the_pixels_png_keeps_and_the_metadata(folder, tiny_upscaler):
    """`--format webp-lossless`: the same 8-bit pixels as the PNG output, the settings where
    A1111 reads them, the record saying how it was encoded."""
    from facefix_cli.metadata import chunks_from_bytes, parse_generation

    summary = run_fix([folder], tiny_upscaler, output_format="webp-lossless")
    done = statuses(summary)
    assert {done[n][0] for n in ("a1111.png", "alpha.png", "comfy.png", "deep.png")} == {"fixed"}
    assert "16-bit input stored as 8-bit WEBP-LOSSLESS" in done["deep.png"][1]
    png = run_fix([folder], tiny_upscaler, output_format="png")
    assert [str(r.status) for r in png.results].count("fixed") == 4
    for name in ("a1111", "alpha", "comfy"):
        webp = (folder / f"{name}.fixed.webp").read_bytes()
        assert webp[12:16] in (b"VP8L", b"VP8X") and b"VP8L" in webp[:4096]  # lossless bitstream
        with (
            Image.open(folder / f"{name}.fixed.webp") as lossless,
            Image.open(folder / f"{name}.fixed.png") as reference,
        ):
            assert np.array_equal(np.asarray(lossless), np.asarray(reference))
    a1111 = (folder / "a1111.fixed.webp").read_bytes()
    assert a1111_geninfo(a1111) == A1111_PARAMETERS
    (record,) = parse_generation(chunks_from_bytes(a1111)).facefix
    assert record["output"] == {"format": "webp-lossless"}


def test_the_command_line_and_facefix_toml_choose_the_format(
    folder, tmp_path, monkeypatch, weights_dir
):
    from PIL import features
    from typer.testing import CliRunner

    from facefix_cli.cli.app import app

    runner = CliRunner()

    def fix(*args: str):
        command = ["fix", str(folder), "-U", "2", "--dry-run", "--json", "-v"]
        command += ["--weights-dir", str(weights_dir), *args]
        return runner.invoke(app, command)

    planned = json.loads(fix("--format", "webp", "--ext", "png,jpg").stdout)
    outputs = sorted(Path(f["output"]).name for f in planned["files"] if f.get("output"))
    assert outputs and all(name.endswith(".fixed.webp") for name in outputs), planned
    monkeypatch.chdir(tmp_path)
    (tmp_path / "facefix.toml").write_text('format = "jpeg"\nquality = 70\n')
    planned = json.loads(fix().stdout)
    outputs = [Path(f["output"]).name for f in planned["files"] if f["status"] == "planned"]
    assert outputs and all(name.endswith(".fixed.jpg") for name in outputs), planned
    refused = fix("--quality", "0")
    assert refused.exit_code == 2
    # a quality PNG cannot use is said, not dropped (issue #30): facefix.toml says jpeg here
    warned = fix("--format", "png", "--quality", "80", "--png-level", "6")
    assert warned.exit_code == 0
    assert "warning: --quality 80 is ignored: png outputs keep every value" in warned.stderr
    assert "--png-level" not in warned.stderr  # PNG's own option, for PNG outputs
    warned = fix("--format", "webp-lossless", "--png-level", "6")
    assert "warning: --png-level 6 is ignored: the outputs are webp-lossless" in warned.stderr
    # facefix.toml's quality 70 cannot apply either
    assert "warning: --quality 70 is ignored: webp-lossless outputs keep every value" in (
        warned.stderr
    )
    monkeypatch.setattr(features, "check", lambda name: name != "avif")
    refused = fix("--format", "avif")
    assert refused.exit_code == 2 and "--format avif" in json.loads(refused.stdout)["error"]
