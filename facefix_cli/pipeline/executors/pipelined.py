"""The pipelined executor: decode workers, one GPU stage per device, encode workers, so the
GPU never waits for PNG decoding, metadata or PNG encoding.

    jobs --> [workers: read_job] --> decoded (bounded) --> [GPU stage per device: fix_images]
         --> to_write (bounded) --> [workers: write_fixed] --> results, as files finish

Guarantees:
- Each file goes through the same steps as in the sequential executor (`pipeline.file`:
  `read_job` (claim and read), `fix_images`, `write_fixed` (write and release the claim)), so
  results, reasons, claims and output bytes are the same;
  a failed file fails alone with its one-line reason (a batch that raises is redone one image
  at a time so that only the failing file fails).
- Batches hold images of one size (and alpha or not) only, up to the batch size, taken in job
  order: a batch closes when it is full or the next file in order has another size. The
  batches are therefore the same run to run, and so are the outputs.
- Host memory is bounded by the queue capacities, whatever the number of files.
- An exception in any thread stops the run and is raised in the caller's thread; a setup
  error (`FacefixError`) or Ctrl-C stops it at once: every thread finishes the step it is in
  (a write in progress completes, so no partial file is left; a GPU stage finishes its batch),
  nothing new starts, and results not yet written are dropped.
- `events.file_started` is called in the caller's thread, when a file enters decoding.

Workers are threads, not processes: cv2.imdecode/imencode and zlib release the GIL for the
whole call (benchmarks/gil_release.py, figures in benchmarks/RESULTS.md), and threads share the
decoded arrays with the GPU stage without copies or pickling."""

from __future__ import annotations

import contextlib
import dataclasses
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Sequence

import torch

from facefix_cli.io.read import SourceImage
from facefix_cli.networks.cache import Networks
from facefix_cli.networks.device import (
    default_batch_size,
    make_deterministic,
    resolve_devices,
    torch_threads,
)
from facefix_cli.pipeline.clock import StageClock, current_clock
from facefix_cli.pipeline.executors.sequential import run_sequential
from facefix_cli.pipeline.executors.work import Work
from facefix_cli.pipeline.file import OpenFile, abandon, raise_if_run_ends, read_job, write_fixed
from facefix_cli.pipeline.image import FixedImage, fix_images
from facefix_cli.pipeline.results import FileResult, FixEvents
from facefix_cli.pipeline.threads import default_workers, plan_threads
from facefix_cli.recipe import Recipe

FixBatch = Callable[[list[SourceImage], Recipe, Networks], list[FixedImage]]
BatchKey = tuple[int, int, bool]  # height, width, has alpha: what one network pass can share

MAX_AUTO_BATCH = 16  # default_batch_size's ceiling, for sizing the decoded queue
WORKER_JOIN_SECONDS = 60.0  # a write in progress must finish (no partial file) within this


def batch_key(source: SourceImage) -> BatchKey:
    height, width = source.rgb.shape[:2]
    return height, width, source.alpha is not None


