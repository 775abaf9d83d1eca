"""`facefix fix` end to end through the command line: files, exit codes, messages, originals."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from checkpoints import realesrgan_state_dict, save_params_ema
from conftest import INVOKEAI_FIXTURES, SAMPLE_IMAGES, gradient_image, hidden_leftovers, snapshot
from PIL import Image
from typer.testing import CliRunner

from facefix_cli import __version__
from facefix_cli.cli import app
from facefix_cli.io.pngchunks import parse_chunks
from facefix_cli.io.write import quantize

runner = CliRunner()


class PickledPayload(dict):
    """Stands in for arbitrary pickled code: weights_only loading must refuse to build it."""


def run(*args: str):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def make_png(path: Path, width: int = 24, height: int = 20, seed: int = 0, **info) -> Path:
    Image.fromarray(quantize(gradient_image(width, height, seed), 8)).save(path, **info)
    return path


@pytest.fixture
def inputs(tmp_path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    make_png(folder / "one.png", seed=1)
    (folder / "nested").mkdir()
    make_png(folder / "nested" / "two.png", 16, 12, seed=2)
    return folder


def test_version():
    result = run("--version")
    assert result.exit_code == 0 and result.stdout.strip() == f"facefix {__version__}"


def test_help_lists_the_contract_options():
    result = runner.invoke(app, ["fix", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for option in ("--upscale", "--upscale-strength", "--gfpgan", "--codeformer", "--fidelity",
                   "--gfpgan-model", "--upscaler", "--weights-dir", "--device", "--tile",
                   "--only-center-face", "--detector", "--output-dir", "--overwrite", "--dry-run",
                   "--json", "--quiet", "--verbose", "--no-recursive", "--config", "--precision",
                   "--half"):  # fmt: skip
        assert option in result.stdout, option


def test_fix_writes_outputs_beside_inputs_and_leaves_originals(inputs, gfpgan_weights):
    before = snapshot(inputs)
    result = run(
        "fix", inputs, "--upscale", "2", "--gfpgan", "0.8", "--weights-dir", gfpgan_weights
    )
    assert result.exit_code == 0, result.output
    one = inputs / "one.fixed.png"
    two = inputs / "nested" / "two.fixed.png"
    assert Image.open(one).size == (48, 40) and Image.open(two).size == (32, 24)
    after = {p: v for p, v in snapshot(inputs).items() if not p.name.endswith(".fixed.png")}
    assert after == before
    assert "processed 2, skipped 0, failed 0, faces restored 0" in result.stderr
    assert "no faces found; upscaled only" in result.stderr
    assert "\x1b" not in result.stderr  # no terminal: plain lines for cron logs


def test_existing_outputs_are_skipped_unless_overwrite(inputs, weights_dir):
    args = ("fix", inputs / "one.png", "-U", "2", "--weights-dir", weights_dir)
    assert run(*args).exit_code == 0
    first = (inputs / "one.fixed.png").stat().st_mtime_ns
    again = run(*args, "--json")
    summary = json.loads(again.stdout)
    assert again.exit_code == 0 and summary["skipped"] == 1 and summary["processed"] == 0
    assert (inputs / "one.fixed.png").stat().st_mtime_ns == first
    redo = run(*args, "--overwrite", "--json")
    assert json.loads(redo.stdout)["processed"] == 1


def test_output_is_byte_identical_across_runs(inputs, weights_dir):
    args = (
        "fix",
        inputs / "one.png",
        "-U",
        "2",
        "--upscale-strength",
        "0.5",
        "--weights-dir",
        weights_dir,
    )
    assert run(*args).exit_code == 0
    first = (inputs / "one.fixed.png").read_bytes()
    assert run(*args, "--overwrite").exit_code == 0
    assert (inputs / "one.fixed.png").read_bytes() == first


def test_output_dir_mirrors_the_layout(inputs, tmp_path, weights_dir):
    out = tmp_path / "out"
    result = run("fix", inputs, "-U", "2", "--output-dir", out, "--weights-dir", weights_dir)
    assert result.exit_code == 0, result.output
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png")) == [
        "nested/two.fixed.png",
        "one.fixed.png",
    ]
    assert not list(inputs.rglob("*.fixed.png"))


def test_no_recursive(inputs, weights_dir):
    result = run("fix", inputs, "-U", "2", "--no-recursive", "--json", "--weights-dir", weights_dir)
    assert [Path(f["source"]).name for f in json.loads(result.stdout)["files"]] == ["one.png"]


def test_dry_run_loads_no_model_and_writes_nothing(inputs, tmp_path):
    empty = tmp_path / "no-weights"
    empty.mkdir()
    # present (a dry run checks that, as a run's setup does) but never loaded: not checkpoints
    for name in ("RealESRGAN_x4plus.pth", "GFPGANv1.4.pth", "detection_Resnet50_Final.pth",
                 "parsing_parsenet.pth"):  # fmt: skip
        (empty / name).write_bytes(b"not a checkpoint")
    result = run(
        "fix", inputs, "-U", "4", "-G", "0.5", "--dry-run", "--json", "--weights-dir", empty
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["planned"] == 2 and summary["processed"] == 0
    assert not list(inputs.rglob("*.fixed.png"))


def test_a_corrupt_file_fails_alone_with_exit_1(inputs, weights_dir):
    good = (inputs / "one.png").read_bytes()
    (inputs / "broken.png").write_bytes(good[: len(good) // 2])
    (inputs / "text.png").write_text("hello")
    before = snapshot(inputs)
    result = run("fix", inputs, "-U", "2", "--json", "--weights-dir", weights_dir)
    assert result.exit_code == 1
    summary = json.loads(result.stdout)
    assert (summary["processed"], summary["failed"]) == (2, 2)
    reasons = {
        Path(f["source"]).name: f["reason"] for f in summary["files"] if f["status"] == "failed"
    }
    assert reasons == {
        "broken.png": "truncated PNG (cut off in chunk IDAT)",
        "text.png": "not an image of that type (bad signature)",
    }
    assert "broken.png" in result.stderr and "truncated PNG" in result.stderr
    assert not (inputs / "broken.fixed.png").exists()
    # each failed input gets its first failure mark (README "What facefix remembers"), no more
    failed_marks = {".broken.fixed.png.failed1", ".text.fixed.png.failed1"}
    assert set(hidden_leftovers(inputs, recursive=True)) == failed_marks
    after = {
        p: v
        for p, v in snapshot(inputs).items()
        if not p.name.endswith(".fixed.png") and p.name not in failed_marks
    }
    assert after == before


def test_missing_path_is_a_usage_error(tmp_path, weights_dir):
    # cron must tell a typo'd path (2) from a corrupt image (1)
    make_png(tmp_path / "a.png")
    result = run("fix", tmp_path, tmp_path / "nope", "-U", "2", "--weights-dir", weights_dir)
    assert result.exit_code == 2
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .endswith(f"error: no such file or folder: {tmp_path / 'nope'}")
    )
    assert not (tmp_path / "a.fixed.png").exists()  # nothing done before the usage error


def test_missing_weights_offline_exit_2_naming_the_download_command(inputs, tmp_path):
    empty = tmp_path / "no-weights"
    result = run("fix", inputs, "-U", "2", "--gfpgan", "0.8", "--weights-dir", empty)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()[1:]  # after the run's start line
    assert lines[0].endswith(
        f" error: missing model weights in {empty} (offline, not downloading):"
    )
    files = [line.split(" ", 1)[1].strip() for line in lines[1:-1]]
    assert "RealESRGAN_x2plus.pth" in files and "GFPGANv1.4.pth" in files  # one a line
    assert " next: copy them there, pass --mirror DIR" in lines[-1]  # works offline
    assert not list(inputs.rglob("*.fixed.png"))
    # --dry-run checks the weights as a real run's setup does (it said "would do 2")
    dry = run("fix", inputs, "-U", "2", "--gfpgan", "0.8", "--weights-dir", empty, "--dry-run")
    assert dry.exit_code == 2 and "missing model weights" in dry.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-U", "3"], "'3' is not one of"),
        (["-G", "1.5"], "--gfpgan must be in (0, 1]"),
        (["--codeformer", "0"], "--codeformer must be in (0, 1]"),
        (["-G", "0.5", "--codeformer", "0.5"], "mutually exclusive"),
        (["--upscale-strength", "2", "-U", "2"], "Invalid value for '--upscale-strength'"),
        ([], "nothing to do"),
        (["-U", "2", "--device", "tpu"], "expected auto, cpu, cuda"),
        (["-U", "2", "--tile", "-5"], "--tile must be"),
        (["-U", "2", "--precision", "fp8"], "'fp8' is not one of"),
        (["-U", "2", "--half", "--precision", "bf16"], "--half means --precision fp16"),
        (["-U", "2", "--ext", "gif"], "unsupported extension"),
        (["-U", "2", "--png-level", "10"], "Invalid value for '--png-level'"),
        (["--upscaler", "missing.pth"], "no such model file"),
    ],
)
def test_usage_errors_exit_2(inputs, weights_dir, args, message):
    result = run("fix", inputs, "--weights-dir", weights_dir, *args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not list(inputs.rglob("*.fixed.png"))


def test_cuda_requested_without_a_gpu_is_a_setup_error(inputs, weights_dir):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    result = run("fix", inputs, "-U", "2", "--device", "cuda", "--weights-dir", weights_dir)
    assert result.exit_code == 2 and "no CUDA GPU is available" in result.stderr


def test_alpha_sixteen_bit_grey_and_palette_outputs(tmp_path, weights_dir):
    rgb8 = quantize(gradient_image(20, 16), 8)
    Image.fromarray(rgb8).convert("RGBA").save(tmp_path / "rgba.png")
    Image.fromarray(rgb8).convert("L").save(tmp_path / "grey.png")
    Image.fromarray(rgb8).convert("P").save(tmp_path / "palette.png")
    deep = (gradient_image(20, 16) * 65535).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "deep.png"), deep)
    result = run("fix", tmp_path, "-U", "2", "--weights-dir", weights_dir)
    assert result.exit_code == 0, result.output
    rgba = cv2.imread(str(tmp_path / "rgba.fixed.png"), cv2.IMREAD_UNCHANGED)
    assert rgba.shape == (32, 40, 4) and rgba[:, :, 3].min() == 255  # opaque stays opaque
    for name in ("grey", "palette"):
        out = cv2.imread(str(tmp_path / f"{name}.fixed.png"), cv2.IMREAD_UNCHANGED)
        assert out.shape == (32, 40, 3) and out.dtype == np.uint8
    out16 = cv2.imread(str(tmp_path / "deep.fixed.png"), cv2.IMREAD_UNCHANGED)
    assert out16.dtype == np.uint16 and out16.shape == (32, 40, 3)
    assert len(np.unique(out16)) > 256  # really 16-bit data, not 8-bit values stretched


def test_custom_upscaler_takes_its_scale_from_the_model(tmp_path, inputs):
    small = save_params_ema(realesrgan_state_dict(4, num_block=2), tmp_path / "tiny_x4.pth")
    result = run(
        "fix", inputs / "one.png", "--upscaler", small, "--weights-dir", tmp_path, "--json"
    )
    assert result.exit_code == 0, result.output
    assert Image.open(inputs / "one.fixed.png").size == (96, 80)


def test_custom_upscaler_that_is_not_an_upscaler_is_a_setup_error(tmp_path, inputs):
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    result = run("fix", inputs, "--upscaler", junk, "--weights-dir", tmp_path)
    assert result.exit_code == 2 and "cannot load model file" in result.stderr


def test_metadata_chunks_survive_and_a_facefix_record_is_added(tmp_path, weights_dir):
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("parameters", "a portrait\nSteps: 20, Seed: 42, Size: 24x20")
    info.add_itxt("comment", "ünïcode", zip=True)
    make_png(tmp_path / "meta.png", pnginfo=info, dpi=(300, 300))
    source_chunks = parse_chunks((tmp_path / "meta.png").read_bytes())
    assert run("fix", tmp_path, "-U", "2", "--weights-dir", weights_dir).exit_code == 0
    output_chunks = parse_chunks((tmp_path / "meta.fixed.png").read_bytes())
    for chunk in source_chunks:
        if chunk.type in (b"tEXt", b"iTXt", b"pHYs"):
            assert chunk in output_chunks
    from facefix_cli.metadata import parse_generation

    (record,) = parse_generation(output_chunks).facefix
    assert record["facefix_version"] == __version__
    assert record["source"]["file"] == "meta.png"
    assert record["operations"][0]["model"] == "RealESRGAN_x2plus.pth"


def test_real_invokeai_files(tmp_path, tmp_path_factory, gfpgan_weights):
    for name in ("curly.png", "Lincoln-and-Parrot-512-transparent.png"):
        shutil.copy(INVOKEAI_FIXTURES / name, tmp_path / name)
    names = ("curly", "Lincoln-and-Parrot-512-transparent")
    # The test detector finds no face: restoration alone writes no output (it would be a copy
    # of the input) and leaves a `.noface` mark (README "What facefix remembers").
    result = run("fix", tmp_path, "--gfpgan", "0.8", "--json", "--weights-dir", gfpgan_weights)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["processed"], summary["skipped"]) == (0, 2)
    assert summary["skipped_reasons"] == {"no face found: nothing to restore, no output written": 2}
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == sorted(
        f".{name}.fixed.png.noface" for name in names
    )
    assert not list(tmp_path.glob("*.fixed.png"))
    # With an upscale an output is written, faces or not: its metadata is carried. A one-block
    # x2 upscaler: the full-size random one costs a minute here and the pixels are not the point.
    tiny = save_params_ema(
        realesrgan_state_dict(2, num_block=1), tmp_path_factory.mktemp("tiny") / "tiny_x2.pth"
    )
    result = run("fix", tmp_path, "--gfpgan", "0.8", "--upscaler", tiny, "--json",
                 "--weights-dir", gfpgan_weights)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["processed"] == 2
    for name in names:
        source = parse_chunks((tmp_path / f"{name}.png").read_bytes())
        output = parse_chunks((tmp_path / f"{name}.fixed.png").read_bytes())
        carried = [
            c for c in source if c.type in (b"tEXt", b"zTXt", b"iTXt", b"iCCP", b"eXIf", b"pHYs")
        ]
        assert carried, name
        for chunk in carried:
            if chunk.type != b"tEXt" or not chunk.data.startswith(b"sd-metadata\x00"):
                assert chunk in output, (name, chunk.type)
    transparent = Image.open(tmp_path / "Lincoln-and-Parrot-512-transparent.fixed.png")
    assert transparent.mode == "RGBA"


@pytest.mark.skipif(not SAMPLE_IMAGES.is_dir(), reason="no sample_images")
def test_readme_quick_start_dry_run_on_sample_images(weights_dir):
    result = run("fix", SAMPLE_IMAGES, "--gfpgan", "0.8", "--upscale", "2", "--dry-run", "--json",
                 "--weights-dir", weights_dir)  # fmt: skip
    assert result.exit_code == 0
    assert json.loads(result.stdout)["planned"] >= 3


@pytest.mark.parametrize(
    ("args", "missing_file"),
    [
        (["-G", "0.5", "--gfpgan-model", "1.3"], "GFPGANv1.3.pth"),
        (["--codeformer", "0.5"], "codeformer.pth"),
        (["-G", "0.5", "--detector", "retinaface_mobile0.25"], "detection_mobilenet0.25_Final.pth"),
        (["-U", "4"], "RealESRGAN_x4plus.pth"),
    ],
)
def test_each_model_option_asks_for_its_own_file(inputs, tmp_path, args, missing_file):
    empty = tmp_path / "none"
    result = run("fix", inputs, "--weights-dir", empty, *args)
    assert result.exit_code == 2 and missing_file in result.stderr


def test_mobile_detector_and_tiles_run_end_to_end(inputs, gfpgan_weights):
    args = ("fix", inputs / "one.png", "--weights-dir", gfpgan_weights, "-U", "4", "--json")
    result = run(*args, "-G", "0.5", "--detector", "retinaface_mobile0.25", "--tile", "32")
    assert result.exit_code == 0, result.output
    tiled = cv2.imread(str(inputs / "one.fixed.png"))
    assert tiled.shape == (80, 96, 3)
    assert run(*args, "--overwrite", "--tile", "0").exit_code == 0
    whole = cv2.imread(str(inputs / "one.fixed.png"))
    # Tiles see 10 px of context, so they agree with the whole-image result almost everywhere.
    assert np.mean(np.abs(tiled.astype(int) - whole.astype(int)) <= 2) > 0.95


def test_quiet_and_verbose_logging(inputs, weights_dir):
    (inputs / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    quiet = run("fix", inputs, "-U", "2", "-q", "--weights-dir", weights_dir)
    assert quiet.exit_code == 1
    assert "bad.png" in quiet.stderr and "fixed: " not in quiet.stderr
    verbose = run("fix", inputs, "-U", "2", "-v", "--overwrite", "--weights-dir", weights_dir)
    assert "start: " in verbose.stderr and "fixed: " in verbose.stderr


def test_models_load_once_per_run_and_only_when_needed(tmp_path, weights_dir, monkeypatch):
    import facefix_cli.networks.cache as cache

    loads: list[str] = []
    real = cache.load_spandrel_model
    monkeypatch.setattr(
        cache, "load_spandrel_model", lambda p, d, *arch: loads.append(p.name) or real(p, d, *arch)
    )
    for index in range(3):
        make_png(tmp_path / f"{index}.png", seed=index)
    assert run("fix", tmp_path, "-U", "2", "--weights-dir", weights_dir).exit_code == 0
    assert loads == ["RealESRGAN_x2plus.pth"]
    loads.clear()
    assert (
        run("fix", tmp_path, "-U", "2", "--weights-dir", weights_dir).exit_code == 0
    )  # all skipped
    assert loads == []


def test_ctrl_c_exits_130_and_leaves_no_partial_file(inputs, weights_dir, monkeypatch):
    import facefix_cli.io.write as write_module

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    # the PNG encoder the write step calls (`io.encode.encode_png` looks it up at call time)
    monkeypatch.setattr(write_module, "encode_png", interrupted)
    before = snapshot(inputs)
    result = run("fix", inputs, "-U", "2", "--weights-dir", weights_dir)
    assert result.exit_code == 130 and "interrupted" in result.stderr
    assert snapshot(inputs) == before  # no output, no temporary file, originals untouched


def test_checkpoints_with_pickled_code_are_refused(tmp_path, inputs):
    import torch

    path = tmp_path / "evil.pth"
    torch.save({"params_ema": PickledPayload(realesrgan_state_dict(4, num_block=1))}, path)
    result = run("fix", inputs, "--upscaler", path, "--weights-dir", tmp_path)
    assert result.exit_code == 2 and "cannot load model file" in result.stderr


def test_rich_progress_reports_files(tmp_path):
    from facefix_cli.cli.console import RichFixEvents
    from facefix_cli.pipeline import FileResult
    from facefix_cli.pipeline.results import RunStart

    with RichFixEvents() as events:
        events.run_started(RunStart("cpu", "upscale x2", 2, 2, 0, 0))
        events.file_finished(
            FileResult(tmp_path / "a.png", tmp_path / "a.fixed.png", "fixed", faces=2)
        )
        events.file_finished(FileResult(tmp_path / "b.png", None, "failed", "truncated PNG"))
    task = events.progress.tasks[0]
    assert (task.completed, task.total, task.fields["faces"]) == (2, 2, 2)


def test_fix_fetches_missing_weights_from_a_mirror_before_working(inputs, tmp_path):
    """Not offline: fix downloads what it needs first (here from a folder mirror, with stand-in
    digests registered for a random checkpoint), verifies it, then fixes the images."""
    import dataclasses
    import hashlib

    from facefix_cli.cli.app import AppContext
    from facefix_cli.weights.registry import REGISTRY, Registry

    mirror = tmp_path / "mirror"
    mirror.mkdir()
    checkpoint = save_params_ema(
        realesrgan_state_dict(2, num_block=2), mirror / "RealESRGAN_x2plus.pth"
    )
    data = checkpoint.read_bytes()
    stand_in = dataclasses.replace(
        REGISTRY.get("realesrgan-x2plus"),
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        urls=("http://127.0.0.1:9/unreachable/RealESRGAN_x2plus.pth",),
    )
    stand_ins = Registry(tuple(stand_in if m.name == stand_in.name else m for m in REGISTRY.models))
    weights = tmp_path / "weights"
    result = runner.invoke(
        app,
        [
            "fix",
            str(inputs),
            "-U",
            "2",
            "--weights-dir",
            str(weights),
            "--mirror",
            str(mirror),
            "--json",
        ],
        env={"FACEFIX_OFFLINE": ""},
        obj=AppContext(registry=stand_ins),
    )
    assert result.exit_code == 0, result.output
    assert (weights / "RealESRGAN_x2plus.pth").read_bytes() == data
    assert json.loads(result.stdout)["processed"] == 2
    # And with --offline the same missing file is an exit-2 setup error naming the command.
    offline = run("fix", inputs, "-U", "4", "--offline", "--overwrite", "--weights-dir", weights)
    assert offline.exit_code == 2 and "RealESRGAN_x4plus.pth" in offline.stderr
    assert "facefix models --find DIR" in offline.stderr


def test_report_into_a_missing_folder_fails_before_any_work(inputs, weights_dir, tmp_path):
    before = snapshot(inputs)
    result = run("fix", inputs, "-U", "2", "--weights-dir", weights_dir,
                 "--report", tmp_path / "nope" / "r.html")  # fmt: skip
    assert result.exit_code == 2
    assert "error: --report: no such folder" in result.output
    assert snapshot(inputs) == before  # no output was written


def test_json_names_the_report_or_null(inputs, weights_dir, tmp_path):
    plain = json.loads(run("fix", inputs, "-U", "2", "--json", "--weights-dir", weights_dir).stdout)
    assert plain["report"] is None
    report = tmp_path / "r.html"
    result = run("fix", inputs, "-U", "2", "--report", report, "--weights-dir", weights_dir)
    assert result.exit_code == 0
    assert f"report: {report} (0 images" in result.output  # everything was skipped this time
    assert report.is_file()


def test_report_command_without_outputs_is_a_usage_error(inputs, tmp_path):
    result = run("report", inputs, "-o", tmp_path / "r.html")
    assert result.exit_code == 2
    assert result.stderr == (
        "error: no facefix outputs (.fixed.png/.webp/.jpg/.avif) found in the paths given\n"
    )
    assert not (tmp_path / "r.html").exists()


def test_report_of_an_output_dir_finds_the_originals(inputs, weights_dir, tmp_path):
    out = tmp_path / "out"
    result = run("fix", inputs, "-U", "2", "--output-dir", out, "--weights-dir", weights_dir)
    assert result.exit_code == 0, result.output
    report = tmp_path / "r.html"
    # Each output records where its original was, relative to it (#30, finding 9).
    alone = run("report", out, "-o", report)
    assert alone.exit_code == 0, alone.output
    page = report.read_text()
    assert "original not found" not in page and page.count('class="before"') == 2
    moved = inputs.rename(tmp_path / "moved")
    gone = run("report", out, "-o", report)
    assert gone.exit_code == 0 and report.read_text().count("original not found") == 2
    assert "2 without the original" in gone.output and "--originals DIR" in gone.output
    found = run("report", out, "--originals", moved, "-o", report)
    assert found.exit_code == 0, found.output
    assert "report: " in found.output and "(2 images" in found.output
    page = report.read_text()
    assert "original not found" not in page and page.count('class="before"') == 2
    missing = run("report", out, "--originals", tmp_path / "nowhere", "-o", report)
    assert missing.exit_code == 2 and "--originals: no such folder" in missing.output


def test_a_sideways_phone_jpeg_is_fixed_upright(tmp_path, weights_dir):
    """A JPEG stored sideways with EXIF Orientation 6: faces are looked for upright, and the
    output is upright with Orientation 1 (a viewer turning it again would show it sideways)."""
    from facefix_cli.io.orientation import orientation

    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.full((12, 16, 3), 90, np.uint8)).save(tmp_path / "phone.jpg", exif=exif)
    result = run("fix", tmp_path, "-U", "2", "--ext", "jpg", "--weights-dir", weights_dir)
    assert result.exit_code == 0, result.output
    output = tmp_path / "phone.jpg.fixed.png"
    with Image.open(output) as image:
        assert image.size == (24, 32)  # 16 wide x 12 high stored; 12 x 16 upright; x2
        assert orientation(image.info["exif"].removeprefix(b"Exif\x00\x00")) == 1


def test_restoration_alone_copies_no_faceless_image_and_remembers_it(inputs, gfpgan_weights):
    """Issue #30: `-G` alone on renders without faces wrote copies of them; now it writes
    nothing, says so, and the next run does not detect again (until --overwrite)."""
    args = ("fix", inputs, "--gfpgan", "0.8", "--weights-dir", gfpgan_weights)
    first = run(*args)
    assert first.exit_code == 0, first.output
    assert not list(inputs.rglob("*.fixed.png"))
    assert "skipped 2: no face found: nothing to restore, no output written" in first.stderr
    assert (inputs / ".one.fixed.png.noface").is_file()
    again = run(*args)
    assert again.exit_code == 0
    assert (
        "skipped 2: no face found by an earlier run (use --overwrite to look again)" in again.stderr
    )
    assert "found 2, to do" not in again.stderr  # nothing to do: no load, no count line
    redo = run(*args, "--overwrite")
    assert "skipped 2: no face found: nothing to restore" in redo.stderr


def test_quiet_prints_nothing_when_nothing_was_done(inputs, weights_dir):
    """Issue #30: cron mails whatever a job prints; -q on a run that did nothing is silent."""
    assert run("fix", inputs, "-U", "2", "--weights-dir", weights_dir, "-q").exit_code == 0
    idle = run("fix", inputs, "-U", "2", "--weights-dir", weights_dir, "-q")
    assert idle.exit_code == 0 and idle.stderr == "" and idle.stdout == ""
    # without -q the summary says why nothing was done (it said only "skipped 2")
    told = run("fix", inputs, "-U", "4", "--weights-dir", weights_dir)
    assert told.stderr.strip().endswith(
        "; skipped 2: output exists, made with upscale x2 (use --overwrite)"
    )


def test_an_ignored_option_is_a_usage_error_or_a_warning(inputs, weights_dir):
    refused = run("fix", inputs, "-U", "2", "--only-center-face", "--weights-dir", weights_dir)
    assert refused.exit_code == 2
    assert refused.stderr.strip().endswith(
        "error: --only-center-face does nothing without --gfpgan, --codeformer or --restorer: "
        "it chooses the faces restored"
    )
    assert not list(inputs.rglob("*.fixed.png"))
    warned = run("fix", inputs, "-U", "2", "--order", "restore-first", "--dry-run",
                 "--weights-dir", weights_dir)  # fmt: skip
    assert warned.exit_code == 0
    assert "warning: --order restore-first is ignored" in warned.stderr
