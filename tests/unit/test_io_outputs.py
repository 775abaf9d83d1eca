"""The output-format table: suffixes, names per format, `same`, qualities, availability."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from facefix_cli.io.names import claim_path, output_name, temporary_path
from facefix_cli.io.outputs import (
    OUTPUT_SUFFIXES,
    OutputFormat,
    check_quality,
    is_output_name,
    output_suffix_of,
)


def test_every_format_has_its_suffix():
    assert [f.suffix for f in OutputFormat] == [
        ".fixed.png",
        ".fixed.webp",
        ".fixed.webp",  # lossless WebP: the same name, so either counts as done
        ".fixed.jpg",
        ".fixed.avif",
    ]
    assert set(OUTPUT_SUFFIXES) >= {f.suffix for f in OutputFormat}


@pytest.mark.parametrize(
    ("source", "fmt", "expected"),
    [
        ("a.png", OutputFormat.PNG, "a.fixed.png"),
        ("a.PNG", OutputFormat.WEBP, "a.fixed.webp"),
        ("a.png", OutputFormat.JPEG, "a.fixed.jpg"),
        ("a.png", OutputFormat.AVIF, "a.fixed.avif"),
        ("a.jpg", OutputFormat.PNG, "a.jpg.fixed.png"),
        ("a.jpg", OutputFormat.WEBP, "a.jpg.fixed.webp"),
        ("a.webp", OutputFormat.WEBP, "a.webp.fixed.webp"),
        ("a.jpeg", OutputFormat.JPEG, "a.jpeg.fixed.jpg"),
    ],
)
def test_output_names_keep_todays_rule_with_the_formats_suffix(source, fmt, expected):
    assert output_name(source, fmt.suffix) == expected


def test_png_names_are_todays():
    assert output_name("a.png") == "a.fixed.png"
    assert output_name("a.jpg") == "a.jpg.fixed.png"


def test_names_of_one_folder_never_meet_across_formats():
    sources = ["a.png", "a.jpg", "a.webp", "a.jpeg"]
    for fmt in OutputFormat:
        names = [output_name(s, fmt.suffix) for s in sources]
        assert len(set(names)) == len(names)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("x.png", OutputFormat.PNG),
        ("x.JPG", OutputFormat.JPEG),
        ("x.jpeg", OutputFormat.JPEG),
        ("x.webp", OutputFormat.WEBP),
    ],
)
def test_same_is_the_inputs_own_format(source, expected):
    assert OutputFormat.for_source("same", source) is expected
    assert OutputFormat.for_source("webp", source) is OutputFormat.WEBP


def test_outputs_of_every_format_are_recognised():
    for name in ("a.fixed.png", "b.jpg.fixed.WEBP", "c.fixed.jpg", "d.fixed.avif", "e.fixed.jpeg"):
        assert is_output_name(name)
    for name in ("a.png", "fixed.png", "a.fixed.gif", "a.fixedpng"):
        assert not is_output_name(name)
    assert output_suffix_of("b.jpg.fixed.WEBP") == ".fixed.WEBP"
    assert output_suffix_of("a.png") is None


def test_hidden_names_of_long_outputs_keep_their_format():
    long_stem = "x" * 240
    suffixes = dict.fromkeys(f.suffix for f in OutputFormat)
    outputs = [Path("/f") / output_name(long_stem + ".png", suffix) for suffix in suffixes]
    hidden = [claim_path(o).name for o in outputs] + [temporary_path(o, 1).name for o in outputs]
    assert all(len(os.fsencode(name)) <= 255 for name in hidden)
    assert len(set(hidden)) == len(hidden)
    assert claim_path(outputs[1]).name.endswith(".fixed.webp.claim")


def test_qualities():
    assert OutputFormat.PNG.quality(50) is None  # lossless: no quality
    assert OutputFormat.WEBP.quality(None) == 90
    assert OutputFormat.JPEG.quality(None) == 95
    assert OutputFormat.AVIF.quality(70) == 70
    assert OutputFormat.WEBP_LOSSLESS.quality(70) is None
    assert check_quality(None) is None and check_quality(1) is None and check_quality(100) is None
    assert "1 to 100" in (check_quality(0) or "") and check_quality(101)


def test_availability_follows_pillow(monkeypatch):
    from PIL import features

    assert OutputFormat.PNG.available()
    assert OutputFormat.WEBP.available() == features.check("webp")
    monkeypatch.setattr(features, "check", lambda name: False)
    assert not OutputFormat.AVIF.available()
    assert OutputFormat.PNG.available()


def test_run_settings_refuse_bad_format_choices(monkeypatch, tmp_path):
    from PIL import features

    from facefix_cli.errors import SetupError
    from facefix_cli.pipeline.settings import RunSettings

    RunSettings(tmp_path, output_format="webp", quality=80).validate()
    with pytest.raises(SetupError, match="--quality must be 1 to 100"):
        RunSettings(tmp_path, output_format="webp", quality=0).validate()
    with pytest.raises(SetupError, match="--format must be one of"):
        RunSettings(tmp_path, output_format="gif").validate()  # type: ignore[arg-type]
    monkeypatch.setattr(features, "check", lambda name: name != "avif")
    with pytest.raises(SetupError, match="--format avif: this Pillow cannot encode it"):
        RunSettings(tmp_path, output_format="avif").validate()
    rows = dict(RunSettings(tmp_path, output_format="webp", quality=80).rows())
    assert rows["format"] == "webp" and rows["quality"] == "80"
    assert "format" not in dict(RunSettings(tmp_path).rows())
