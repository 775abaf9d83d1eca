"""facefix.toml and the weights folder: command line, then environment, then facefix.toml, then defaults.

facefix.toml holds where the weights are (`weights_dir`) and the output format (`format`,
`quality`), nothing else: what a run does to pixels is said on its command line (a cron line
shows it whole). Any other key is a SetupError that names the key, suggests the key meant
where one is close, and says where recipe options go, so a typo never falls back silently to
a default."""

from __future__ import annotations

import difflib
import os
import tomllib
from pathlib import Path

from platformdirs import user_cache_dir

from facefix_cli.errors import SetupError

CONFIG_NAME = "facefix.toml"
KEYS = ("weights_dir", "format", "quality")  # what facefix.toml may hold


def load_config(config_path: Path | None = None) -> tuple[dict, Path | None]:
    """The `[facefix]`-less flat table of facefix.toml and the file it came from.

    `config_path` must exist when given; otherwise ./facefix.toml is used if present.
    """
    if config_path is None:
        candidate = Path.cwd() / CONFIG_NAME
        if not candidate.is_file():
            return {}, None
        config_path = candidate
    try:
        with open(config_path, "rb") as fh:
            table = tomllib.load(fh)
    except FileNotFoundError:
        raise SetupError(f"config file not found: {config_path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SetupError(f"config file {config_path} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise SetupError(f"cannot read config file {config_path}: {exc.strerror}") from None
    check_keys(table, config_path)
    return table, config_path


def check_keys(table: dict, source: Path) -> None:
    """SetupError for the first key facefix.toml does not know."""
    for key in table:
        if key in KEYS:
            continue
        close = difflib.get_close_matches(key, KEYS, n=1, cutoff=0.7)
        hint = (
            f"did you mean {close[0]}?"
            if close
            else f"it holds only {', '.join(KEYS)}; options such as --"
            f"{key.replace('_', '-')} go on the command line"
        )
        raise SetupError(f"{source}: unknown key {key!r}; {hint}")


def resolve_output_format(
    cli_format: str | None, cli_quality: int | None, config_path: Path | None = None
) -> tuple[str, int | None]:
    """(--format, --quality): the command line's, else facefix.toml's `format` and `quality`,
    else png and each format's default quality. The values are checked by RunSettings."""
    config, source = (
        load_config(config_path) if cli_format is None or cli_quality is None else ({}, None)
    )
    output_format = cli_format if cli_format is not None else config.get("format", "png")
    quality = cli_quality if cli_quality is not None else config.get("quality")
    if not isinstance(output_format, str):
        raise SetupError(f'{source}: format must be a string such as "webp"')
    if quality is not None and (isinstance(quality, bool) or not isinstance(quality, int)):
        raise SetupError(f"{source}: quality must be a whole number from 1 to 100")
    return output_format.lower(), quality


def default_weights_dir() -> Path:
    # platformdirs honours XDG_CACHE_HOME on Linux.
    return Path(user_cache_dir("facefix", appauthor=False)) / "weights"


def resolve_weights_dir(cli_value: Path | None = None, config_path: Path | None = None) -> Path:
    """--weights-dir, else $FACEFIX_WEIGHTS_DIR, else facefix.toml's weights_dir, else the cache."""
    if cli_value is not None:
        return Path(cli_value).expanduser()
    env = os.environ.get("FACEFIX_WEIGHTS_DIR")
    if env:
        return Path(env).expanduser()
    config, source = load_config(config_path)
    value = config.get("weights_dir")
    if value:
        path = Path(str(value)).expanduser()
        # A relative path in a config file means relative to that file, not to the cwd.
        return path if path.is_absolute() or source is None else source.parent / path
    return default_weights_dir()
