"""Find the input images: files and folders walked in sorted order, confirmed by signature.

Walk first, pay later: `scan` decides from folder listings which files are done already (their
output exists) without opening them, and reads the signature only of files that will be
worked on; the walk costs one `scandir` per folder and nothing per done file (given the run's
recipe: one read of the folder's ledger where it has one, and a stat per done output that the
ledger says another recipe made, so the reason can say so: `io.ledger`). Symlinked folders
are walked, each real folder (device, inode) once.

Links are followed under `safefs.link_trusted` (Linux's fs.protected_symlinks for the whole
walk): a symlinked file or folder whose link belongs to another user than the one running, root
or its target's owner is not followed, and comes out as NOT_FOLLOWED with `LINK_REASON`. Only
links cost a system call more (their lstat). A job carries the inode the walk saw and its
folder's (device, inode), so the file read and the folder written are checked to be those.

Guarantees: the walk never raises for one entry (a symlink loop, an unreadable folder, a name
too long): each becomes a `Rejected` with its reason and the walk goes on; no two jobs share an
output (the naming rule is in `io.names`; a collision left over is rejected, never overwritten).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from operator import attrgetter
from pathlib import Path
from typing import NamedTuple

from facefix_cli.io import ledger, marks
from facefix_cli.io.formats import EXTENSIONS, HEAD_SIZE, ImageFormat, sniff
from facefix_cli.io.names import display_path, output_name
from facefix_cli.io.outputs import OUTPUT_SUFFIXES, FormatChoice, OutputFormat
from facefix_cli.io.safefs import READ_FLAGS, UntrustedLink, check_link, entry_link_trusted

# Spellings of one type: asking for either means both.
ALIASES: dict[str, tuple[str, ...]] = {"jpg": ("jpg", "jpeg"), "jpeg": ("jpg", "jpeg")}


@dataclass(frozen=True)
class Job:
    source: Path
    output: Path
    format: OutputFormat = OutputFormat.PNG  # the output's
    # What the walk saw, where it saw it (None: not checked): the source's inode, and the
    # (st_dev, st_ino) of its folder. A file or folder swapped for another since is refused.
    inode: int | None = None
    folder: tuple[int, int] | None = None
    # Replace the output even without --overwrite: `facefix watch` redoing an output it wrote
    # itself, whose input its tool rewrote just after saving it (pipeline.watch).
    replace: bool = False


@dataclass(frozen=True)
class Rejected:
    """A path the user named (or a file found) that cannot be an input, with the reason."""

    path: Path
    reason: str


def output_path_for(
    source: Path,
    root: Path | None,
    output_dir: Path | None,
    output_format: OutputFormat = OutputFormat.PNG,
) -> Path:
    """The output beside the source (see `io.names.output_name`), or under output_dir mirroring
    the path below root."""
    name = output_name(source.name, output_format.suffix)
    if output_dir is None:
        return source.with_name(name)
    relative = source.parent.relative_to(root) if root is not None else Path()
    return output_dir / relative / name


def has_signature(path: Path, extensions: Sequence[str]) -> bool:
    return _has_format(str(path), {EXTENSIONS[ext] for ext in extensions})


def _has_format(path: str, formats: set[ImageFormat]) -> bool:
    # Non-blocking: a FIFO swapped in since the listing reads as empty instead of hanging.
    with os.fdopen(os.open(path, READ_FLAGS), "rb") as fh:
        head = fh.read(HEAD_SIZE) or b""
    return sniff(head) in formats


class Kind(StrEnum):
    """What the walk decided about one file, before any of it is read."""

    TODO = "todo"  # an input of the kinds asked for whose output is not there (or --overwrite)
    DONE = "done"  # its output exists: nothing opened, nothing read
    OTHER_TYPE = "other type"  # an image of a type --ext did not ask for
    REMEMBERED = "remembered"  # an earlier run's mark says skip it (no face, failed): io.marks
    REJECTED = "rejected"  # cannot be an input: the reason says why
    NOT_FOLLOWED = "not followed"  # a link the trust rule refuses (LINK_REASON): skipped


class Found(NamedTuple):  # a tuple: one is made per file of the tree, done or not
    kind: Kind
    source: Path
    output: Path | None = None
    reason: str = ""
    folder: str = ""  # the output's folder as a string, for TODO and DONE (the claim sweep's)
    # that folder's hidden names as the walk listed them (None: not listed), so the claim sweep
    # need not list it again; one set per folder, shared by its files
    hidden: frozenset[str] | None = None
    output_format: OutputFormat = OutputFormat.PNG
    inode: int | None = None  # for TODO: the source's inode as the walk saw it
    folder_id: tuple[int, int] | None = None  # for TODO: its folder's (st_dev, st_ino)
    failures: int = 0  # runs in a row that failed on it (io.marks), for TODO and REJECTED

    @property
    def job(self) -> Job:
        assert self.output is not None
        return Job(self.source, self.output, self.output_format, self.inode, self.folder_id)


DONE_REASON = "output exists (use --overwrite)"


def made_with_reason(how: str) -> str:
    """DONE_REASON for an output the ledger says another recipe made (`io.ledger`), `how` as
    `ledger.differences` says it."""
    return f"output exists, {how} (use --overwrite)"


FACELESS_REASON = "no face found by an earlier run (use --overwrite to look again)"


def set_aside_reason(count: int) -> str:
    return f"failed {count} runs in a row, set aside (use --retry-failed)"


LINK_REASON = "a link owned by another user, to what that user does not own (not followed)"


class _Folder:
    """One folder's listing, read once: names, which of them are symlinks, and the hidden ones
    (temporary files and claims, for the claim sweep)."""

    __slots__ = ("names", "links", "hidden", "identity")

    def __init__(
        self, entries: Iterable[os.DirEntry[str]], identity: tuple[int, int] | None = None
    ) -> None:
        self.identity = identity  # the folder's (st_dev, st_ino) where the walk stat'ed it
        self.names: set[str] = set()
        self.links: set[str] = set()
        hidden: list[str] = []
        for entry in entries:
            name = entry.name
            self.names.add(name)
            if entry.is_symlink():
                self.links.add(name)
            if name.startswith("."):
                hidden.append(name)
        self.hidden = frozenset(hidden)


def _output_exists(folder: _Folder | None, name: str, output: Path) -> bool:
    """As `output.exists()`, from the output folder's listing where there is one: a name
    listed is there (a symlink is followed); a name not listed is stat'ed anyway, so a name
    too long or an unreadable folder raises its OSError as before."""
    if folder is not None and name in folder.names and name not in folder.links:
        return True
    try:
        os.stat(output)
    except (FileNotFoundError, NotADirectoryError):
        return False
    return True


class _Walker:
    """The files under the paths given, in sorted order, each real folder walked once."""

    def __init__(
        self,
        recursive: bool,
        problems: Callable[[Rejected], None],
        untrusted: Callable[[Path], None],
    ) -> None:
        self.recursive = recursive
        self.problem = problems
        self.untrusted = untrusted
        self.seen_folders: set[tuple[int, int]] = set()
        self.last_key: tuple[int, int] | None = None  # of the folder `first_visit` stat'ed last

    def first_visit(self, folder: str) -> bool:
        """True the first time a real folder is reached (by any path: a symlink, twice named)."""
        info = os.stat(folder)
        key = self.last_key = (info.st_dev, info.st_ino)
        if key in self.seen_folders:
            return False
        self.seen_folders.add(key)
        return True

    def walk(
        self, folder: str, identity: tuple[int, int] | None = None
    ) -> Iterator[tuple[str, list[os.DirEntry[str]], _Folder]]:
        """(folder, entries of files, folder listing) for every file below `folder`, in runs:
        the files of one folder between two of its sub-folders come as one run, so the walk's
        order is the sorted one and its cost per file is small. Links the trust rule refuses
        go to `untrusted`, unfollowed."""
        try:
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=_entry_name)
        except OSError as exc:
            self.problem(Rejected(Path(folder), f"cannot read folder: {exc.strerror or exc}"))
            return
        listed = _Folder(entries, identity)
        run: list[os.DirEntry[str]] = []
        for entry in entries:
            name = entry.name
            if name.startswith("."):
                continue  # hidden files and folders (.thumbnails, .git, editor temp files)
            try:
                if entry.is_symlink() and not entry_link_trusted(entry)[0]:
                    if entry.is_dir() or entry.is_file():
                        if run:
                            yield folder, run, listed
                            run = []
                        self.untrusted(Path(entry.path))
                    continue
                if entry.is_dir():  # a symlinked folder too: walked once, by its real folder
                    if self.recursive and self.first_visit(entry.path):
                        if run:
                            yield folder, run, listed
                            run = []
                        yield from self.walk(entry.path, self.last_key)
                elif entry.is_file():
                    run.append(entry)
            except OSError as exc:  # a symlink loop (ELOOP), a name too long, a vanished entry
                if run:
                    yield folder, run, listed
                    run = []
                self.problem(Rejected(Path(entry.path), f"cannot read: {exc.strerror or exc}"))
        if run:
            yield folder, run, listed


_entry_name = attrgetter("name")


def normalise_extensions(extensions: Sequence[str]) -> tuple[str, ...]:
    """`--ext`'s spellings with their aliases; ValueError for a type facefix does not read."""
    extensions = tuple(e.lower().lstrip(".") for e in extensions)
    extensions = tuple(dict.fromkeys(a for e in extensions for a in ALIASES.get(e, (e,))))
    unknown = [e for e in extensions if e not in EXTENSIONS]
    if unknown:
        raise ValueError(
            f"unsupported extension(s): {', '.join(unknown)}; choose from png, jpg, webp"
        )
    return extensions


