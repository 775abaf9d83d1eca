"""`facefix info`: the library entry point and the command."""

from __future__ import annotations

import io
import json
from pathlib import Path

import piexif
import piexif.helper
import pytest
from conftest import INVOKEAI_FIXTURES
from PIL import Image
from typer.testing import CliRunner

from facefix_cli.cli import app
from facefix_cli.cli.console.info import chunk_rows
from facefix_cli.io.pngchunks import itxt_chunk, parse_chunks, text_chunk, with_chunks
from facefix_cli.metadata import info, output_chunks, parse_generation
from facefix_cli.operations import Operation

FIXTURES = INVOKEAI_FIXTURES

PARAMETERS = (
    "a portrait [in brackets]\nNegative prompt: blurry\n"
    "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1234, Size: 64x48, Model: dreamshaper_8"
)
OPERATIONS = [
    Operation(type="esrgan", scale=2, strength=0.75, model="RealESRGAN_x2plus.pth"),
    Operation(type="gfpgan", strength=0.8, model="GFPGANv1.4.pth", version="1.4"),
]
RECORD = {
    "facefix_version": "0.1.0",
    "operations": [operation.to_json() for operation in OPERATIONS],
    "source": {"file": "a1111.png", "sha256": "ab" * 32},
}


def run(*args: str):
    # Wide enough that rich does not wrap the values the tests look for.
    return CliRunner(env={"COLUMNS": "200"}).invoke(app, ["info", *args])


def tiny_png(*chunks) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 3)).save(buffer, "PNG")
    return with_chunks(buffer.getvalue(), list(chunks))


@pytest.fixture
def images(tmp_path: Path) -> dict[str, Path]:
    a1111 = tmp_path / "a1111.png"
    a1111.write_bytes(tiny_png(text_chunk("parameters", PARAMETERS)))
    fixed = tmp_path / "a1111.fixed.png"
    fixed.write_bytes(
        tiny_png(*output_chunks(parse_chunks(a1111.read_bytes()), OPERATIONS, RECORD))
    )
    plain = tmp_path / "plain.png"
    plain.write_bytes(tiny_png())
    notes = tmp_path / "notes.png"
    notes.write_bytes(tiny_png(itxt_chunk("notes", "line one\nline two " + "y" * 5000)))
    broken = tmp_path / "broken.png"
    broken.write_bytes(a1111.read_bytes()[:60])
    return {"a1111": a1111, "fixed": fixed, "plain": plain, "notes": notes, "broken": broken}


def test_info_library_reads_each_file_and_reports_errors(images, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    paths = [images["a1111"], tmp_path / "missing.png", empty, images["broken"]]
    results = info(paths)
    assert [r.path for r in results] == paths
    assert results[0].record.seed == 1234 and results[0].error is None
    assert results[0].pixels == (4, 3)
    assert [r.error for r in results[1:]] == [
        "no such file",
        "no PNG, JPEG or WebP images in this folder",
        "truncated PNG (cut off in chunk tEXt)",
    ]


def test_info_of_a_folder_reads_the_images_below_it(images, tmp_path):
    """Finding 8 (#30): `info FOLDER` was refused ("is a folder, not an image")."""
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "x.png").write_bytes(images["plain"].read_bytes())
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "deep.png").write_bytes(images["plain"].read_bytes())
    (tmp_path / "readme.txt").write_text("not an image")
    names = [r.path.relative_to(tmp_path).as_posix() for r in info([tmp_path])]
    assert names == [
        "a1111.fixed.png",
        "a1111.png",
        "broken.png",
        "notes.png",
        "plain.png",
        "sub/deep.png",
    ]
    result = run(str(tmp_path / "sub"))
    assert result.exit_code == 0, result.output
    assert "deep.png" in result.output


def test_info_table_shows_the_settings(images):
    result = run(str(images["a1111"]))
    assert result.exit_code == 0, result.output
    for expected in (
        "AUTOMATIC1111",
        "a portrait [in brackets]",  # rich markup would eat the brackets
        "blurry",
        "1234",
        "Euler a",
        "64x48",
        "dreamshaper_8",
    ):
        assert expected in result.stdout


