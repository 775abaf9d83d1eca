"""weights.download without a server: names to models, the command a user is told to run."""

from __future__ import annotations

import pytest

from facefix_cli.errors import DownloadError, SetupError
from facefix_cli.weights import download as dl
from facefix_cli.weights import registry
from facefix_cli.weights.registry import Registry
from tests.weights_server import (
    payload,
    stand_in,
)


def test_resolve_names():
    defaults = {m.name for m in dl.resolve_names([])}
    assert defaults == {m.name for m in registry.MODELS if m.default}
    every = dl.resolve_names([], all_models=True)
    assert "codeformer" not in {m.name for m in every}  # non-commercial: by name only
    assert len(every) == len(registry.MODELS) - 1
    chosen = dl.resolve_names(["CodeFormer", "GFPGANv1.4.pth", "gfpgan-1.4"])
    assert [m.name for m in chosen] == ["codeformer", "gfpgan-1.4"]
    with pytest.raises(SetupError, match="unknown model nope; known models: gfpgan-1.4, "):
        dl.resolve_names(["nope"])
    with pytest.raises(SetupError, match="not both"):
        dl.resolve_names(["parsenet"], all_models=True)


def test_resolve_names_reads_the_registry_it_is_given():
    alpha, beta = stand_in("alpha", payload(1)), stand_in("beta", payload(2), default=False)
    table = Registry((alpha, beta))
    assert dl.resolve_names([], registry=table) == [alpha]
    assert dl.resolve_names(["BETA.pth"], registry=table) == [beta]
    with pytest.raises(SetupError, match="unknown model gfpgan-1.4; known models: alpha, beta$"):
        dl.resolve_names(["gfpgan-1.4"], registry=table)


def test_download_command_quotes_the_folder(tmp_path):
    models = [registry.get_model("gfpgan-1.4"), registry.get_model("parsenet")]
    folder = tmp_path / "my weights"
    assert dl.download_command(models, folder) == (
        f"facefix download gfpgan-1.4 parsenet --weights-dir '{folder}'"
    )


# -- issue #30: missing weights say what to do where the user is; offline means offline ------


def test_missing_weights_offline_one_line_per_file_and_a_step_that_works_offline(tmp_path):
    from facefix_cli.errors import MissingWeightsError
    from tests.weights_server import payload, stand_in

    models = [stand_in(f"m{i}", payload(i, 64), "https://example.invalid/m.pth") for i in (1, 2)]
    with pytest.raises(MissingWeightsError) as caught:
        dl.ensure_weights(models, tmp_path, offline=True)
    lines = str(caught.value).splitlines()
    assert lines[0] == f"missing model weights in {tmp_path} (offline, not downloading):"
    assert lines[1:3] == ["  m1.pth", "  m2.pth"]
    assert lines[3].startswith("next: copy them there, pass --mirror DIR")
    assert "facefix models --find DIR" in lines[3] and "facefix download" not in lines[3]
    assert len(str(caught.value).replace(str(tmp_path), "W")) < 300  # it was ~1,500


def test_offline_takes_what_a_mirror_folder_holds_and_never_the_network(tmp_path):
    from tests.weights_server import payload, stand_in

    data = payload(3, 64)
    model = stand_in("m3", data, "https://example.invalid/m3.pth")
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "m3.pth").write_bytes(data)
    weights = tmp_path / "w"
    dl.ensure_weights([model], weights, offline=True, mirrors=[str(mirror)])
    assert (weights / "m3.pth").read_bytes() == data
    other = stand_in("m4", payload(4, 64), "https://example.invalid/m4.pth")
    with pytest.raises(DownloadError, match="offline, and no mirror folder"):
        dl.download([other], weights, offline=True)  # the URL is never tried
    assert sorted(p.name for p in weights.iterdir()) == ["m3.pth", "m3.pth.sha256.json"]


def test_a_failed_download_leaves_no_lock_file(tmp_path):
    from tests.weights_server import payload, stand_in

    mirror = tmp_path / "mirror"
    mirror.mkdir()  # holds nothing
    model = stand_in("m5", payload(5, 64))
    with pytest.raises(DownloadError):
        dl.download([model], tmp_path / "w", mirrors=[str(mirror)], retries=0)
    assert [p.name for p in (tmp_path / "w").iterdir()] == []


def test_a_dry_run_checks_the_weights_without_fetching(tmp_path):
    from facefix_cli.errors import MissingWeightsError
    from tests.weights_server import RecordingProgress, payload, stand_in

    model = stand_in("m6", payload(6, 64), "https://example.invalid/m6.pth")
    with pytest.raises(MissingWeightsError, match="m6.pth"):
        dl.check_weights([model], tmp_path, offline=True)
    progress = RecordingProgress()
    dl.check_weights([model], tmp_path, offline=False, progress=progress)
    assert progress.messages == [f"dry run: a real run would first fetch m6.pth into {tmp_path}"]
    with pytest.raises(SetupError, match="mirror folder not found"):
        dl.check_weights([model], tmp_path, offline=False, mirrors=[str(tmp_path / "nope")])
    assert list(tmp_path.iterdir()) == []


def test_models_find_copies_released_bytes_under_any_name(tmp_path):
    from facefix_cli.weights.find import find_weights
    from tests.weights_server import payload, stand_in

    wanted, impostor = payload(7, 64), payload(8, 64)
    model = stand_in("gfpgan-like", wanted)
    comfy = tmp_path / "ComfyUI" / "models" / "facerestore_models"
    comfy.mkdir(parents=True)
    (comfy / "a-same-size-other.pth").write_bytes(impostor)
    (comfy / "GFPGANv1.4-renamed.pth").write_bytes(wanted)
    weights = tmp_path / "w"
    taken = find_weights([tmp_path / "ComfyUI"], [model], weights)
    assert [(t.model.name, t.source.name) for t in taken] == [
        ("gfpgan-like", "GFPGANv1.4-renamed.pth")
    ]
    assert (weights / model.file).read_bytes() == wanted
    assert sorted(p.name for p in weights.iterdir()) == [model.file, model.file + ".sha256.json"]
    assert find_weights([tmp_path / "ComfyUI"], [model], weights) == []  # present: left alone