def scan(
    paths: Sequence[Path],
    *,
    recursive: bool = True,
    extensions: Sequence[str] = ("png",),
    output_dir: Path | None = None,
    overwrite: bool = False,
    check_outputs: bool = True,
    skip_faceless: bool = False,
    retry_failed: bool = False,
    output_format: FormatChoice = "png",
    recipe: ledger.RecipeTag | None = None,
) -> Iterator[Found]:
    """What to do with every file under `paths`, in walk order, deciding before paying: a file
    found in a folder whose output exists is DONE from the folder listing alone (its input is
    never opened); only files that will be worked on have their signature read. Given the
    run's `recipe`, a DONE file whose folder's ledger says another recipe made its output
    says which in its reason (`io.ledger`: one read per such folder, a stat per such file). Files named
    explicitly are checked as `discover` describes. Symlinked folders are walked, each real
    folder (device, inode) once, so loops and two links to one folder are safe.

    An input without output whose marks (`io.marks`, from the same listing) say an earlier
    run failed on it `FAIL_LIMIT` times is REMEMBERED (unless `retry_failed`), as is one with
    no face when `skip_faceless` (restoration alone). With `overwrite` or without
    `check_outputs` no file is DONE or REMEMBERED. A file is done when its output in
    `output_format` exists (`same`: its own format), so a run in another format redoes it.
    Outputs of every format are never inputs. ValueError for an extension facefix does not
    read, before anything is walked."""
    extensions = normalise_extensions(extensions)
    formats = {EXTENSIONS[ext] for ext in extensions}
    look = check_outputs and not overwrite
    sources: set[str] = set()  # real paths: each source once, however reached
    outputs: dict[tuple[str, str], Path] = {}  # (output folder, name) -> the source that has it
    suffixes = tuple("." + ext for ext in extensions)
    roots = _root_names(paths) if output_dir is not None else {}
    pending: list[Found] = []  # what the walk rejected, reported in order
    ledgers: dict[str, ledger.Ledger | None] = {}  # by output folder, read at its first DONE
    walker = _Walker(
        recursive,
        lambda r: pending.append(Found(Kind.REJECTED, r.path, None, r.reason)),
        lambda p: pending.append(Found(Kind.NOT_FOLLOWED, p, None, LINK_REASON)),
    )

    def listing(folder: Path) -> _Folder | None:
        try:
            with os.scandir(folder) as entries:
                return _Folder(entries)
        except OSError:
            return None  # absent or unreadable: each output is stat'ed

    def decide(
        source: Path,
        source_name: str,
        real: str,
        out_folder: Path,
        out_key: str,
        out_listing: _Folder | None,
        sniffed: bool,
        inode: int | None = None,
        folder_id: tuple[int, int] | None = None,
    ) -> Found | None:
        if real in sources:
            return None
        sources.add(real)
        hidden = out_listing.hidden if out_listing is not None else None
        fmt = OutputFormat.for_source(output_format, source_name)
        name = output_name(source_name, fmt.suffix)
        output_path = _child(out_folder, name)
        key = (out_key, name)
        taken = outputs.get(key)
        if taken is not None:
            return Found(
                Kind.REJECTED,
                source,
                None,
                f"its output {display_path(output_path)} is already {display_path(taken)}'s output",
            )
        if look:
            try:
                exists = _output_exists(out_listing, name, output_path)
            except OSError as exc:  # a name too long for the file system, a loop in the path
                return Found(
                    Kind.REJECTED, source, output_path, f"cannot use output: {exc.strerror}"
                )
            if exists:
                outputs[key] = source
                reason = DONE_REASON
                if recipe is not None and (hidden is None or ledger.LEDGER_NAME in hidden):
                    if out_key not in ledgers:
                        ledgers[out_key] = ledger.read(out_key)
                    known = ledgers[out_key]
                    made_with = known and known.made_with(name, output_path, recipe)
                    if made_with:
                        reason = made_with_reason(made_with)
                return Found(Kind.DONE, source, output_path, reason, out_key, hidden, fmt)
        failed = 0
        if look:  # an input without output: what earlier runs learnt about it
            mine = hidden if hidden is not None else marks.hidden_names(output_path)
            if mine:
                failed = marks.failures(mine, name)
                reason = ""
                if failed >= marks.FAIL_LIMIT and not retry_failed:
                    reason = set_aside_reason(failed)
                elif skip_faceless and marks.faceless(mine, name):
                    reason = FACELESS_REASON
                if reason:
                    outputs[key] = source
                    return Found(Kind.REMEMBERED, source, output_path, reason, out_key, hidden, fmt)
        if not sniffed:
            try:
                if not _has_format(str(source), formats):
                    return Found(
                        Kind.REJECTED,
                        source,
                        output_path,  # for its failure mark; a sourceless rejection for the run
                        "not an image of that type (bad signature)",
                        out_key,
                        hidden,
                        fmt,
                        failures=failed,
                    )
            except OSError as exc:
                return Found(Kind.REJECTED, source, None, f"cannot read: {exc.strerror or exc}")
        outputs[key] = source
        return Found(
            Kind.TODO,
            source,
            output_path,
            "",
            out_key,
            hidden,
            fmt,
            inode,
            folder_id,
            failures=failed,
        )

    for path in paths:
        try:
            check_link(path)  # a link named directly is under the trust rule too
        except UntrustedLink:
            yield Found(Kind.NOT_FOLLOWED, path, None, LINK_REASON)
            continue
        try:
            kind = "dir" if path.is_dir() else "file" if path.is_file() else ""
            exists = bool(kind) or path.exists()
        except OSError as exc:
            yield Found(Kind.REJECTED, path, None, f"cannot read: {exc.strerror or exc}")
            continue
        base = output_dir / roots[path] if path in roots and output_dir is not None else output_dir
        if kind == "dir":
            try:
                if not walker.first_visit(str(path)):
                    continue  # named twice, or inside a folder walked already
            except OSError as exc:
                yield Found(Kind.REJECTED, path, None, f"cannot read: {exc.strerror or exc}")
                continue
            # per folder, once: its Path, real path, output folder and that folder's listing
            folders: dict[str, tuple[Path, str, Path, str, _Folder | None]] = {}
            for folder, files, listed in walker.walk(str(path), walker.last_key):
                yield from pending
                pending.clear()
                context = folders.get(folder)
                if context is None:
                    folder_path = Path(folder)
                    out_listing: _Folder | None
                    if base is None:
                        out_folder, out_listing = folder_path, listed
                    else:
                        out_folder = base / folder_path.relative_to(path)
                        out_listing = listing(out_folder) if look else None
                    real_folder = os.path.join(os.path.realpath(folder), "")  # ends in "/"
                    context = (folder_path, real_folder, out_folder, str(out_folder), out_listing)
                    folders[folder] = context
                folder_path, real_folder, out_folder, out_key, out_listing = context
                links = listed.links
                for entry in files:
                    name = entry.name
                    lower = name.lower()
                    if lower.endswith(OUTPUT_SUFFIXES):
                        continue  # an output, of any format
                    if not lower.endswith(suffixes):
                        _, dot, other = lower.rpartition(".")
                        if dot and other in EXTENSIONS:
                            yield Found(
                                Kind.OTHER_TYPE,
                                _child(folder_path, name),
                                None,
                                f".{other} is not in --ext",
                            )
                        continue
                    real = (
                        os.path.realpath(os.path.join(folder, name))
                        if name in links
                        else real_folder + name
                    )
                    found = decide(
                        _child(folder_path, name),
                        name,
                        real,
                        out_folder,
                        out_key,
                        out_listing,
                        False,
                        None,
                        listed.identity,
                    )
                    if found is not None and found.kind is Kind.TODO:
                        # the file's own inode (a link's target's: stat'ed by is_file already)
                        inode = entry.stat().st_ino if name in links else entry.inode()
                        found = found._replace(inode=inode)
                    if found is not None:
                        yield found
            yield from pending
            pending.clear()
        elif kind == "file":
            if path.name.lower().endswith(OUTPUT_SUFFIXES):
                yield Found(Kind.REJECTED, path, None, "is a facefix output (*.fixed.*)")
                continue
            try:
                ok = _has_format(str(path), formats)
            except OSError as exc:
                yield Found(Kind.REJECTED, path, None, f"cannot read: {exc.strerror}")
                continue
            if not ok:
                kinds = "/".join(extensions).upper()
                yield Found(Kind.REJECTED, path, None, f"not a {kinds} file")
                continue
            parent = path.parent
            base = (
                output_dir / roots[parent]
                if parent in roots and output_dir is not None
                else output_dir
            )
            out_folder = output_path_for(path, parent, base).parent
            found = decide(
                path, path.name, str(path.resolve()), out_folder, str(out_folder), None, True
            )
            if found is not None:
                yield found
        elif exists:
            yield Found(Kind.REJECTED, path, None, "not a regular file or folder")
        else:
            yield Found(Kind.REJECTED, path, None, "no such file or folder")


