"""Find the input images: files and folders walked in sorted order, confirmed by signature.

Guarantees: the walk never raises for one entry (a symlink loop, an unreadable folder, a name
too long): each becomes a `Rejected` with its reason and the walk goes on; no two jobs share an
output (the naming rule is in `io.names`; a collision left over is rejected, never overwritten).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from facefix_cli.io.formats import EXTENSIONS, HEAD_SIZE, sniff
from facefix_cli.io.names import OUTPUT_SUFFIX, display_path, output_name

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
    """The output beside the source (see `io.names.output_name`), or under output_dir mirroring
    the path below root."""
    name = output_name(source.name)
    if output_dir is None:
        return source.with_name(name)
    relative = source.parent.relative_to(root) if root is not None else Path()
    return output_dir / relative / name


def has_signature(path: Path, extensions: Sequence[str]) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(HEAD_SIZE)
    return sniff(head) in {EXTENSIONS[ext] for ext in extensions}


def _wanted(name: str, extensions: Sequence[str]) -> bool:
    lower = name.lower()
    if lower.endswith(OUTPUT_SUFFIX):
        return False
    return any(lower.endswith("." + ext) for ext in extensions)


def _walk(folder: Path, recursive: bool, problems: list[Rejected]) -> Iterable[Path]:
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        problems.append(Rejected(folder, f"cannot read folder: {exc.strerror or exc}"))
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue  # hidden files and folders (.thumbnails, .git, editor temp files)
        path = Path(entry.path)
        try:
            if entry.is_dir(follow_symlinks=False):
                if recursive:
                    yield from _walk(path, recursive, problems)
            elif entry.is_file():
                yield path
        except OSError as exc:  # a symlink loop (ELOOP), a name too long, a vanished entry
            problems.append(Rejected(path, f"cannot read: {exc.strerror or exc}"))


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
    unknown = [e for e in extensions if e not in EXTENSIONS]
    if unknown:
        raise ValueError(
            f"unsupported extension(s): {', '.join(unknown)}; choose from png, jpg, webp"
        )
    jobs: list[Job] = []
    rejected: list[Rejected] = []
    seen: set[Path] = set()
    outputs: dict[Path, Path] = {}
    roots = _root_names(paths) if output_dir is not None else {}

    def add(source: Path, root: Path | None) -> None:
        key = source.resolve()
        if key in seen:
            return
        seen.add(key)
        base = output_dir / roots[root] if root in roots and output_dir is not None else output_dir
        output = output_path_for(source, root, base)
        taken = outputs.get(output)
        if taken is not None:
            rejected.append(
                Rejected(
                    source,
                    f"its output {display_path(output)} is already {display_path(taken)}'s output",
                )
            )
            return
        outputs[output] = source
        jobs.append(Job(source, output))

    for path in paths:
        try:
            kind = "dir" if path.is_dir() else "file" if path.is_file() else ""
            exists = bool(kind) or path.exists()
        except OSError as exc:
            rejected.append(Rejected(path, f"cannot read: {exc.strerror or exc}"))
            continue
        if kind == "dir":
            for found in _walk(path, recursive, rejected):
                if not _wanted(found.name, extensions):
                    other = found.suffix.lower().lstrip(".")
                    if (
                        skipped is not None
                        and other in EXTENSIONS
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
                    rejected.append(Rejected(found, f"cannot read: {exc.strerror or exc}"))
        elif kind == "file":
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
        elif exists:
            rejected.append(Rejected(path, "not a regular file or folder"))
        else:
            rejected.append(Rejected(path, "no such file or folder"))
    return jobs, rejected


def _root_names(paths: Sequence[Path]) -> dict[Path, Path]:
    """With several folders and one --output-dir, each folder named on the command line gets
    its own sub-folder of the output tree, named after it (`a/renders` -> `OUT/renders`), so
    equal file names under different folders never meet. One folder mirrors into OUT itself;
    files named directly go to OUT itself. Empty when there are not several folders."""
    names: dict[Path, Path] = {}
    for path in paths:
        try:
            if path.is_dir() and path not in names:
                names[path] = Path(path.resolve().name or "root")
        except OSError:
            continue
    return names if len(names) > 1 else {}
