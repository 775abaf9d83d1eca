"""pipeline.session: one FixSession fixes several lists of jobs with networks loaded once, and
writes the bytes `fix` writes."""

from __future__ import annotations

from pathlib import Path

import pytest
from checkpoints import realesrgan_state_dict, save_params_ema
from conftest import gradient_image
from PIL import Image

from facefix_cli.errors import MissingWeightsError
from facefix_cli.io.discover import Job
from facefix_cli.io.write import quantize
from facefix_cli.networks.cache import Networks
from facefix_cli.pipeline import FixSession, RunSettings, Status, fix
from facefix_cli.recipe import Recipe


@pytest.fixture(scope="module")
def tiny_upscaler(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tiny")
    return save_params_ema(realesrgan_state_dict(2, num_block=1), folder / "tiny_x2.pth")


def make_png(path: Path, seed: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(quantize(gradient_image(12, 12, seed), 8)).save(path)
    return path


def test_one_load_for_every_list_of_jobs_and_fix_s_bytes(tmp_path, tiny_upscaler, monkeypatch):
    loads = []
    load_all = Networks.load_all

    def counted(self: Networks) -> None:
        loads.append(self.device)
        load_all(self)

    monkeypatch.setattr(Networks, "load_all", counted)
    recipe = Recipe(scale=1, upscaler_path=tiny_upscaler)
    settings = RunSettings(weights_dir=tiny_upscaler.parent, workers=0, device="cpu")
    session = FixSession(recipe, settings)
    sources = [make_png(tmp_path / "in" / f"{index}.png", index) for index in range(3)]
    jobs = [Job(s, s.with_name(f"{s.stem}.fixed.png")) for s in sources]
    try:
        assert session.prepare(jobs[0].output) is None
        session.load()
        assert session.devices() == "cpu"
        first = list(session.fix(jobs[:1]))
        rest = list(session.fix(jobs[1:]))
    finally:
        session.close()
    assert [r.status for r in first + rest] == [Status.FIXED] * 3
    assert len(loads) == 1  # loaded once, in the background, for all three

    again = tmp_path / "again"
    for source in sources:
        make_png(again / source.name, int(source.stem))
    assert fix([again], recipe, settings).count(Status.FIXED) == 3
    for job in jobs:
        assert (again / job.output.name).read_bytes() == job.output.read_bytes()


def test_missing_weights_are_a_setup_error_at_prepare(tmp_path):
    session = FixSession(Recipe(scale=2), RunSettings(weights_dir=tmp_path, offline=True))
    with pytest.raises(MissingWeightsError):
        session.prepare(tmp_path / "a.fixed.png")
    session.close()
