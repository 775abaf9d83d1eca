"""Getting model weights onto disk: which files, in what order, with what notices.

* `download` fetches each file that is not present (or every one, with `force`), holding the
  file's lock (`store.file_lock`) so two processes never fetch one file at once: the second
  waits, then finds the file in place. One failed file does not stop the others.
* Each file's sources come from `sources.model_sources` (mirrors first), and `transfer.Fetcher`
  moves and verifies the bytes; a source that stops answering is dropped for the whole run.
* `ensure_weights` is what `fix` calls before touching an image: present files are trusted,
  missing ones downloaded unless offline, and a failure names the exact `facefix download`
  command that fetches what is missing.
* `resolve_names` and `download_command` map between command-line names and registry rows.
"""

from __future__ import annotations

import functools
import shlex
from collections.abc import Sequence
from pathlib import Path

from facefix_cli.errors import DownloadError, FacefixError, MissingWeightsError, SetupError
from facefix_cli.silent import Silent
from facefix_cli.weights import store
from facefix_cli.weights.progress import DownloadProgress
from facefix_cli.weights.registry import REGISTRY, ModelInfo, Registry
from facefix_cli.weights.sources import mirrors_from_env, model_sources
from facefix_cli.weights.transfer import Fetcher


def resolve_names(
    names: Sequence[str], *, all_models: bool = False, registry: Registry = REGISTRY
) -> list[ModelInfo]:
    """Rows of `registry` for command-line names (a short name or a file name, any case).

    No names: the default set. `all_models`: everything except non-commercial models, which
    are fetched only when named. Unknown names raise SetupError listing the known ones."""
    table = registry.models
    if names and all_models:
        raise SetupError("give model names or --all, not both")
    if all_models:
        return [m for m in table if not m.non_commercial]
    if not names:
        return [m for m in table if m.default]
    by_key: dict[str, ModelInfo] = {}
    for model in table:
        by_key[model.name.lower()] = model
        by_key[model.file.lower()] = model
    unknown = [n for n in names if n.lower() not in by_key]
    if unknown:
        known = ", ".join(m.name for m in table)
        plural = "s" if len(unknown) > 1 else ""
        raise SetupError(f"unknown model{plural} {', '.join(unknown)}; known models: {known}")
    chosen: list[ModelInfo] = []
    for name in names:
        model = by_key[name.lower()]
        if model not in chosen:
            chosen.append(model)
    return chosen


def download_command(
    models: Sequence[ModelInfo],
    weights_dir: Path,
    *,
    mirrors: Sequence[str] = (),
    force: bool = False,
) -> str:
    """The shell command that fetches exactly `models` into `weights_dir`."""
    words = ["facefix", "download", *(m.name for m in models)]
    words += ["--weights-dir", str(Path(weights_dir).absolute())]
    for mirror in mirrors:
        words += ["--mirror", mirror]
    if force:
        words.append("--force")
    return shlex.join(words)


def licence_notice(model: ModelInfo) -> str:
    return (
        f"note: {model.name} ({model.file}) is licensed under {model.licence}; "
        "you may not use it for commercial purposes"
    )


def download(
    models: Sequence[ModelInfo],
    weights_dir: Path,
    *,
    mirrors: Sequence[str] = (),
    force: bool = False,
    progress: DownloadProgress | None = None,
    timeout: float = 30.0,
    retries: int = 3,
    backoff: float = 1.0,
) -> list[Path]:
    """Fetch each model that is not present (or every one, with `force`) into `weights_dir`.

    Returns the paths of all `models`, in order. Raises DownloadError naming the files that
    could not be fetched from any source (the others are still fetched), and SetupError for a
    bad mirror or a weights folder that cannot be written (disk full, read-only, no access).
    `timeout` is seconds without data before a connection counts as stalled; `retries` is how
    many times one source is retried, waiting `backoff`, 2x`backoff`, ... in between. A source
    that refused or timed out is not tried again for the rest of the call."""
    progress = progress or Silent()
    weights_dir = Path(weights_dir)
    # Resolve every source first: a mistyped mirror folder should fail before any transfer.
    sources = {model.name: model_sources(model, mirrors) for model in models}
    store.make_weights_dir(weights_dir)
    fetcher = Fetcher(progress, timeout=timeout, retries=retries, backoff=backoff)
    paths: list[Path] = []
    failed: list[str] = []  # file names
    errors: list[str] = []
    for model in models:
        if model.non_commercial:
            progress.message(licence_notice(model))
        final = store.weights_path(model, weights_dir)
        paths.append(final)
        if not force and store.is_present(model, weights_dir):
            progress.message(f"{model.file}: already present in {weights_dir}")
            continue
        on_wait = functools.partial(
            progress.message, f"{model.file}: waiting for another facefix process fetching it"
        )
        with store.file_lock(store.lock_path(final), model, on_wait):
            if not force and store.is_present(model, weights_dir):
                progress.message(f"{model.file}: fetched by another facefix process meanwhile")
                continue
            if force:
                store.unlink_quietly(store.part_path(final))  # --force means from scratch
            try:
                fetcher.fetch(model, final, sources[model.name])
            except DownloadError as exc:
                failed.append(model.file)
                errors.append(str(exc))
    if failed:
        raise DownloadError("; ".join(errors), failed)
    return paths


def ensure_weights(
    models: Sequence[ModelInfo],
    weights_dir: Path,
    *,
    offline: bool,
    progress: DownloadProgress | None = None,
    mirrors: Sequence[str] = (),
    timeout: float = 30.0,
    retries: int = 3,
) -> None:
    """Make sure `fix` has every file it needs before it touches an image.

    Missing files are downloaded unless `offline`; when offline, or when the download fails,
    MissingWeightsError (exit 2) names the missing files and the `facefix download` command
    that fetches exactly them. No `mirrors` means those in $FACEFIX_MIRROR, if any.

    A file that exists is trusted whatever its size: no hashing or size check on every run,
    and a user may deliberately place a compatible checkpoint under the registry's name.
    `facefix models` and `facefix download --check` are where sizes and digests are checked."""
    weights_dir = Path(weights_dir)
    missing = [m for m in dict.fromkeys(models) if not store.weights_path(m, weights_dir).is_file()]
    if not missing:
        return
    explicit_mirrors = list(mirrors)
    if offline:
        command = download_command(missing, weights_dir, mirrors=explicit_mirrors)
        raise MissingWeightsError(
            [m.file for m in missing],
            command,
            reason=f"not in {weights_dir}; offline, not downloading",
        )
    try:
        download(
            missing,
            weights_dir,
            mirrors=explicit_mirrors or mirrors_from_env(),
            progress=progress,
            timeout=timeout,
            retries=retries,
        )
    except FacefixError as exc:
        still_missing = [m for m in missing if not store.is_present(m, weights_dir)] or missing
        command = download_command(still_missing, weights_dir, mirrors=explicit_mirrors)
        raise MissingWeightsError(
            [m.file for m in still_missing], command, reason=f"download failed: {exc}"
        ) from exc