def test_info_on_a_fixed_file_shows_the_post_processing_history(images):
    result = run(str(images["fixed"]))
    assert result.exit_code == 0
    assert "Postprocess upscaler: R-ESRGAN 2x+" in result.stdout
    # `Operation.describe`: the words the report uses too
    assert "facefix 0.1.0: upscale x2: strength 0.75 (RealESRGAN_x2plus.pth)" in result.stdout
    assert "gfpgan 1.4: strength 0.8 (GFPGANv1.4.pth)" in result.stdout


def test_info_says_when_there_is_no_metadata(images):
    result = run(str(images["plain"]))
    assert result.exit_code == 0
    assert f"{images['plain']}: no generation metadata" in result.stdout


def test_info_missing_and_broken_files_exit_1_and_the_others_are_shown(images, tmp_path):
    missing = tmp_path / "missing.png"
    result = run(str(missing), str(images["a1111"]), str(images["broken"]))
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"error: {missing}: no such file",
        f"error: {images['broken']}: truncated PNG (cut off in chunk tEXt)",
    ]
    assert "dreamshaper_8" in result.stdout


def test_info_json(images, tmp_path):
    result = run("--json", str(images["fixed"]), str(images["plain"]), str(tmp_path / "gone.png"))
    assert result.exit_code == 1
    rows = json.loads(result.stdout)
    assert [Path(row["path"]).name for row in rows] == ["a1111.fixed.png", "plain.png", "gone.png"]
    assert rows[0]["format"] == "PNG"
    fixed = rows[0]["record"]
    assert (fixed["tool"], fixed["seed"], fixed["cfg"]) == ("AUTOMATIC1111", 1234, 7.0)
    assert fixed["facefix"] == [RECORD]
    assert fixed["postprocessing"][0]["GFPGAN visibility"] == "0.8"
    assert "raw" not in fixed and "chunks" not in rows[0]
    assert rows[1]["record"]["tool"] is None
    assert rows[2] == {"path": str(tmp_path / "gone.png"), "error": "no such file"}


def test_info_raw_lists_every_chunk(images):
    result = run("--raw", str(images["fixed"]))
    assert result.exit_code == 0
    for expected in ("IHDR", "parameters", "postprocessing", "facefix", "IDAT", "IEND", "4x3"):
        assert expected in result.stdout


def test_info_raw_json_has_whole_texts(images):
    result = run("--raw", "--json", str(images["notes"]))
    rows = json.loads(result.stdout)
    (notes,) = [c for c in rows[0]["chunks"] if c["keyword"] == "notes"]
    assert notes["text"] == "line one\nline two " + "y" * 5000
    assert notes["length"] == len(notes["text"]) + len("notes") + 5
    assert len(notes["preview"]) == 60 and "\\n" in notes["preview"]


def test_long_values_are_cut_in_the_table(images, tmp_path):
    long_prompt = tmp_path / "long.png"
    text = "word " * 2000 + "\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 1"
    long_prompt.write_bytes(tiny_png(text_chunk("parameters", text)))
    result = run(str(long_prompt))
    assert result.stdout.count("word") == 400  # the first 2000 characters
    words = " ".join(result.stdout.replace("│", " ").split())  # undo the table's wrapping
    assert "word… (7999 more characters; --json shows all)" in words


def test_info_on_jpeg_and_webp(tmp_path):
    comment = piexif.helper.UserComment.dump(PARAMETERS, encoding="unicode")
    exif = piexif.dump({"Exif": {piexif.ExifIFD.UserComment: comment}})
    paths = []
    for fmt, name in (("JPEG", "a.jpg"), ("WEBP", "b.webp")):
        paths.append(tmp_path / name)
        Image.new("RGB", (8, 8)).save(paths[-1], fmt, exif=exif)
    result = run("--raw", *map(str, paths))
    assert result.exit_code == 0
    assert result.stdout.count("dreamshaper_8") == 2
    title = "the JPEG's metadata as the PNG chunks `fix` writes"
    assert title in " ".join(result.stdout.split())  # rich may wrap the long title
    assert "eXIf" in result.stdout
    rows = json.loads(run("--json", *map(str, paths)).stdout)
    assert [(row["format"], row["record"]["seed"]) for row in rows] == [
        ("JPEG", 1234),
        ("WebP", 1234),
    ]


