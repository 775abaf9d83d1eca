"""The lean start (`networks.lean`, `networks.load`): the networks it builds are the ordinary
loaders' networks, tensor for tensor and output for output, and an upscale-only load imports
neither spandrel's other architectures nor torchvision nor torch._dynamo."""

from __future__ import annotations

import subprocess
import sys
import warnings

import pytest
import torch

from facefix_cli.networks.lean import no_random_init
from facefix_cli.networks.load import (
    load_parsenet,
    load_retinaface,
    load_spandrel_model,
    load_state_dict,
)

CPU = torch.device("cpu")


def ordinary_spandrel(path):
    """spandrel's own way: the file read whole, every architecture, a randomly built module."""
    import spandrel

    state = torch.load(path, map_location="cpu", weights_only=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return spandrel.ModelLoader(CPU).load_from_state_dict(
            spandrel.canonicalize_state_dict(state)
        )


def assert_same_module(lean: torch.nn.Module, ordinary: torch.nn.Module) -> None:
    lean_state, ordinary_state = lean.state_dict(), ordinary.state_dict()
    assert lean_state.keys() == ordinary_state.keys()
    for key, tensor in ordinary_state.items():
        assert torch.equal(lean_state[key], tensor), key


@pytest.mark.parametrize(("file", "architecture"), [("RealESRGAN_x2plus.pth", "ESRGAN"), ("RealESRGAN_x4plus.pth", "ESRGAN"), ("RealESRGAN_x2plus.pth", None)])  # fmt: skip
def test_lean_upscalers_are_the_ordinary_ones_to_the_bit(weights_dir, file, architecture):
    lean = load_spandrel_model(weights_dir / file, CPU, architecture)
    ordinary = ordinary_spandrel(weights_dir / file).eval()
    assert lean.architecture.id == ordinary.architecture.id == "ESRGAN"
    assert (lean.scale, lean.model.training) == (ordinary.scale, False)
    assert_same_module(lean.model, ordinary.model)
    image = torch.rand(1, 3, 12, 16, generator=torch.Generator().manual_seed(4))
    with torch.inference_mode():
        assert torch.equal(lean(image), ordinary(image))


def test_lean_gfpgan_is_the_ordinary_one(gfpgan_weights):
    path = gfpgan_weights / "GFPGANv1.4.pth"
    lean = load_spandrel_model(path, CPU, "GFPGAN")
    assert lean.architecture.id == "GFPGAN"
    assert_same_module(lean.model, ordinary_spandrel(path).model)


def test_a_file_the_named_architecture_does_not_fit_goes_through_the_full_registry(weights_dir):
    # an ESRGAN file named as GFPGAN: detection fails, the registry still finds ESRGAN
    model = load_spandrel_model(weights_dir / "RealESRGAN_x4plus.pth", CPU, "GFPGAN")
    assert model.architecture.id == "ESRGAN"


@pytest.mark.parametrize(("file", "network"), [("detection_mobilenet0.25_Final.pth", "mobile0.25"), ("detection_Resnet50_Final.pth", "resnet50")])  # fmt: skip
def test_lean_face_networks_are_the_ordinary_ones(weights_dir, file, network):
    from facexlib.detection.retinaface import RetinaFace
    from facexlib.parsing.parsenet import ParseNet

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        detector = RetinaFace(network_name=network, half=False, device=CPU)
    state = {k.removeprefix("module."): v for k, v in load_state_dict(weights_dir / file).items()}
    detector.load_state_dict(state)
    assert_same_module(load_retinaface(weights_dir / file, network, CPU), detector)
    parser = ParseNet(in_size=512, out_size=512, parsing_ch=19)
    parser.load_state_dict(load_state_dict(weights_dir / "parsing_parsenet.pth"))
    assert_same_module(load_parsenet(weights_dir / "parsing_parsenet.pth", CPU), parser)


def test_no_random_init_skips_only_the_random_draws_and_is_restored():
    before = torch.nn.init.kaiming_uniform_
    with no_random_init(), no_random_init():
        tensor = torch.full((4,), 3.0)
        assert torch.nn.init.kaiming_uniform_(tensor) is tensor
        assert torch.equal(tensor, torch.full((4,), 3.0))  # untouched
        assert torch.equal(torch.nn.init.zeros_(tensor), torch.zeros(4))  # not a random one
    assert torch.nn.init.kaiming_uniform_ is before


def test_an_upscale_only_load_imports_one_architecture_and_no_torchvision(weights_dir):
    code = (
        "import sys, torch\n"
        "from facefix_cli.networks.load import load_spandrel_model\n"
        "from facefix_cli.networks.lean import spandrel_registry_loaded\n"
        f"m = load_spandrel_model(__import__('pathlib').Path({str(weights_dir / 'RealESRGAN_x2plus.pth')!r}), torch.device('cpu'), 'ESRGAN')\n"  # fmt: skip
        "print(m.architecture.id, spandrel_registry_loaded(),"
        " sorted(n for n in ('torchvision', 'torch._dynamo', 'spandrel.architectures.LaMa') if n in sys.modules))\n"  # fmt: skip
        "import spandrel\n"
        "print(len(spandrel.MAIN_REGISTRY) > 30, spandrel_registry_loaded())\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["ESRGAN False []", "True True"]


def test_the_restorer_and_parser_wait_for_the_first_face(weights_dir, tmp_path):
    from facefix_cli.networks.cache import Networks
    from facefix_cli.recipe import Recipe

    for name in ("RealESRGAN_x2plus.pth", "detection_Resnet50_Final.pth"):
        (tmp_path / name).symlink_to(weights_dir / name)
    (tmp_path / "GFPGANv1.4.pth").write_bytes(b"not a checkpoint")  # its digest is read, no more
    networks = Networks(Recipe(scale=2, restore_with="gfpgan", restore_strength=1.0), tmp_path, CPU)
    assert networks.loading_text() == (
        "loading realesrgan-x2plus, retinaface-resnet50 on cpu "
        "(gfpgan-1.4, parsenet at the first face)"  # all four named (it said "2 networks")
    )
    networks.load_all()  # no real GFPGAN, no ParseNet file here: neither is loaded
    assert {"upscaler", "detector"} <= vars(networks).keys()
    assert not {"restorer", "parser"} & vars(networks).keys()


def test_a_custom_file_is_identified_once_and_its_architecture_remembered(weights_dir, tmp_path):
    """A file of unknown architecture goes through spandrel's whole registry once; the
    architecture found is kept in its digest sidecar, so the next run imports it alone."""
    import shutil

    from facefix_cli.weights import digests

    custom = tmp_path / "my-upscaler.pth"
    shutil.copy(weights_dir / "RealESRGAN_x2plus.pth", custom)
    assert digests.cached_architecture(custom) is None
    first = load_spandrel_model(custom, CPU)
    assert digests.cached_architecture(custom) == "spandrel.architectures.ESRGAN:ESRGANArch"
    assert digests.cached_sha256(custom) is not None  # beside its digest, in one sidecar
    code = (
        "import sys, torch, pathlib\n"
        "from facefix_cli.networks.load import load_spandrel_model\n"
        "from facefix_cli.networks.lean import spandrel_registry_loaded\n"
        f"m = load_spandrel_model(pathlib.Path({str(custom)!r}), torch.device('cpu'))\n"
        "print(m.architecture.id, spandrel_registry_loaded(), 'torchvision' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ESRGAN False False"
    # A sidecar naming anything but a spandrel architecture is never imported from, and a
    # changed file is identified again.
    digests.remember_architecture(custom, "os:system")
    again = load_spandrel_model(custom, CPU)
    assert_same_module(again.model, first.model)
    assert digests.cached_architecture(custom) == "spandrel.architectures.ESRGAN:ESRGANArch"
    custom.write_bytes(custom.read_bytes())  # same bytes, a new mtime: a stale sidecar
    assert digests.cached_architecture(custom) is None