class _Pipeline:
    """The shared state of one run, all under one condition variable."""

    def __init__(
        self,
        work: Work,
        stages: Sequence[Networks],
        fix_batch: FixBatch,
        clock: StageClock,
    ) -> None:
        self.work = work
        self.jobs, self.stages = list(work.jobs), list(stages)
        self.recipe, self.settings = work.recipe, work.settings
        self.should_stop, self.fix_batch, self.clock = work.should_stop, fix_batch, clock
        self.workers = self.settings.workers or default_workers()
        largest_batch = self.settings.batch_size or (
            MAX_AUTO_BATCH if any(n.device.type == "cuda" for n in self.stages) else 1
        )
        # Enough decoded images for every stage's next batch while the current ones run.
        self.read_capacity = 2 * largest_batch * len(self.stages) + self.workers
        self.write_capacity = max(2, self.workers)
        self.changed = threading.Condition()
        self.next_job = 0  # the next job index handed to a decoder: jobs go out in order
        self.no_more_jobs = not self.jobs
        self.decoding = 0
        self.decoded: dict[int, OpenFile | None] = {}  # by job index; None: finished at read
        self.next_in_order = 0  # the next job index a GPU stage takes: batches keep job order
        self.forming = False  # one stage at a time takes a batch, so batches keep job order
        self.in_gpu = 0
        self.to_write: deque[tuple[OpenFile, FixedImage]] = deque()
        self.writing = 0
        self.stopped = False  # hard stop: Ctrl-C, a setup error, a bug in a thread
        # Soft stop (--max-time, should_stop) seen by a GPU stage: files read ahead are given
        # back (claims released, no result) instead of entering a network pass.
        self.draining = False
        self.ended = False
        self.outbox: queue.SimpleQueue[tuple[str, object]] = queue.SimpleQueue()
        # Files read and claimed but not yet written: their claims are released if the run
        # stops before they are (a stop drops them), so no claim outlives this run.
        self.in_flight: dict[int, OpenFile] = {}

    # --- bookkeeping, always called with `changed` held ---

    def _finish(self, result: FileResult) -> None:
        self.clock.file_finished()
        self.outbox.put(("done", result))

    def _notify(self) -> None:
        """Wake every waiting thread, and post the end once nothing is left anywhere."""
        self.changed.notify_all()
        if (
            not self.ended
            and self.no_more_jobs
            and self.next_in_order == self.next_job
            and not (self.decoding or self.decoded or self.in_gpu or self.to_write or self.writing)
        ):
            self.ended = True
            self.outbox.put(("end", None))

    def _nothing_more_for_gpu(self) -> bool:
        return self.no_more_jobs and self.next_in_order == self.next_job and not self.decoding

    def _fail(self, exc: BaseException) -> None:
        with self.changed:
            if not self.stopped:
                self.outbox.put(("fatal", exc))
            self.stopped = True
            self.changed.notify_all()

    def stop(self) -> None:
        with self.changed:
            self.stopped = True
            self.changed.notify_all()

    # --- decode and encode workers ---

    def _next_task(self) -> tuple[str, object] | None:
        """What a worker does next: write first (it frees memory), else read the next job."""
        with self.changed:
            while not self.stopped:
                if self.to_write:
                    self.writing += 1
                    task = self.to_write.popleft()
                    self._notify()  # room in to_write for the GPU stages
                    return "write", task
                if not self.no_more_jobs and self.decoding + len(self.decoded) < self.read_capacity:
                    if self.should_stop():  # --max-time, signals: start nothing new
                        self.no_more_jobs = True
                        self._notify()
                        continue
                    index = self.next_job
                    self.next_job += 1
                    self.no_more_jobs = self.next_job == len(self.jobs)
                    self.decoding += 1
                    return "read", index
                if self._nothing_more_for_gpu() and not self.in_gpu:
                    return None  # nothing more will come to read or write
                self.changed.wait()
        return None

    def worker(self) -> None:
        try:
            while (task := self._next_task()) is not None:
                kind, payload = task
                if kind == "read":
                    self._read(payload)  # type: ignore[arg-type]
                else:
                    self._write(*payload)  # type: ignore[misc]
        except BaseException as exc:  # noqa: BLE001 - raised again in the caller's thread
            self._fail(exc)

    def _read(self, index: int) -> None:
        job = self.jobs[index]
        self.outbox.put(("started", job))
        opened = read_job(job, self.settings, self.clock)
        with self.changed:
            self.decoding -= 1
            if isinstance(opened, FileResult):
                self.decoded[index] = None  # keeps its place in the order
                self._finish(opened)
            elif self.draining:  # read ahead, never started: left for the next run
                opened.claim.release()
                self.decoded[index] = None
            else:
                self.decoded[index] = opened
                self.in_flight[id(opened)] = opened
            self._notify()

    def _write(self, file: OpenFile, fixed: FixedImage) -> None:
        result = write_fixed(file, fixed, self.settings, self.clock)
        with self.changed:
            self.in_flight.pop(id(file), None)
            self.writing -= 1
            self._finish(result)
            self._notify()

    # --- GPU stages ---

    def _give_back_read_ahead(self) -> None:
        """The run is to start nothing new: release the files decoded ahead (with `changed`
        held); they get no result, and the run counts them as not started."""
        self.draining = self.no_more_jobs = True
        for index, file in list(self.decoded.items()):
            if file is not None:
                file.claim.release()
                self.in_flight.pop(id(file), None)
                self.decoded[index] = None
        self._notify()

    def gpu_stage(self, networks: Networks) -> None:
        try:
            if networks.device.type == "cuda":
                torch.cuda.set_device(networks.device)
            with self.clock.stage("load"):
                self.work.load(networks)  # or wait for the load the run started in the background
            self.outbox.put(("loaded", networks.device))
            sizes: dict[BatchKey, int] = {}
            while (batch := self._take_batch(networks, sizes)) is not None:
                self._hand_over(batch, self._fix(batch, networks))
        except BaseException as exc:  # noqa: BLE001 - raised again in the caller's thread
            self._fail(exc)

    def _batch_size(self, networks: Networks, key: BatchKey, sizes: dict[BatchKey, int]) -> int:
        if self.settings.batch_size is not None:
            return self.settings.batch_size
        if key not in sizes:
            scale = networks.upscaler.scale if self.recipe.upscales else 1
            sizes[key] = default_batch_size(networks.device, (key[1], key[0]), scale)
        return sizes[key]

    def _take_batch(self, networks: Networks, sizes: dict[BatchKey, int]) -> list[OpenFile] | None:
        """The next files in job order that share one size, up to the batch size."""
        with self.changed:
            while True:
                if self.stopped:
                    return None
                if not self.forming:
                    if not self.draining and self.should_stop():
                        self._give_back_read_ahead()
                    while (
                        self.next_in_order in self.decoded
                        and self.decoded[self.next_in_order] is None
                    ):
                        del self.decoded[self.next_in_order]  # finished at read: skip it
                        self.next_in_order += 1
                        self._notify()
                    if self.next_in_order in self.decoded:
                        break
                    if self._nothing_more_for_gpu():
                        return None
                self.changed.wait()
            self.forming = True
            head = self.decoded.pop(self.next_in_order)
            assert head is not None
            self.next_in_order += 1
            self.in_gpu += 1  # counted from here, so no thread thinks the run is over
            key = batch_key(head.source)
            limit = self._batch_size(networks, key, sizes)
            batch = [head]
            while len(batch) < limit and not self.stopped:
                index = self.next_in_order
                if index in self.decoded:
                    item = self.decoded[index]
                    if item is not None and batch_key(item.source) != key:
                        break  # the next file has another size: close the batch
                    del self.decoded[index]
                    self.next_in_order += 1
                    if item is not None:
                        batch.append(item)
                        self.in_gpu += 1
                    self._notify()
                elif self.no_more_jobs and index >= self.next_job:
                    break  # no more files
                else:
                    self.changed.wait()  # the next file in order is still being decoded
            self.forming = False
            self._notify()
            return batch

    def _fix(self, batch: list[OpenFile], networks: Networks) -> list[FixedImage | FileResult]:
        begun = time.perf_counter()
        try:
            with self.clock.stage("fix", count=len(batch)):
                fixed = self.fix_batch([f.source for f in batch], self.recipe, networks)
        except Exception as exc:  # noqa: BLE001 - per-file problems only; others re-raised
            _charge(batch, begun)
            raise_if_run_ends(exc, self.settings)  # as EnvironmentFault: exit 4, not a crash
            if len(batch) == 1:
                return [abandon(batch[0], exc, self.settings)]
        else:
            _charge(batch, begun)
            return list(fixed)
        # One at a time, so that only the file that fails fails (and an out-of-memory batch
        # still gets its images done singly).
        return [self._fix([file], networks)[0] for file in batch]

    def _hand_over(self, batch: list[OpenFile], outcomes: list[FixedImage | FileResult]) -> None:
        with self.changed:
            for file, outcome in zip(batch, outcomes, strict=True):
                if isinstance(outcome, FileResult):
                    self.in_flight.pop(id(file), None)
                    self._finish(outcome)
                else:
                    while len(self.to_write) >= self.write_capacity and not self.stopped:
                        self.changed.wait()
                    if self.stopped:
                        return
                    self.to_write.append((file, outcome))
                self.in_gpu -= 1
                self._notify()

    # --- the caller's side ---

    def run(self, events: FixEvents) -> Generator[FileResult, None, None]:
        workers = [
            threading.Thread(target=self.worker, name=f"facefix-io-{i}", daemon=True)
            for i in range(self.workers)
        ]
        gpu_stages = [
            threading.Thread(
                target=self.gpu_stage, args=(n,), name=f"facefix-gpu-{n.device}", daemon=True
            )
            for n in self.stages
        ]
        # "loading 4 networks on cuda:0, cuda:1": every stage loads its own copy at once
        first = self.work.loading_text(self.stages[0])
        if first is not None:
            events.waiting(", ".join([first, *(str(n.device) for n in self.stages[1:])]))
        for thread in (*gpu_stages, *workers):
            thread.start()
        loading = len(self.stages)
        try:
            while True:
                try:
                    kind, payload = self.outbox.get(timeout=0.5)
                except queue.Empty:
                    continue  # a timed wait keeps Ctrl-C prompt on every platform
                if kind == "started":
                    events.file_started(payload)  # type: ignore[arg-type]
                elif kind == "loaded":
                    loading -= 1
                    if loading == 0:
                        events.waiting(None)
                elif kind == "done":
                    yield payload  # type: ignore[misc]
                elif kind == "fatal":
                    raise payload  # type: ignore[misc]
                else:
                    return
        finally:
            self.stop()
            for thread in workers:  # each finishes its current read or write
                thread.join(WORKER_JOIN_SECONDS)
            # A GPU stage finishes the batch it is in (its results are dropped): torch still
            # running in a thread at interpreter exit aborts the process ("terminate called"),
            # which would turn Ctrl-C's exit code 130 into a crash.
            for thread in gpu_stages:
                thread.join()
            for file in self.in_flight.values():
                file.claim.release()