def test_chunk_rows_group_image_data():
    chunks = parse_chunks(tiny_png(text_chunk("Comment", "hi")))
    doubled = [*chunks[:-1], chunks[-2], chunks[-1]]  # two IDAT chunks
    rows = chunk_rows(doubled)
    assert [(r.type, r.count) for r in rows] == [("IHDR", 1), ("tEXt", 1), ("IDAT", 2), ("IEND", 1)]
    assert rows[2].length == 2 * len(chunks[-2].data)


def test_info_on_the_real_invokeai_files():
    paths = [str(p) for p in sorted(FIXTURES.glob("*.png"))]
    result = run(*paths)
    assert result.exit_code == 0, result.stderr
    assert "942491079" in result.stdout
    assert "pretty curly-haired redhead woman" in result.stdout
    assert "Lincoln-and-Parrot-512.png: no generation metadata" in result.stdout
    assert "dream_command: !fix" in result.stdout  # InvokeAI's own history in the gfpgan file
    rows = json.loads(run("--json", str(FIXTURES / "curly.png")).stdout)
    assert rows[0]["record"]["seed"] == 942491079
    assert rows[0]["record"]["sources"] == ["sd-metadata", "Dream"]


def test_info_raw_on_a_real_file_lists_dream_and_sd_metadata():
    result = run("--raw", str(FIXTURES / "curly.png"))
    assert "Dream" in result.stdout and "sd-metadata" in result.stdout
    record = parse_generation(parse_chunks((FIXTURES / "curly.png").read_bytes()))
    assert record.raw["Dream"].startswith('"pretty curly-haired redhead woman" -s 50')


def test_every_a1111_settings_key_is_kept_in_the_table_and_the_json(tmp_path):
    """Finding 8 (#30): `Model hash` without `Model:`, `Lora hashes`, VAE and other keys of
    the settings line were dropped, from the table and from --json."""
    parameters = (
        "a lighthouse\nNegative prompt: fog\nSteps: 30, Sampler: DPM++ 2M, Schedule type: Karras, "
        "CFG scale: 5, Seed: 7, Size: 64x48, Model hash: 45dee52b, VAE: sdxl_vae.safetensors, "
        'Lora hashes: "detail: 1a2b3c, style: 4d5e6f", Clip skip: 2, Version: v1.10.1'
    )
    path = tmp_path / "a.png"
    path.write_bytes(tiny_png(text_chunk("parameters", parameters)))
    (result,) = info([path])
    record = result.record
    assert (record.scheduler, record.vae) == ("Karras", "sdxl_vae.safetensors")
    assert record.settings == {
        "Model hash": "45dee52b",
        "Lora hashes": "detail: 1a2b3c, style: 4d5e6f",
        "Clip skip": "2",
    }
    shown = run(str(path))
    assert shown.exit_code == 0, shown.output
    for text in ("Karras", "45dee52b", "detail: 1a2b3c, style: 4d5e6f", "sdxl_vae", "Clip skip"):
        assert text in shown.output
    (entry,) = json.loads(run("--json", str(path)).output)
    assert entry["record"]["settings"]["Model hash"] == "45dee52b"
    assert entry["record"]["vae"] == "sdxl_vae.safetensors"


def test_the_pixel_size_is_shown_beside_the_generation_size(images):
    """Finding 8 (#30): `Size` showed the generation size (64x48) for an image of 4x3 pixels."""
    shown = run(str(images["fixed"]))
    assert "4x3 (generated at 64x48)" in shown.output
    (entry,) = json.loads(run("--json", str(images["fixed"])).output)
    assert entry["pixels"] == {"width": 4, "height": 3}
    assert entry["record"]["width"] == 64


def test_an_output_where_no_face_was_found_does_not_read_as_restored(tmp_path):
    """Finding 8 (#30): a restoration that found 0 faces read as a restoration."""
    operations = [Operation(type="gfpgan", strength=0.8, model="GFPGANv1.4.pth", faces=0)]
    record = {"facefix_version": "0.1.0", "operations": [o.to_json() for o in operations]}
    path = tmp_path / "x.fixed.png"
    path.write_bytes(tiny_png(*output_chunks([], operations, record)))
    (result,) = info([path])
    runs = dict(result.rows())["facefix runs"]
    assert "no face found" in runs and "restored" not in runs
    two = Operation(type="gfpgan", strength=0.8, faces=2, found=3).describe()
    assert two == "gfpgan: strength 0.8, 2 faces restored, 1 skipped of 3 found"
