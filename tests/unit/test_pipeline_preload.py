"""The background network load (pipeline.preload): the executors use the networks it loaded,
wait for it, say what they wait for, and see its failures where they would load themselves."""

from __future__ import annotations

import cv2
import pytest
import torch
from checkpoints import realesrgan_state_dict, save_params_ema
from conftest import gradient_image

from facefix_cli.errors import SetupError
from facefix_cli.io.discover import Job
from facefix_cli.io.write import quantize
from facefix_cli.pipeline import RunSettings, Work
from facefix_cli.pipeline.executors.sequential import run_sequential
from facefix_cli.pipeline.preload import NetworkLoad
from facefix_cli.recipe import Recipe
from facefix_cli.silent import Silent

CPU = torch.device("cpu")


class Waits(Silent):
    def __init__(self) -> None:
        self.waits: list[str | None] = []

    def waiting(self, what: str | None) -> None:
        self.waits.append(what)


def test_the_executor_runs_on_the_networks_loaded_in_the_background(tmp_path):
    upscaler = save_params_ema(realesrgan_state_dict(2, num_block=1), tmp_path / "tiny_x2.pth")
    recipe, settings = (
        Recipe(upscaler_path=upscaler),
        RunSettings(weights_dir=tmp_path, device="cpu"),
    )
    source = tmp_path / "a.png"
    cv2.imwrite(str(source), quantize(gradient_image(8, 8), 8))
    load = NetworkLoad(recipe, settings).start()
    events = Waits()
    work = Work(
        [Job(source, tmp_path / "a.fixed.png")],
        recipe,
        settings,
        events,
        lambda: False,
        preload=load,
    )
    networks = work.networks(CPU)
    assert load.owns(networks)
    results = list(run_sequential(work, networks))
    load.join()
    assert [r.status for r in results] == ["fixed"] and (tmp_path / "a.fixed.png").exists()
    assert "upscaler_fp32" in networks.__dict__  # loaded once, by the background load
    # what the run waited for: the load with its age, or nothing when it was done already
    assert events.waits[-1] is None
    assert events.waits[0] is None or "(started " in events.waits[0]


def test_a_failed_background_load_is_raised_where_the_executor_loads(tmp_path):
    bad = tmp_path / "not_a_model.pth"
    bad.write_bytes(b"not a checkpoint")
    recipe, settings = Recipe(upscaler_path=bad), RunSettings(weights_dir=tmp_path, device="cpu")
    load = NetworkLoad(recipe, settings).start()
    work = Work(
        [Job(tmp_path / "a.png", tmp_path / "a.fixed.png")],
        recipe,
        settings,
        Silent(),
        lambda: False,
        preload=load,
    )
    networks = work.networks(CPU)
    with pytest.raises(SetupError, match="cannot load model file"):
        work.load(networks)  # as the executor's own load would have raised it: exit 2
    load.join()


def test_without_a_background_load_the_executor_loads_its_own(tmp_path):
    recipe, settings = Recipe(scale=2), RunSettings(weights_dir=tmp_path, device="cpu")
    work = Work([], recipe, settings, Silent(), lambda: False)
    networks = work.networks(CPU)
    assert work.loading_text(networks) == "loading realesrgan-x2plus on cpu"
    assert work.preload is None and networks.recipe is recipe
