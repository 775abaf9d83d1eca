"""pipeline.watch: the loop between the watcher, the settler and the session, with a session that
records the jobs it is handed instead of running networks; and the checks before any wait."""

from __future__ import annotations

import io
import os
import signal as signal_numbers
from collections.abc import Callable, Generator, Sequence
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facefix_cli.errors import EnvironmentFault, Interrupted, SetupError
from facefix_cli.io.discover import Job
from facefix_cli.io.ledger import RecipeTag
from facefix_cli.io.settle import Settler
from facefix_cli.io.watcher import Sign, Signs
from facefix_cli.pipeline.results import FileResult, Status
from facefix_cli.pipeline.settings import RunSettings
from facefix_cli.pipeline.watch import WatchSummary, _Loop, _start_watcher, watch
from facefix_cli.recipe import Recipe


def png(seed: int = 0) -> bytes:
    out = io.BytesIO()
    pixels = np.random.default_rng(seed).integers(0, 255, (8, 8, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


class Recorder:
    """FixEvents and WatchEvents that keep what they hear."""

    def __init__(self) -> None:
        self.finished: list[FileResult] = []
        self.said: list[str] = []
        self.totals: list[int] = []  # what `seen` said, in order

    def seen(self, total: int) -> None:
        self.totals.append(total)

    def file_finished(self, result: FileResult) -> None:
        self.finished.append(result)

    def notice(self, text: str) -> None:
        self.said.append(text)

    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *args, **kwargs: None


class FakeSession:
    """What the loop asks of a FixSession: its settings and recipe, and `fix(jobs)`."""

    def __init__(self, settings: RunSettings) -> None:
        self.settings = settings
        self.recipe = Recipe(scale=2)
        self.recipe_tag = RecipeTag(tuple(self.recipe.rows()))
        self.handed: list[list[Job]] = []

    def fix(
        self, jobs: Sequence[Job], should_stop: Callable[[], bool] = lambda: False
    ) -> Generator[FileResult, None, None]:
        self.handed.append(list(jobs))
        for job in jobs:
            job.output.write_bytes(b"fixed")
            yield FileResult(job.source, job.output, Status.FIXED)


class ScriptedWatcher:
    """Hands out prepared signs, one batch per wait, then asks the loop to stop."""

    def __init__(self, batches: list[Signs]) -> None:
        self.batches = batches

    def wait(self, timeout: float | None) -> Signs:
        return self.batches.pop(0) if self.batches else Signs([])

    def close(self) -> None:
        pass


class ActingWatcher(ScriptedWatcher):
    """Before handing out each batch, does what a writer would do meanwhile."""

    def __init__(self, steps: list[tuple[Callable[[], object], Signs]]) -> None:
        super().__init__([signs for _, signs in steps])
        self.actions = [act for act, _ in steps]

    def wait(self, timeout: float | None) -> Signs:
        if self.actions:
            self.actions.pop(0)()
        return super().wait(timeout)


def loop_over(
    tree: Path, batches: list[Signs], watcher: ScriptedWatcher | None = None
) -> tuple[_Loop, FakeSession, Recorder]:
    session = FakeSession(RunSettings(weights_dir=tree))
    events = Recorder()
    watcher = watcher or ScriptedWatcher(batches)
    loop = _Loop(
        [tree],
        session,  # type: ignore[arg-type]
        WatchSummary(),
        Settler(0.0),
        events,  # type: ignore[arg-type]
        lambda: not watcher.batches,
    )
    loop.backlog("recipe")
    loop.run(watcher, 0.01)
    loop.fix_due()
    return loop, session, events


def test_backlog_then_new_files_each_once(tmp_path: Path) -> None:
    (tmp_path / "old.png").write_bytes(png(1))
    (tmp_path / "done.png").write_bytes(png(2))
    (tmp_path / "done.fixed.png").write_bytes(b"earlier")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "new.png").write_bytes(png(3))
    new = str(tmp_path / "sub" / "new.png")
    # the same file signed three times (created, modified, closed), and an output's rename
    signs = [Sign(new), Sign(new), Sign(new, True), Sign(str(tmp_path / "old.fixed.png"), True)]
    loop, session, events = loop_over(tmp_path, [Signs(signs), Signs([Sign(new, True)])])
    handed = [job.source.name for jobs in session.handed for job in jobs]
    assert handed == ["old.png", "new.png"]
    assert (tmp_path / "done.fixed.png").read_bytes() == b"earlier"
    assert loop.summary.counts[Status.FIXED] == 2 and loop.summary.counts[Status.SKIPPED] == 1
    assert [r.status for r in events.finished] == [Status.SKIPPED, Status.FIXED, Status.FIXED]
    # the log's [n/total]: the backlog's skipped file, then each file as it became complete
    assert events.totals == [1, 2, 3]


def test_broken_file_reported_once_and_lost_events_walk_again(tmp_path: Path) -> None:
    broken = tmp_path / "broken.png"
    broken.write_bytes(png()[:30])
    (tmp_path / "missed.png").write_bytes(png(4))
    batches = [Signs([Sign(str(broken))]), Signs([], lost=True), Signs([Sign(str(broken), True)])]
    loop, session, events = loop_over(tmp_path, batches)
    handed = [job.source.name for jobs in session.handed for job in jobs]
    # broken.png is handed to the session once (which reports it failed, as fix would)
    assert handed.count("broken.png") == 1 and "missed.png" in handed
    assert any("walking again" in text for text in events.said)


def test_a_watched_folder_deleted_ends_the_loop_with_a_fault(tmp_path: Path) -> None:
    """A deleted watched root left the watch idle forever; now it is an environment fault
    (exit 4: a service manager restarts it, and the start then fails with exit 2)."""
    with pytest.raises(EnvironmentFault, match="the watched folder .*gone.* was deleted"):
        loop_over(tmp_path, [Signs([], gone=(str(tmp_path / "gone"),))])


def test_an_input_its_tool_rewrites_after_saving_is_fixed_again_once(tmp_path: Path) -> None:
    """A1111 saves a JPEG or WebP, then rewrites it to insert its EXIF (piexif.insert): the
    watch took the first save (whole, closed after writing), so the output lacked the
    settings, and the rewrite was skipped as done. Now a rewrite of an input this watch fixed
    moments ago redoes the output it wrote; a file not rewritten, or an output someone else
    replaced, is left alone."""
    rewritten, untouched, taken = (
        tmp_path / f"{n}.png" for n in ("rewritten", "untouched", "taken")
    )
    for seed, path in enumerate((rewritten, untouched, taken)):
        path.write_bytes(png(seed))

    def writers() -> None:
        rewritten.write_bytes(png(0) + b"")  # the same save again, then its metadata inserted
        os.utime(rewritten, ns=(1, 1))
        taken.write_bytes(png(7))
        (tmp_path / "taken.fixed.png").write_bytes(b"replaced by hand")

    signs = Signs([Sign(str(p), True) for p in (rewritten, untouched, taken)])
    watcher = ActingWatcher([(writers, signs), (lambda: None, signs)])
    loop, session, _ = loop_over(tmp_path, [], watcher)
    handed = [(job.source.name, job.replace) for jobs in session.handed for job in jobs]
    assert handed == [
        ("rewritten.png", False),
        ("taken.png", False),
        ("untouched.png", False),
        ("rewritten.png", True),  # once, though signed twice after the rewrite
    ]
    assert (tmp_path / "taken.fixed.png").read_bytes() == b"replaced by hand"


def test_setup_errors_before_any_wait(tmp_path: Path) -> None:
    settings = RunSettings(weights_dir=tmp_path)
    recipe = Recipe(scale=2)
    events = Recorder()
    with pytest.raises(SetupError, match="is not one"):
        watch([tmp_path / "missing"], recipe, settings, events)  # type: ignore[arg-type]
    with pytest.raises(SetupError, match="--settle"):
        watch([tmp_path], recipe, settings, events, settle=-1)  # type: ignore[arg-type]
    with pytest.raises(SetupError, match="--poll"):
        watch([tmp_path], recipe, settings, events, poll=0)  # type: ignore[arg-type]
    with pytest.raises(SetupError, match="--dry-run"):
        watch([tmp_path], recipe, RunSettings(weights_dir=tmp_path, dry_run=True), events)  # type: ignore[arg-type]


class FaultySession(FakeSession):
    """A FixSession stand-in whose fix raises `error` on the first file."""

    error: BaseException = EnvironmentFault("the GPU is unusable: CUDA error: device lost")

    def __init__(self, recipe: Recipe, settings: RunSettings, **kwargs: object) -> None:
        super().__init__(settings)
        self.notices: list[object] = []
        self.closed = False

    def prepare(self, first_output: Path, waiting: str = "") -> None:
        return None

    def devices(self) -> str:
        return "cpu"

    def load(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def fix(
        self, jobs: Sequence[Job], should_stop: Callable[[], bool] = lambda: False
    ) -> Generator[FileResult, None, None]:
        raise self.error
        yield  # a generator, like the real one


@pytest.mark.parametrize(
    ("error", "fault", "signal", "code"),
    [
        (EnvironmentFault("the GPU is unusable: CUDA error"), True, None, 4),
        (Interrupted(signal_numbers.SIGTERM), False, signal_numbers.SIGTERM, 0),
    ],
)
def test_a_fault_ends_the_watch_with_4_and_a_signal_with_0(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    error: BaseException,
    fault: bool,
    signal: int | None,
    code: int,
) -> None:
    (tmp_path / "a.png").write_bytes(png())
    monkeypatch.setattr(FaultySession, "error", error)
    monkeypatch.setattr("facefix_cli.pipeline.watch.FixSession", FaultySession)
    summary = watch(
        [tmp_path],
        Recipe(scale=2),
        RunSettings(weights_dir=tmp_path),
        Recorder(),  # type: ignore[arg-type]
        poll=0.1,
        should_stop=lambda: False,
    )
    assert (summary.fault is not None) is fault and summary.signal == signal
    assert summary.exit_code == code


def test_walks_hand_out_only_images_without_an_output_even_with_overwrite(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(png())
    (tmp_path / "a.fixed.png").write_bytes(b"fixed")
    (tmp_path / "b.png").write_bytes(png(1))
    settings = RunSettings(weights_dir=tmp_path, overwrite=True)
    watcher, how = _start_watcher([tmp_path], settings, 0.5, Recorder())  # type: ignore[arg-type]
    assert how == "polling every 0.5s"
    assert [Path(s.path).name for s in watcher.wait(None).files] == ["b.png"]


def test_an_unknown_ext_is_a_setup_error_before_anything_loads(tmp_path: Path) -> None:
    settings = RunSettings(weights_dir=tmp_path, extensions=("gif",))
    with pytest.raises(SetupError, match="unsupported extension"):
        watch([tmp_path], Recipe(scale=2), settings, Recorder())  # type: ignore[arg-type]
