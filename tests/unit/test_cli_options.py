"""`cli.options`: the command line's values to a `Recipe` and `RunSettings`, without a run."""

from __future__ import annotations

from pathlib import Path

import pytest

from facefix_cli.cli.options import (
    Order,
    Precision,
    Upscale,
    parse_duration,
    recipe_from_options,
    settings_from_options,
)
from facefix_cli.errors import SetupError
from facefix_cli.recipe import Recipe


def test_no_options_is_the_default_recipe() -> None:
    assert recipe_from_options() == Recipe()


def test_gfpgan_strength_and_upscale() -> None:
    recipe = recipe_from_options(upscale=Upscale.x2, gfpgan=0.8, gfpgan_model="1.3")
    assert (recipe.scale, recipe.restore_with, recipe.restore_strength) == (2, "gfpgan", 0.8)
    assert recipe.gfpgan_version == "1.3"


def test_codeformer_keeps_its_fidelity() -> None:
    recipe = recipe_from_options(codeformer=0.5, fidelity=0.3)
    assert (recipe.restore_with, recipe.restore_strength, recipe.fidelity) == (
        "codeformer",
        0.5,
        0.3,
    )


def test_restorer_file_takes_restore_strength(tmp_path: Path) -> None:
    model = tmp_path / "face.pth"
    recipe = recipe_from_options(restorer=model, restore_strength=0.6)
    assert (recipe.restore_with, recipe.restore_strength, recipe.restorer_path) == (
        "restorer",
        0.6,
        model,
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"gfpgan": 0.5, "codeformer": 0.5}, "mutually exclusive"),
        ({"gfpgan": 0.5, "restorer": Path("x.pth")}, "--restorer and --gfpgan"),
        ({"codeformer": 0.5, "restorer": Path("x.pth")}, "--restorer and --codeformer"),
        ({"half": True, "precision": Precision.bf16}, "--half means --precision fp16"),
        ({"min_face": "tiny"}, "--min-face 'tiny'"),
    ],
)
def test_contradictions_are_setup_errors(options: dict, message: str) -> None:
    with pytest.raises(SetupError, match=message):
        recipe_from_options(**options)


def test_half_is_fp16() -> None:
    assert recipe_from_options(half=True).precision == "fp16"
    assert recipe_from_options(half=True, precision="fp16").precision == "fp16"
    assert recipe_from_options(precision=Precision.bf16).precision == "bf16"


def test_min_face_pixels_or_share() -> None:
    assert (recipe_from_options(min_face="64").min_face, recipe_from_options().min_face) == (
        64.0,
        0.0,
    )
    assert recipe_from_options(min_face="0.3x").min_face_share == 0.3


def test_order_and_face_choices() -> None:
    recipe = recipe_from_options(
        order=Order.restore_first, max_faces=2, face_threshold=0.5, detect_size=0
    )
    assert (recipe.order, recipe.max_faces, recipe.face_threshold, recipe.detect_size) == (
        "restore-first",
        2,
        0.5,
        0,
    )


def test_settings_from_options(tmp_path: Path) -> None:
    settings = settings_from_options(
        weights_dir=tmp_path, ext=" png, jpg ,", mirror=["a", "b"], max_time="15m", ray=True
    )
    assert settings.extensions == ("png", "jpg")
    assert settings.mirrors == ("a", "b")
    assert settings.ray_address == "local"
    assert settings.time_limit is not None and settings.time_limit.seconds == 900
    assert settings.time_limit.text == "--max-time 15m"


def test_ray_address_wins_over_plain_ray(tmp_path: Path) -> None:
    assert settings_from_options(weights_dir=tmp_path).ray_address is None
    assert settings_from_options(weights_dir=tmp_path, ray_address="auto").ray_address == "auto"


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90), ("90s", 90), ("15m", 900), ("2h", 7200), ("1.5h", 5400)]
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "0", "-5", "-5m", "10d", "soon"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(SetupError, match="--max-time"):
        parse_duration(text)


def test_format_and_quality_are_run_settings_not_recipe(tmp_path: Path) -> None:
    settings = settings_from_options(weights_dir=tmp_path, output_format="webp", quality=70)
    assert (settings.output_format, settings.quality) == ("webp", 70)
    assert "format" not in Recipe.__dataclass_fields__
    assert settings_from_options(weights_dir=tmp_path).output_format == "png"