def found_alone(
    source: Path,
    paths: Sequence[Path],
    *,
    extensions: Sequence[str] = ("png",),
    output_dir: Path | None = None,
    overwrite: bool = False,
    recursive: bool = True,
    output_format: FormatChoice = "png",
) -> Found | None:
    """What `scan(paths, ...)` decides about the one file `source`, found under one of `paths`
    (`facefix watch`: a file that just appeared), without walking: the same output path (with
    --output-dir too), DONE when that output exists, a signature check. None when the walk
    would not list it: a hidden name or folder, an output, a type not asked for, a sub-folder
    without `recursive`, or a place outside `paths`."""
    extensions = normalise_extensions(extensions)
    lower = source.name.lower()
    if (
        source.name.startswith(".")
        or lower.endswith(OUTPUT_SUFFIXES)
        or not lower.endswith(tuple("." + ext for ext in extensions))
    ):
        return None
    where = os.path.abspath(source)
    for path in paths:
        root = os.path.abspath(path)
        if where == root:  # a file named on the command line
            folder, base = path.parent, output_dir
            break
        inside = os.path.relpath(where, root)
        parts = Path(inside).parts
        if inside.startswith(os.pardir) or any(p.startswith(".") for p in parts):
            continue
        if not recursive and len(parts) > 1:
            return None
        roots = _root_names(paths) if output_dir is not None else {}
        folder = path
        base = output_dir / roots[path] if path in roots and output_dir is not None else output_dir
        break
    else:
        return None
    fmt = OutputFormat.for_source(output_format, source.name)
    output = output_path_for(source, folder, base, fmt)
    out_key = str(output.parent)
    if not overwrite:
        try:
            if _output_exists(None, output.name, output):
                return Found(Kind.DONE, source, output, DONE_REASON, out_key, None, fmt)
        except OSError as exc:
            return Found(Kind.REJECTED, source, output, f"cannot use output: {exc.strerror}")
    try:
        if not has_signature(source, extensions):
            return Found(Kind.REJECTED, source, None, "not an image of that type (bad signature)")
    except OSError as exc:
        return Found(Kind.REJECTED, source, None, f"cannot read: {exc.strerror or exc}")
    return Found(Kind.TODO, source, output, "", out_key, None, fmt)


def _child(folder: Path, name: str) -> Path:
    """`folder / name` for a name from a listing, without parsing it again (pathlib's own
    fast path for `iterdir`, where this Python has it: 10x cheaper per file)."""
    return _MAKE_CHILD(folder, name) if _MAKE_CHILD is not None else folder / name


_MAKE_CHILD: Callable[[Path, str], Path] | None = getattr(Path, "_make_child_relpath", None)


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
