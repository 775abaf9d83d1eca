"""`pipeline.executors`: the table, the choice, and what the run asks of an executor."""

from __future__ import annotations

from pathlib import Path

from facefix_cli.pipeline.executors import EXECUTORS, choose_executor
from facefix_cli.pipeline.settings import RunSettings


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
