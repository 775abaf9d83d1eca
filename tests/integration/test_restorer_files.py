"""--restorer's loading of real files: spandrel face models chosen by their descriptors, ONNX
Runtime models by their inputs, giving the same crops as the torch module they were exported
from; and the errors a file can cause."""

from __future__ import annotations

import warnings
from importlib.util import find_spec

import numpy as np
import pytest
import torch
from checkpoints import (
    export_onnx_restorer,
    realesrgan_state_dict,
    restoreformer_state_dict,
    save_params_ema,
    save_restoreformer_plus_plus,
)

from facefix_cli.errors import SetupError
from facefix_cli.networks.device import face_batch
from facefix_cli.networks.restorers import (
    OnnxRestorer,
    load_onnx_restorer,
    load_restorer,
)

CPU = torch.device("cpu")

# The ONNX tests export torch modules (onnx, onnxscript: dev dependencies) and run them on ONNX
# Runtime (the onnx extra, which CI installs); without them they are skipped, saying why.
ONNX = pytest.mark.skipif(
    find_spec("onnxruntime") is None or find_spec("onnx") is None,
    reason="needs the onnx extra and dev dependencies (uv sync --extra onnx)",
)


def crops(count: int, size: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(count, 3, size, size, generator=torch.Generator().manual_seed(seed))


def torch_restore(model: torch.nn.Module, faces: torch.Tensor, *weight: torch.Tensor):
    """What the ONNX file must give: the module itself on [-1, 1], mapped back to [0, 1]."""
    with torch.inference_mode():
        return (model(faces * 2 - 1, *weight).clamp(-1, 1) + 1) / 2


# --- ONNX Runtime ------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [256, 512, 1024])
@ONNX
def test_onnx_crops_match_torch_and_the_size_comes_from_the_model(tmp_path, size):
    path = tmp_path / f"face{size}.onnx"
    model = export_onnx_restorer(path, size)
    restorer = load_onnx_restorer(path, CPU, tmp_path)
    assert (restorer.size, restorer.takes_fidelity, restorer.architecture) == (size, False, "ONNX")
    faces = crops(2, size)  # two faces through a batch-1 model: one run each
    restored = restorer.restore(faces, fidelity=0.5)
    assert restored.shape == faces.shape and restored.dtype == torch.float32
    assert float((restored - torch_restore(model, faces)).abs().max()) < 1e-3


@ONNX
def test_a_dynamic_batch_onnx_model_runs_faces_together(tmp_path):
    path = tmp_path / "dynamic.onnx"
    model = export_onnx_restorer(path, 256, batch=None)
    restorer = load_onnx_restorer(path, CPU, tmp_path)
    faces = crops(3, 256, seed=1)
    assert float((restorer.restore(faces, 0.5) - torch_restore(model, faces)).abs().max()) < 1e-3


@ONNX
def test_on_the_cpu_onnx_runtime_threads_sleep_and_faces_go_one_at_a_time(tmp_path):
    path = tmp_path / "dynamic.onnx"
    model = export_onnx_restorer(path, 256, batch=None)
    restorer = load_restorer(path, CPU, tmp_path, batch=face_batch(CPU))
    assert isinstance(restorer, OnnxRestorer) and restorer.batch == 1
    options = restorer.session.get_session_options()
    # Waiting threads sleep, as torch's do under OMP_WAIT_POLICY=PASSIVE, and there are as
    # many as torch's.
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert options.intra_op_num_threads == torch.get_num_threads()
    faces = crops(3, 256, seed=1)
    assert float((restorer.restore(faces, 0.5) - torch_restore(model, faces)).abs().max()) < 1e-3


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@ONNX
def test_a_codeformer_style_export_honours_fidelity(tmp_path, dtype):
    path = tmp_path / "codeformer.onnx"
    model = export_onnx_restorer(path, 256, fidelity_dtype=dtype)
    restorer = load_onnx_restorer(path, CPU, tmp_path)
    assert (
        restorer.takes_fidelity
        and restorer.fidelity_dtype
        == {
            torch.float64: np.float64,
            torch.float32: np.float32,
        }[dtype]
    )
    faces = crops(1, 256, seed=2)
    low, high = restorer.restore(faces, 0.2), restorer.restore(faces, 0.9)
    assert float((low - high).abs().max()) > 0.01  # another fidelity, another face
    for fidelity, restored in ((0.2, low), (0.9, high)):
        expected = torch_restore(model, faces, torch.tensor(fidelity, dtype=dtype))
        assert float((restored - expected).abs().max()) < 1e-3


class _Layout(torch.nn.Module):
    def forward(self, x):
        return x[:, :3] * 2


@pytest.mark.parametrize(
    ("shape", "message"),
    [((1, 4, 64, 64), "1x4x64x64 float"), ((1, 3, 64, 32), "1x3x64x32 float")],
)
@ONNX
def test_an_onnx_file_that_is_not_a_face_restorer_is_refused(tmp_path, shape, message):
    path = tmp_path / "other.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation notice
        torch.onnx.export(_Layout(), (torch.zeros(shape),), str(path), dynamo=False)
    with pytest.raises(
        SetupError, match=f"other.onnx is not a face restoration model: .*{message}"
    ):
        load_onnx_restorer(path, CPU, tmp_path)


@ONNX
@ONNX
@pytest.mark.parametrize("absolute", [False, True])
def test_onnx_external_data_outside_the_models_folder_is_refused(tmp_path, absolute):
    """A model file may name its weights' file; one outside its own folder (a file of the
    machine's, read by a root cron) is refused, exit 2, before anything is read from it."""
    import os

    import onnx

    path = tmp_path / "models" / "face.onnx"
    path.parent.mkdir()
    export_onnx_restorer(path, 64)
    onnx.save_model(
        onnx.load(str(path)),
        str(path),
        save_as_external_data=True,
        location="face.bin",
        size_threshold=0,
    )
    outside = tmp_path / "outside.bin"
    os.replace(path.parent / "face.bin", outside)
    model = onnx.load(str(path), load_external_data=False)
    for tensor in model.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = str(outside) if absolute else "../outside.bin"
    path.write_bytes(model.SerializeToString())  # onnx itself will not save such a location
    with pytest.raises(SetupError, match="cannot load face.onnx") as caught:
        load_onnx_restorer(path, CPU, tmp_path)
    assert caught.value.exit_code == 2


def test_a_broken_onnx_file_is_a_one_line_setup_error(tmp_path):
    path = tmp_path / "broken.onnx"
    path.write_bytes(b"not a protobuf at all")
    with pytest.raises(SetupError, match="cannot load broken.onnx with ONNX Runtime") as caught:
        load_restorer(path, CPU, tmp_path)
    assert "\n" not in str(caught.value)


# --- spandrel ----------------------------------------------------------------------------------


def test_restoreformer_loads_through_spandrel_at_512(tmp_path):
    path = save_params_ema(restoreformer_state_dict(), tmp_path / "RestoreFormer.pth")
    restorer = load_restorer(path, CPU, tmp_path)
    assert (restorer.architecture, restorer.size, restorer.takes_fidelity) == (
        "RestoreFormer",
        512,
        False,
    )
    assert not isinstance(restorer, OnnxRestorer)


def test_restoreformer_plus_plus_is_not_an_architecture_spandrel_loads(tmp_path):
    path = save_restoreformer_plus_plus(tmp_path / "RestoreFormer++.ckpt")
    with pytest.raises(SetupError, match="is not a model architecture facefix can load"):
        load_restorer(path, CPU, tmp_path)


def test_an_upscaler_given_as_restorer_is_refused_by_its_descriptor(tmp_path):
    path = save_params_ema(realesrgan_state_dict(2, num_block=1), tmp_path / "x2.pth")
    with pytest.raises(SetupError, match="x2.pth is a ESRGAN SR model .*not a face restoration"):
        load_restorer(path, CPU, tmp_path)


def test_which_face_architectures_spandrel_has():
    """What the README says: spandrel 0.4.2 with spandrel-extra-arches has GFPGAN, CodeFormer
    and RestoreFormer, and neither GPEN nor RestoreFormer++ (their ONNX exports are the way);
    a spandrel that gains them makes this fail, so the README gets updated."""
    import spandrel

    from facefix_cli.networks.load import _install_extra_arches

    _install_extra_arches()
    ids = {support.architecture.id for support in spandrel.MAIN_REGISTRY.architectures()}
    assert {"GFPGAN", "CodeFormer", "RestoreFormer"} <= ids
    assert not {i for i in ids if "GPEN" in i.upper() or "++" in i or "PLUS" in i.upper()}
