"""`facefix models --find DIR`: use the model files people already have. AUTOMATIC1111, Forge,
ComfyUI and their forks keep the same GFPGAN, CodeFormer, Real-ESRGAN, RetinaFace and ParseNet
releases, under their own folders and sometimes their own names (`models/GFPGAN`,
`models/Codeformer/codeformer-v0.1.0.pth`, `models/RealESRGAN`, `models/ESRGAN`,
`models/upscale_models`, `models/facerestore_models`, `models/facedetection`, ...).

`find_weights` walks the folders given (links to files are looked at, linked folders are not
followed), picks the files whose size is that of a missing registry file, and copies those
whose SHA-256 is the release's into the weights folder under the registry's name.

Guarantees: only files with the released bytes are taken (size, then SHA-256), whatever
their names; a file is copied, never linked (the weights folder stays facefix's own, even when
the models folder belongs to someone else); the copy appears whole under its final name or
not at all (a hidden temporary created with O_CREAT|O_EXCL|O_NOFOLLOW, then renamed); files
already present are left alone."""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from facefix_cli.weights import store
from facefix_cli.weights.registry import ModelInfo


@dataclass(frozen=True)
class Taken:
    model: ModelInfo
    source: Path  # where it was found
    path: Path  # where it is now, in the weights folder


def find_weights(
    roots: Sequence[Path],
    models: Sequence[ModelInfo],
    weights_dir: Path,
    *,
    looked_at: Callable[[Path], None] | None = None,
) -> list[Taken]:
    """Copy into `weights_dir` each of `models` missing there that a file under `roots` holds
    byte for byte; what was taken. `looked_at` hears of each candidate (a file of a wanted
    size) before it is copied and hashed."""
    wanted: dict[int, list[ModelInfo]] = {}
    for model in dict.fromkeys(models):
        if not store.is_present(model, weights_dir):
            wanted.setdefault(model.size, []).append(model)
    taken: list[Taken] = []
    if not wanted:
        return taken
    store.make_weights_dir(weights_dir)
    for root in roots:
        for folder, _dirs, files in os.walk(root):
            for name in sorted(files):
                path = Path(folder) / name
                try:
                    info = path.stat()  # a link to a file counts as that file
                except OSError:
                    continue
                if not stat.S_ISREG(info.st_mode) or info.st_size not in wanted:
                    continue
                if looked_at is not None:
                    looked_at(path)
                got = _copy_if_released(path, wanted[info.st_size], weights_dir)
                if got is not None:
                    model, final = got
                    taken.append(Taken(model, path, final))
                    wanted[info.st_size].remove(model)
                if not any(wanted.values()):
                    return taken
    return taken


def _copy_if_released(
    source: Path, candidates: list[ModelInfo], weights_dir: Path
) -> tuple[ModelInfo, Path] | None:
    """Copy `source` to a hidden temporary in `weights_dir`, hashing the bytes copied; put it
    in place as the candidate whose SHA-256 it has (hashing the copy, not the source, so a
    file changed meanwhile is never taken), else remove it."""
    temporary = weights_dir / f".{secrets.token_hex(8)}.find.tmp"
    hasher = hashlib.sha256()
    try:
        src = open(source, "rb")  # noqa: SIM115 - closed below, with the copy
    except OSError:
        return None
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "wb") as out:
            while chunk := src.read(1 << 20):
                hasher.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
    except OSError as exc:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise store.disk_error(exc, temporary, candidates[0]) from None
    finally:
        src.close()
    digest = hasher.hexdigest()
    model = next((m for m in candidates if m.sha256 == digest), None)
    if model is None:
        with contextlib.suppress(OSError):
            temporary.unlink()
        return None
    final = store.weights_path(model, weights_dir)
    store.install(temporary, final, model)
    return model, final
