"""Find the input images: files and folders walked in sorted order, confirmed by signature."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

OUTPUT_SUFFIX = ".fixed.png"
# Leading bytes of each accepted format, keyed by the extensions `--ext` accepts.
SIGNATURES: dict[str, tuple[bytes, ...]] = {
    "png": (b"\x89PNG\r\n\x1a\n",),
    "jpg": (b"\xff\xd8\xff",),
    "jpeg": (b"\xff\xd8\xff",),
    "webp": (b"RIFF",),  # followed by size and b"WEBP" at offset 8, checked below
}
# Spellings of one type: asking for either means both.
ALIASES: dict[str, tuple[str, ...]] = {"jpg": ("jpg", "jpeg"), "jpeg": ("jpg", "jpeg")}


@dataclass(frozen=True)
class Job:
    source: Path
    output: Path


@dataclass(frozen=True)
class Rejected:
    """A path the user named (or a file found) that cannot be an input, with the reason."""

    path: Path
    reason: str


def output_path_for(source: Path, root: Path | None, output_dir: Path | None) -> Path:
    """`<stem>.fixed.png` beside the source, or under output_dir mirroring the path below root."""
    name = source.stem + OUTPUT_SUFFIX
    if output_dir is None:
        return source.with_name(name)
    relative = source.parent.relative_to(root) if root is not None else Path()
    return output_dir / relative / name


def has_signature(path: Path, extensions: Sequence[str]) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(12)
    for ext in extensions:
        for signature in SIGNATURES[ext]:
            if head.startswith(signature) and (ext != "webp" or head[8:12] == b"WEBP"):
                return True
    return False


def _wanted(name: str, extensions: Sequence[str]) -> bool:
    lower = name.lower()
    if lower.endswith(OUTPUT_SUFFIX):
        return False
    return any(lower.endswith("." + ext) for ext in extensions)


def _walk(folder: Path, recursive: bool) -> Iterable[Path]:
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue  # hidden files and folders (.thumbnails, .git, editor temp files)
        path = Path(entry.path)
        if entry.is_dir(follow_symlinks=False):
            if recursive:
                yield from _walk(path, recursive)
        elif entry.is_file():
            yield path


def discover(
    paths: Sequence[Path],
    *,
    recursive: bool = True,
    extensions: Sequence[str] = ("png",),
    output_dir: Path | None = None,
    skipped: list[Rejected] | None = None,
) -> tuple[list[Job], list[Rejected]]:
    """The jobs for every image under `paths`, and the named paths that are not usable inputs.

    Folders yield files by extension (case-insensitive) whose signature matches; a file named
    explicitly is rejected with a reason if it is missing or not an image of the accepted kinds.
    Each source appears once, even when named twice. Extensions have aliases (`jpg` means
    `.jpeg` too). Files found in folders that are images of a type not asked for are appended
    to `skipped` (when given), so the run can count and report them.
    """
    extensions = tuple(e.lower().lstrip(".") for e in extensions)
    extensions = tuple(dict.fromkeys(a for e in extensions for a in ALIASES.get(e, (e,))))
    unknown = [e for e in extensions if e not in SIGNATURES]
    if unknown:
        raise ValueError(
            f"unsupported extension(s): {', '.join(unknown)}; choose from png, jpg, webp"
        )
    jobs: list[Job] = []
    rejected: list[Rejected] = []
    seen: set[Path] = set()

    def add(source: Path, root: Path | None) -> None:
        key = source.resolve()
        if key not in seen:
            seen.add(key)
            jobs.append(Job(source, output_path_for(source, root, output_dir)))

    for path in paths:
        if path.is_dir():
            for found in _walk(path, recursive):
                if not _wanted(found.name, extensions):
                    other = found.suffix.lower().lstrip(".")
                    if (
                        skipped is not None
                        and other in SIGNATURES
                        and _wanted(found.name, (other,))
                    ):
                        skipped.append(Rejected(found, f".{other} is not in --ext"))
                    continue
                try:
                    if has_signature(found, extensions):
                        add(found, path)
                    else:
                        rejected.append(
                            Rejected(found, "not an image of that type (bad signature)")
                        )
                except OSError as exc:
                    rejected.append(Rejected(found, f"cannot read: {exc.strerror}"))
        elif path.is_file():
            if path.name.lower().endswith(OUTPUT_SUFFIX):
                rejected.append(Rejected(path, "is a facefix output (*.fixed.png)"))
                continue
            try:
                ok = has_signature(path, extensions)
            except OSError as exc:
                rejected.append(Rejected(path, f"cannot read: {exc.strerror}"))
                continue
            if ok:
                add(path, path.parent)
            else:
                kinds = "/".join(extensions).upper()
                rejected.append(Rejected(path, f"not a {kinds} file"))
        elif path.exists():
            rejected.append(Rejected(path, "not a regular file or folder"))
        else:
            rejected.append(Rejected(path, "no such file or folder"))
    return jobs, rejected
