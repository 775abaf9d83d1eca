"""`pipeline.executors`: the table, the choice, and what the run asks of an executor; the
sequential and pipelined executors' scheduling on real files with a fake per-batch stage."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import gradient_image, hidden_leftovers

from facefix_cli.errors import SetupError
from facefix_cli.io.discover import Job
from facefix_cli.io.write import quantize
from facefix_cli.networks.device import parse_devices, resolve_devices
from facefix_cli.operations import Operation
from facefix_cli.pipeline import RunSettings, Work
from facefix_cli.pipeline.clock import record_stages
from facefix_cli.pipeline.executors import EXECUTORS, choose_executor
from facefix_cli.pipeline.executors.pipelined import run_pipelined
from facefix_cli.pipeline.executors.sequential import run_sequential
from facefix_cli.pipeline.image import FixedImage
from facefix_cli.recipe import Recipe
from facefix_cli.silent import Silent


def test_what_the_run_asks_is_a_capability_not_a_name() -> None:
    # Ray workers load their own networks: the run must not start loading them here.
    assert {name: e.loads_networks_here for name, e in EXECUTORS.items()} == {
        "sequential": True,
        "pipelined": True,
        "ray": False,
    }
    local = RunSettings(weights_dir=Path("w"), ray_address="local")
    cluster = RunSettings(weights_dir=Path("w"), ray_address="ray://head:10001")
    assert EXECUTORS["ray"].fetches_weights_here(local)
    assert not EXECUTORS["ray"].fetches_weights_here(cluster)


def test_choose_executor() -> None:
    assert choose_executor(RunSettings(weights_dir=Path("w"), ray_address="auto")).name == "ray"
    assert choose_executor(RunSettings(weights_dir=Path("w"), workers=0)).name == "sequential"
    assert (
        choose_executor(RunSettings(weights_dir=Path("w"), device="cuda", workers=2)).name
        == "pipelined"
    )


def test_choosing_imports_no_executor_module() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from pathlib import Path; "
        "from facefix_cli.pipeline.executors import choose_executor; "
        "from facefix_cli.pipeline.settings import RunSettings; "
        "choose_executor(RunSettings(weights_dir=Path('w'))); "
        "print(sorted(m for m in sys.modules if m.startswith('facefix_cli.pipeline.executors.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['facefix_cli.pipeline.executors.work']"


# -- The executors' scheduling, on real files with a fake per-batch stage (no networks): every
# file once, batches of one size in job order, several stages, failures alone, stops, bounds.
class FakeNetworks:
    """What the executors touch of `Networks`: its device, and loading (recorded)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.device = torch.device("cpu")
        self.upscaler = type("Upscaler", (), {"scale": 2})()
        self.upscaler_sha256 = "0" * 64
        self.loads = 0

    def load_all(self) -> None:
        self.loads += 1

    def loading_text(self) -> str:
        return f"loading networks for {self.name}"


class FakeStage:
    """fix_images stand-in: doubles the image (nearest), records each batch and its stage."""

    def __init__(self, fail_on: str | None = None, barrier: threading.Barrier | None = None):
        self.batches: list[tuple[str, list[str]]] = []
        self.fail_on, self.barrier = fail_on, barrier
        self.lock = threading.Lock()

    def __call__(self, sources, options, networks) -> list[FixedImage]:
        with self.lock:
            self.batches.append((networks.name, [s.path.name for s in sources]))
            calls = len(self.batches)
        if self.barrier is not None and calls <= self.barrier.parties:
            self.barrier.wait(timeout=10)  # every stage must be running at once
        if self.fail_on is not None and any(s.path.name == self.fail_on for s in sources):
            raise ValueError("this image breaks the network")
        operations = [Operation(type="esrgan", strength=1.0, scale=2)]
        return [
            FixedImage(np.kron(s.rgb, np.ones((2, 2, 1), np.float32)), None, 0, operations)
            for s in sources
        ]


def make_jobs(folder: Path, sizes: list[tuple[int, int]]) -> list[Job]:
    jobs = []
    for index, (width, height) in enumerate(sizes):
        path = folder / f"{index:02d}.png"
        cv2.imwrite(str(path), quantize(gradient_image(width, height, seed=index), 8))
        jobs.append(Job(path, folder / f"{index:02d}.fixed.png"))
    return jobs


def settings(folder: Path, **kwargs) -> RunSettings:
    return RunSettings(weights_dir=folder, **kwargs)


def work(jobs, folder: Path, events=None, should_stop=lambda: False, **kwargs) -> Work:
    return Work(jobs, Recipe(scale=2), settings(folder, **kwargs), events or Silent(), should_stop)


def test_device_lists_parse_and_resolve_on_the_cpu():
    assert parse_devices("cuda:0, CUDA:1") == ["cuda:0", "cuda:1"]
    assert parse_devices("auto") == ["auto"]
    assert resolve_devices("cpu,cpu") == [torch.device("cpu")] * 2
    for bad in ("tpu", "cuda:x", "cpu,,cpu", "auto,cpu", "cuda:0;cuda:1"):
        with pytest.raises(SetupError, match="--device"):
            parse_devices(bad)
    if not torch.cuda.is_available():
        with pytest.raises(SetupError, match="no CUDA GPU"):
            resolve_devices("cpu,cuda:1")


