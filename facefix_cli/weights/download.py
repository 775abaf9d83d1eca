"""Getting model weights onto disk: which files, in what order, with what notices.

* `download` fetches each file that is not present (or every one, with `force`), holding the
  file's lock (`store.file_lock`) so two processes never fetch one file at once: the second
  waits, then finds the file in place. One failed file does not stop the others.
* Each file's sources come from `sources.model_sources` (mirrors first), and `transfer.Fetcher`
  moves and verifies the bytes; a source that stops answering is dropped for the whole run.
* `ensure_weights` is what `fix` calls before touching an image: present files are trusted,
  missing ones downloaded (offline: copied from `--mirror` folders only), and a failure names
  each missing file and one next step that works there: offline or after a failed download,
  a mirror, a copied folder or `facefix models --find`; the exact `facefix download` command
  only where a network may be had. `check_weights` is a dry run's: the same checks, no copy.
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
from facefix_cli.weights.sources import Source, mirrors_from_env, model_sources
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
    offline: bool = False,
) -> list[Path]:
    """Fetch each model that is not present (or every one, with `force`) into `weights_dir`.

    Returns the paths of all `models`, in order. Raises DownloadError naming the files that
    could not be fetched from any source (the others are still fetched), and SetupError for a
    bad mirror or a weights folder that cannot be written (disk full, read-only, no access).
    `timeout` is seconds without data before a connection counts as stalled; `retries` is how
    many times one source is retried, waiting `backoff`, 2x`backoff`, ... in between. A source
    that refused or timed out is not tried again for the rest of the call. `offline`: only
    folders (mirrors given as folders or `file://` URLs) are read, never the network."""
    progress = progress or Silent()
    weights_dir = Path(weights_dir)
    # Resolve every source first: a mistyped mirror folder should fail before any transfer.
    sources = {model.name: local_first(model_sources(model, mirrors), offline) for model in models}
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
            if not sources[model.name]:
                failed.append(model.file)
                errors.append(f"could not download {model.file}: offline, and no mirror folder")
                continue
            try:
                fetcher.fetch(model, final, sources[model.name])
            except DownloadError as exc:
                failed.append(model.file)
                errors.append(str(exc))
    if failed:
        raise DownloadError("; ".join(errors), failed)
    return paths


def local_first(sources: list[Source], offline: bool) -> list[Source]:
    """`sources`, or offline only the local ones (folders: no network)."""
    return [s for s in sources if isinstance(s, Path)] if offline else sources


def missing_weights(models: Sequence[ModelInfo], weights_dir: Path) -> list[ModelInfo]:
    return [m for m in dict.fromkeys(models) if not store.weights_path(m, weights_dir).is_file()]


def next_step(missing: Sequence[ModelInfo], weights_dir: Path, *, network: bool) -> str:
    """What to do about `missing` files, where the user is: without a network (offline, or a
    download that failed) a mirror folder, a copy or `models --find`; with one, the command."""
    folder = Path(weights_dir).absolute()
    local = (
        "copy them there, pass --mirror DIR (a folder holding them), or take them from an "
        f"A1111, Forge or ComfyUI models folder: facefix models --find DIR --weights-dir {folder}"
    )
    if network:
        return f"{download_command(missing, weights_dir)}; or {local}"
    return local


def short_reason(exc: BaseException, limit: int = 160) -> str:
    """The first failure of a download, cut short: a host that cannot be reached fails the
    same way for every file and every source, and need not be said each time."""
    text = str(exc).split("; ")[0]
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_weights(
    models: Sequence[ModelInfo],
    weights_dir: Path,
    *,
    offline: bool,
    mirrors: Sequence[str] = (),
    progress: DownloadProgress | None = None,
) -> None:
    """What `ensure_weights` checks, fetching nothing (a dry run): MissingWeightsError when a
    missing file could not be had (offline without a mirror folder), SetupError for a bad
    mirror; else says what a real run would fetch."""
    weights_dir = Path(weights_dir)
    missing = missing_weights(models, weights_dir)
    if not missing:
        return
    given = list(mirrors) or mirrors_from_env()
    unreachable = [m for m in missing if not local_first(model_sources(m, given), offline)]
    if unreachable:
        raise MissingWeightsError(
            [m.file for m in unreachable],
            download_command(unreachable, weights_dir, mirrors=list(mirrors)),
            reason="offline, not downloading",
            where=str(weights_dir),
            next_step=next_step(unreachable, weights_dir, network=False),
        )
    (progress or Silent()).message(
        f"dry run: a real run would first fetch {', '.join(m.file for m in missing)} "
        f"into {weights_dir}"
    )


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
    missing = missing_weights(models, weights_dir)
    if not missing:
        return
    explicit_mirrors = list(mirrors)
    given = explicit_mirrors or mirrors_from_env()
    if offline and not any(local_first(model_sources(m, given), True) for m in missing):
        raise MissingWeightsError(
            [m.file for m in missing],
            download_command(missing, weights_dir, mirrors=explicit_mirrors),
            reason="offline, not downloading",
            where=str(weights_dir),
            next_step=next_step(missing, weights_dir, network=False),
        )
    try:
        download(
            missing,
            weights_dir,
            mirrors=given,
            progress=progress,
            timeout=timeout,
            retries=retries,
            offline=offline,
        )
    except FacefixError as exc:
        still_missing = [m for m in missing if not store.is_present(m, weights_dir)] or missing
        command = download_command(still_missing, weights_dir, mirrors=explicit_mirrors)
        raise MissingWeightsError(
            [m.file for m in still_missing],
            command,
            reason=f"offline; {short_reason(exc)}"
            if offline
            else f"download failed: {short_reason(exc)}",
            where=str(weights_dir),
            next_step=next_step(still_missing, weights_dir, network=False),
        ) from exc
