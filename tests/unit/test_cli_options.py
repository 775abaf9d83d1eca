"""`cli.options`: the command line's values to a `Recipe` and `RunSettings`, without a run."""

from __future__ import annotations

import re
from enum import Enum
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


def test_restorer_file_takes_fidelity(tmp_path: Path) -> None:
    # README: `--fidelity` feeds --restorer models that take one (CodeFormer exports).
    warnings: list[str] = []
    recipe = recipe_from_options(restorer=tmp_path / "cf.onnx", fidelity=0.7, warnings=warnings)
    assert (recipe.restore_with, recipe.fidelity, warnings) == ("restorer", 0.7, [])


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
        ({"gfpgan": 0.5, "min_face": "tiny"}, "--min-face 'tiny'"),
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
    assert (
        recipe_from_options(gfpgan=0.5, min_face="64").min_face,
        recipe_from_options().min_face,
    ) == (64.0, 0.0)
    assert recipe_from_options(gfpgan=0.5, min_face="0.3x").min_face_share == 0.3


def test_order_and_face_choices() -> None:
    recipe = recipe_from_options(
        upscale=Upscale.x2,
        gfpgan=0.5,
        order=Order.restore_first,
        max_faces=2,
        face_threshold=0.5,
        detect_size=0,
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


# -- option interplay (issue #30, finding 4): every option that cannot apply says so ----------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"gfpgan": 0.8, "fidelity": 0.3},
            "--fidelity does nothing without --codeformer or --restorer",
        ),
        (
            {"codeformer": 0.5, "gfpgan_model": "1.3"},
            "--gfpgan-model does nothing without --gfpgan",
        ),
        ({"gfpgan": 0.8, "restore_strength": 0.5}, "--restore-strength does nothing without"),
        ({"gfpgan": 0.8, "upscale_strength": 0.3}, "--upscale-strength does nothing without"),
        ({"upscale": Upscale.x2, "only_center_face": True}, "--only-center-face does nothing"),
        ({"upscale": Upscale.x2, "max_faces": 2}, "--max-faces does nothing without --gfpgan"),
        ({"upscale": Upscale.x2, "min_face": "64"}, "--min-face does nothing without"),
        ({"upscale": Upscale.x2, "face_threshold": 0.5}, "--face-threshold does nothing"),
        ({"upscale": Upscale.x2, "detector": "retinaface_mobile0.25"}, "--detector does nothing"),
        ({"upscale": Upscale.x2, "detect_size": 512}, "--detect-size does nothing"),
        ({"gfpgan": 0.8, "min_face": "0.3"}, "--min-face 0.3: .* write 0.3x"),
    ],
)
def test_options_that_cannot_apply_are_usage_errors(options: dict, message: str) -> None:
    with pytest.raises(SetupError, match=message):
        recipe_from_options(**options)


@pytest.mark.parametrize(
    ("options", "warning"),
    [
        (
            {"gfpgan": 0.8, "only_center_face": True, "max_faces": 2},
            "--max-faces is ignored: --only-center-face restores one face",
        ),
        (
            {"gfpgan": 0.8, "tile": 256},
            "--tile is ignored: there is no upscale to split into tiles",
        ),
        (
            {"upscale": Upscale.x2, "order": Order.restore_first},
            "--order restore-first is ignored: it orders an upscale and a face restoration",
        ),
    ],
)
def test_options_that_are_ignored_warn_once(options: dict, warning: str) -> None:
    warnings: list[str] = []
    recipe_from_options(**options, warnings=warnings)
    assert warnings == [warning]


def test_options_that_apply_give_no_warning() -> None:
    warnings: list[str] = []
    recipe_from_options(
        upscale=Upscale.x2,
        upscale_strength=0.5,
        codeformer=0.5,
        fidelity=0.3,
        tile=256,
        min_face="0.3x",
        max_faces=2,
        order=Order.restore_first,
        warnings=warnings,
    )
    assert warnings == []


# -- README and --help say the same (issue #30, finding 10) --------------------------------------

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_rows(heading: str, cells: int) -> list[list[str]]:
    """The rows of `cells` columns of the tables under `heading` in the README."""
    text = README.read_text(encoding="utf-8").split(heading, 1)[1]
    text = re.split(r"\n##", text, maxsplit=1)[0]
    rows = []
    for line in text.splitlines():
        if not line.startswith("|") or line.startswith("|---"):
            continue
        row = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        if len(row) == cells:
            rows.append(row)
    return rows[1:] if rows and rows[0][0] in ("option",) else rows


def _shown(value: object) -> str:
    if isinstance(value, Enum):
        value = value.value
    return f"{value:g}" if isinstance(value, float) else str(value)


def test_the_readme_option_table_names_every_fix_option_with_its_default() -> None:
    import typer

    from facefix_cli.cli import app

    command = typer.main.get_command(app).commands["fix"]  # type: ignore[attr-defined]
    rows = readme_rows("### `facefix fix` options", 2)
    named = " ".join(row[0] for row in rows)
    mentioned = set(re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", named))
    options = [p for p in command.params if p.param_type_name == "option"]
    assert len(options) > 40
    for param in options:
        names = [n for n in param.opts + param.secondary_opts]
        assert any(n in mentioned for n in names if n.startswith("--")), names
        assert all(n in mentioned for n in names if not n.startswith("--")), names  # -U, -G
        default = param.default
        if default in (None, False, True, []) or callable(default):
            continue
        row = next(r for r in rows if any(n in r[0] for n in names if n.startswith("--")))
        assert f"default {_shown(default)}" in row[1], (names, _shown(default), row[1])
    cli_names = {n for p in options for n in p.opts + p.secondary_opts}
    assert mentioned - cli_names - {"-h", "--help"} == set()  # no option the CLI lacks


def test_the_readme_interplay_table_is_the_code_s() -> None:
    from facefix_cli.cli.options import INTERPLAY

    rows = readme_rows("### `facefix fix` options", 4)
    assert [tuple(cell.strip("`") for cell in row) for row in rows] == list(INTERPLAY)


def test_format_and_quality_are_run_settings_not_recipe(tmp_path: Path) -> None:
    settings = settings_from_options(weights_dir=tmp_path, output_format="webp", quality=70)
    assert (settings.output_format, settings.quality) == ("webp", 70)
    assert "format" not in Recipe.__dataclass_fields__
    assert settings_from_options(weights_dir=tmp_path).output_format == "png"