def test_bad_workers_and_batch_size_are_setup_errors(tmp_path):
    with pytest.raises(SetupError, match="--workers"):
        settings(tmp_path, workers=-1).validate()
    with pytest.raises(SetupError, match="--batch-size"):
        settings(tmp_path, batch_size=0).validate()
    with pytest.raises(SetupError, match="--device"):
        settings(tmp_path, device="gpu").validate()


def test_batches_hold_one_size_in_job_order_across_two_stages(tmp_path):
    small, large = (8, 6), (10, 6)
    jobs = make_jobs(tmp_path, [small] * 4 + [large] * 2 + [small])
    stage = FakeStage(barrier=threading.Barrier(2))
    results = list(
        run_pipelined(
            work(jobs, tmp_path, workers=2, batch_size=3),
            [FakeNetworks("first"), FakeNetworks("second")],
            fix_batch=stage,
        )
    )
    assert sorted(r.source.name for r in results) == [j.source.name for j in jobs]
    assert all(r.status == "fixed" for r in results)
    batches = sorted(names for _, names in stage.batches)
    assert batches == [["00.png", "01.png", "02.png"], ["03.png"], ["04.png", "05.png"], ["06.png"]]
    assert {name for name, _ in stage.batches} == {"first", "second"}
    for job in jobs:
        written = cv2.imread(str(job.output))
        assert written.shape[:2] == tuple(2 * s for s in cv2.imread(str(job.source)).shape[:2])


