"""The thread budget (`pipeline.threads`, `--threads`): the network stage's torch threads and
the workers never add up to more than the budget, and which executor a budget chooses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from facefix_cli.errors import SetupError
from facefix_cli.pipeline.executors import choose_executor
from facefix_cli.pipeline.settings import RunSettings
from facefix_cli.pipeline.threads import (
    MAX_AUTO_WORKERS,
    ThreadPlan,
    available_cores,
    default_threads,
    default_workers,
    plan_threads,
)


@pytest.mark.parametrize("budget", [1, 2, 3, 4, 8, 16, 64])
@pytest.mark.parametrize("workers", [None, 1, 2, 7, 100])
@pytest.mark.parametrize("cpu_only", [True, False])
def test_torch_threads_and_workers_never_exceed_the_budget(budget, workers, cpu_only):
    plan = plan_threads(budget, workers, cpu_only=cpu_only)
    assert plan.torch_threads >= 1
    assert plan.torch_threads + plan.workers <= budget
    assert plan.sequential == (plan.workers == 0)


def test_the_cpu_alone_without_workers_runs_sequentially_with_every_thread():
    assert plan_threads(6, None, cpu_only=True) == ThreadPlan(True, 6, 0)
    # --workers given: pipelined as asked, torch gets the rest
    assert plan_threads(6, 2, cpu_only=True) == ThreadPlan(False, 4, 2)


def test_a_gpu_run_keeps_default_workers_and_torch_gets_the_rest():
    assert plan_threads(4, None, cpu_only=False) == ThreadPlan(False, 1, 3)
    assert plan_threads(32, None, cpu_only=False) == ThreadPlan(False, 24, MAX_AUTO_WORKERS)
    # too many workers asked for: capped so that one thread is left to the networks
    assert plan_threads(4, 10, cpu_only=False) == ThreadPlan(False, 1, 3)


def test_workers_0_and_a_budget_of_one_are_sequential():
    assert plan_threads(8, 0, cpu_only=False) == ThreadPlan(True, 8, 0)
    assert plan_threads(1, 3, cpu_only=False) == ThreadPlan(True, 1, 0)


def test_the_default_budget_is_omp_num_threads_else_the_affinity(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert default_threads() == 3
    assert default_workers() == 2
    for unset in ("", "0", "many"):
        monkeypatch.setenv("OMP_NUM_THREADS", unset)
        assert default_threads() == available_cores()
    if hasattr(os, "sched_getaffinity"):
        assert available_cores() == len(os.sched_getaffinity(0))


def test_the_executor_is_chosen_without_torch_from_the_settings(tmp_path):
    def chosen(**kwargs) -> str:
        return choose_executor(RunSettings(weights_dir=tmp_path, **kwargs)).name

    assert chosen(device="cpu") == "sequential"
    assert chosen(device="cpu", workers=2, threads=4) == "pipelined"
    assert chosen(device="cuda", threads=1) == "sequential"
    assert chosen(device="cuda", threads=4) == "pipelined"
    # auto may find a GPU: the pipelined executor decides once torch is imported
    assert chosen(device="auto", threads=4) == "pipelined"
    assert chosen(device="auto", ray_address="local") == "ray"


def test_threads_below_one_is_a_setup_error(tmp_path):
    with pytest.raises(SetupError, match="--threads"):
        RunSettings(weights_dir=Path(tmp_path), threads=0).validate()


@pytest.mark.parametrize(("env", "expected"), [({}, "PASSIVE"), ({"OMP_WAIT_POLICY": "ACTIVE"}, "ACTIVE")])  # fmt: skip
def test_the_cli_makes_waiting_openmp_threads_sleep_unless_the_user_chose(env, expected):
    code = "import os, sys, facefix_cli.cli; print(os.environ['OMP_WAIT_POLICY'], 'torch' in sys.modules)"  # fmt: skip
    environ = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"} | env
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=environ
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [expected, "False"]  # set before torch could read it
