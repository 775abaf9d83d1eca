"""Where the weights folder comes from: option, environment, facefix.toml, default."""

from __future__ import annotations

from pathlib import Path

import pytest

from facefix_cli.config import default_weights_dir, resolve_weights_dir
from facefix_cli.errors import SetupError


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("FACEFIX_WEIGHTS_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)


def test_default_is_the_user_cache(tmp_path):
    assert (
        resolve_weights_dir() == default_weights_dir() == tmp_path / "cache" / "facefix" / "weights"
    )


def test_order_option_then_environment_then_config(tmp_path, monkeypatch):
    (tmp_path / "facefix.toml").write_text('weights_dir = "models"\n')
    assert resolve_weights_dir() == tmp_path / "models"  # relative to the file
    monkeypatch.setenv("FACEFIX_WEIGHTS_DIR", "/srv/env-weights")
    assert resolve_weights_dir() == Path("/srv/env-weights")
    assert resolve_weights_dir(Path("/opt/cli")) == Path("/opt/cli")


def test_explicit_config_path_resolves_relative_to_itself(tmp_path):
    folder = tmp_path / "etc"
    folder.mkdir()
    (folder / "custom.toml").write_text('weights_dir = "w"\n')
    assert resolve_weights_dir(config_path=folder / "custom.toml") == folder / "w"


def test_bad_config_files_are_setup_errors(tmp_path):
    with pytest.raises(SetupError, match="config file not found"):
        resolve_weights_dir(config_path=tmp_path / "missing.toml")
    (tmp_path / "facefix.toml").write_text("weights_dir = [unclosed\n")
    with pytest.raises(SetupError, match="not valid TOML"):
        resolve_weights_dir()


def test_the_repo_config_points_at_weights():
    repo = Path(__file__).resolve().parents[2]
    assert resolve_weights_dir(config_path=repo / "facefix.toml") == repo / "weights"


def test_unknown_keys_are_refused_with_a_suggestion(tmp_path):
    (tmp_path / "facefix.toml").write_text('weigths_dir = "models"\n')
    with pytest.raises(SetupError, match="unknown key 'weigths_dir'; did you mean weights_dir"):
        resolve_weights_dir()


def test_recipe_keys_are_refused_saying_where_they_go(tmp_path):
    (tmp_path / "facefix.toml").write_text('weights_dir = "w"\nupscale = 2\n')
    with pytest.raises(
        SetupError,
        match="unknown key 'upscale'; it holds only weights_dir, format, quality; "
        "options such as --upscale go on the command line",
    ):
        resolve_weights_dir()


def test_output_format_from_the_command_line_then_config(tmp_path):
    from facefix_cli.config import resolve_output_format

    assert resolve_output_format(None, None) == ("png", None)  # no facefix.toml
    (tmp_path / "facefix.toml").write_text('format = "WebP"\nquality = 80\n')
    assert resolve_output_format(None, None) == ("webp", 80)
    assert resolve_output_format("jpeg", None) == ("jpeg", 80)
    assert resolve_output_format("avif", 50) == ("avif", 50)
    (tmp_path / "facefix.toml").write_text('quality = "high"\n')
    with pytest.raises(SetupError, match="quality must be a whole number"):
        resolve_output_format(None, None)