def test_both_executors_report_a_failing_file_alone_and_alike(tmp_path, monkeypatch):
    jobs = make_jobs(tmp_path, [(8, 6)] * 4)
    good = jobs[0].source.read_bytes()
    jobs[1].source.write_bytes(good[: len(good) // 2])  # truncated
    stage = FakeStage(fail_on="02.png")  # a network error in the middle of a batch

    def by_name(results):
        return {r.source.name: (r.status, r.reason) for r in results}

    piped = by_name(
        run_pipelined(
            work(jobs, tmp_path, workers=2, batch_size=4), [FakeNetworks("gpu")], fix_batch=stage
        )
    )
    assert piped["01.png"][0] == "failed" and piped["01.png"][1].startswith("truncated PNG")
    # An unexpected exception type from a network is a crash (a bug to report), not a failure.
    assert piped["02.png"][0] == "crashed"
    assert piped["02.png"][1].startswith("ValueError: this image breaks the network")
    assert piped["00.png"] == piped["03.png"] == ("fixed", "")
    assert stage.batches[0][1] == ["00.png", "02.png", "03.png"]  # then redone one at a time
    for job in jobs:
        job.output.unlink(missing_ok=True)
    import facefix_cli.pipeline.file as file_steps

    single = FakeStage(fail_on="02.png")
    monkeypatch.setattr(file_steps, "fix_image", lambda s, r, n: single([s], r, n)[0])
    sequential = by_name(run_sequential(work(jobs, tmp_path), FakeNetworks("gpu")))
    assert sequential == piped
    assert sorted(p.name for p in tmp_path.glob("*.fixed.png")) == ["00.fixed.png", "03.fixed.png"]


def test_a_stop_finishes_the_network_pass_and_gives_back_what_was_read_ahead(tmp_path):
    """--max-time or should_stop: the file in a network pass is finished and written; files
    decoded ahead never enter one: no result (the run counts them not started), claims gone."""
    jobs = make_jobs(tmp_path, [(8, 6)] * 6)
    started: list[Job] = []

    class Events(Silent):
        def file_started(self, job: Job) -> None:
            started.append(job)

    class SlowToLoad(FakeNetworks):
        def load_all(self) -> None:  # the decoders read ahead meanwhile
            deadline = time.monotonic() + 10
            while len(started) < 3 and time.monotonic() < deadline:
                time.sleep(0.01)

    in_pass = threading.Event()
    stage = FakeStage()

    def fix_batch(sources, options, networks):
        in_pass.set()  # the stop comes while this pass runs
        return stage(sources, options, networks)

    results = list(
        run_pipelined(
            work(jobs, tmp_path, Events(), in_pass.is_set, workers=2, batch_size=1),
            [SlowToLoad("gpu")], fix_batch=fix_batch,
        )
    )  # fmt: skip
    assert len(started) >= 3  # read ahead: claimed and decoded
    assert [(r.source.name, r.status) for r in results] == [("00.png", "fixed")]
    assert [p.name for p in tmp_path.glob("*.fixed.png")] == ["00.fixed.png"]
    assert hidden_leftovers(tmp_path) == []  # no claim left


def test_seconds_are_the_files_own_stage_time_not_its_wait(tmp_path):
    jobs = make_jobs(tmp_path, [(8, 6)] * 4)
    stage = FakeStage()

    def slow(sources, options, networks):
        time.sleep(0.5)
        return stage(sources, options, networks)

    results = list(
        run_pipelined(work(jobs, tmp_path, workers=2, batch_size=2), [FakeNetworks("gpu")], slow)
    )
    # Each pass of two files takes 0.5 s: a file's share is 0.25 s, plus its decode and write
    # (milliseconds). The last files, decoded at once, waited 0.5 s for the first pass: counted
    # from their decode they would take 1 s.
    assert all(0.25 <= r.seconds < 0.75 for r in results), [r.seconds for r in results]


def test_an_exception_that_ends_the_run_is_raised_in_the_caller_without_hanging(tmp_path):
    jobs = make_jobs(tmp_path, [(8, 6)] * 5)

    def broken(sources, options, networks):
        raise SetupError("a model that will not load")  # not a per-file problem

    with pytest.raises(SetupError, match="will not load"):
        list(
            run_pipelined(work(jobs, tmp_path, workers=2), [FakeNetworks("gpu")], fix_batch=broken)
        )
    assert not [t for t in threading.enumerate() if t.name.startswith("facefix-io")]


def test_ctrl_c_in_the_callers_thread_stops_workers_and_leaves_no_partial_file(tmp_path):
    jobs = make_jobs(tmp_path, [(64, 48)] * 12)
    seen: list[Job] = []

    class InterruptedEvents(Silent):
        def file_started(self, job: Job) -> None:  # runs in the caller's thread, like a signal
            seen.append(job)
            if len(seen) == 3:
                raise KeyboardInterrupt

    stage = FakeStage()

    def slow_stage(sources, options, networks):
        time.sleep(0.05)  # so that the interrupt lands while files are in flight
        return stage(sources, options, networks)

    with pytest.raises(KeyboardInterrupt):
        list(run_pipelined(work(jobs, tmp_path, InterruptedEvents(), workers=3, batch_size=1), [FakeNetworks("gpu")], fix_batch=slow_stage))  # fmt: skip
    assert not [t for t in threading.enumerate() if t.name.startswith("facefix-io")]
    assert not list(tmp_path.glob(".*.tmp"))
    for output in tmp_path.glob("*.fixed.png"):  # finished outputs are whole PNGs
        assert cv2.imread(str(output)).shape == (96, 128, 3)


def test_decoded_images_wait_in_a_bounded_queue(tmp_path):
    jobs = make_jobs(tmp_path, [(8, 6)] * 30)
    started: list[Job] = []
    in_flight_at_first_batch: list[int] = []

    class Events(Silent):
        def file_started(self, job: Job) -> None:
            started.append(job)

    def slow_first_batch(sources, options, networks):
        if not in_flight_at_first_batch:
            time.sleep(0.3)  # decoders run ahead as far as the queue lets them
            in_flight_at_first_batch.append(len(started))
        return FakeStage()(sources, options, networks)

    results = list(
        run_pipelined(
            work(jobs, tmp_path, Events(), workers=2, batch_size=1), [FakeNetworks("gpu")],
            fix_batch=slow_first_batch,
        )
    )  # fmt: skip
    assert len(results) == 30
    # read capacity 2 * batch 1 * 1 stage + 2 workers, plus the image in the GPU stage
    assert in_flight_at_first_batch[0] <= 5


def test_the_stage_clock_records_only_when_installed(tmp_path):
    jobs = make_jobs(tmp_path, [(8, 6)] * 3)
    with record_stages() as clock:
        list(
            run_pipelined(
                work(jobs, tmp_path, workers=2), [FakeNetworks("gpu")], fix_batch=FakeStage()
            )
        )
    assert clock.counts["decode"] == 3 and clock.counts["encode"] == 3
    assert clock.counts["write"] == 3 and clock.counts["fix"] == 3
    assert len(clock.finished_at) == 3


class WaitRecorder(Silent):
    """Events in the order the caller's thread hears them."""

    def __init__(self) -> None:
        self.heard: list[str] = []

    def waiting(self, what: str | None) -> None:
        self.heard.append(f"waiting: {what}")

    def file_started(self, job: Job) -> None:
        self.heard.append("started")


@pytest.mark.parametrize("executor", ["sequential", "pipelined"])
def test_loading_is_announced_before_work_and_cleared_once_loaded(tmp_path, executor):
    """A front end can say what the run waits for instead of sitting at 0/N (issue: waits)."""
    jobs = make_jobs(tmp_path, [(8, 6)] * 3)
    events, networks = WaitRecorder(), FakeNetworks("gpu")
    if executor == "sequential":
        results = list(run_sequential(work(jobs, tmp_path, events), networks))
    else:
        results = list(
            run_pipelined(
                work(jobs, tmp_path, events, workers=2, batch_size=1), [networks],
                fix_batch=FakeStage(),
            )
        )  # fmt: skip
    assert len(results) == 3 and networks.loads == 1
    assert events.heard[0] == "waiting: loading networks for gpu"
    assert events.heard.count("waiting: None") == 1  # cleared once, when the load finished
    assert events.heard.count("started") == 3
    if executor == "sequential":  # nothing starts before the networks are in
        assert events.heard[:2] == ["waiting: loading networks for gpu", "waiting: None"]