def _charge(batch: list[OpenFile], begun: float) -> None:
    """Each file's share of a network pass that began at `begun`: its own time, not its wait."""
    share = (time.perf_counter() - begun) / len(batch)
    for file in batch:
        file.seconds += share


def run(work: Work) -> Generator[FileResult, None, None]:
    """The pipelined executor on every device `work.settings.device` names, within the run's
    thread budget (`pipeline.threads`); one file at a time when the budget says so (only the
    CPU, no --workers)."""
    make_deterministic()
    devices = resolve_devices(work.settings.device)
    settings = work.settings
    cpu_only = all(device.type == "cpu" for device in devices)
    plan = plan_threads(settings.threads, settings.workers, cpu_only=cpu_only)
    with torch_threads(plan.torch_threads):
        if plan.sequential:
            yield from run_sequential(work, work.networks(devices[0]))
            return
        work = dataclasses.replace(
            work, settings=dataclasses.replace(settings, workers=plan.workers)
        )
        yield from run_pipelined(work, [work.networks(device) for device in devices])


def run_pipelined(
    work: Work, stages: Sequence[Networks], fix_batch: FixBatch | None = None
) -> Generator[FileResult, None, None]:
    """Fix `work.jobs` with `work.settings.workers` decode+encode threads and one GPU stage per
    network set in `stages` (one per device), yielding each file's result as it finishes.
    `fix_batch` is the per-batch work (`fix_images`, looked up at call time; tests pass
    fakes)."""
    if not work.jobs:
        return
    pipeline = _Pipeline(work, stages, fix_batch or fix_images, current_clock())
    with contextlib.closing(pipeline.run(work.events)) as results:
        yield from results
