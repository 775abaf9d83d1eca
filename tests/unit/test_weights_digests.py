"""weights.digests: the per-file digest cache and how files compare with the registry."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path

import pytest

from facefix_cli.io import hashing
from facefix_cli.weights import digests, store
from facefix_cli.weights.registry import REGISTRY


@pytest.fixture
def hashed(monkeypatch) -> list[Path]:
    """Every file really hashed (the cache bypassed), in order."""
    calls: list[Path] = []
    real = hashing.sha256_file

    def counting(path: Path) -> str:
        calls.append(Path(path))
        return real(path)

    monkeypatch.setattr(hashing, "sha256_file", counting)
    return calls


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_digest_is_cached_and_not_computed_again(tmp_path, hashed):
    path = write(tmp_path / "model.pth", b"weights" * 1000)
    expected = hashlib.sha256(path.read_bytes()).hexdigest()
    assert digests.file_sha256(path) == expected
    assert digests.file_sha256(path) == expected
    assert hashed == [path]
    assert digests.sidecar_path(path).name == "model.pth.sha256.json"


def test_a_changed_file_is_hashed_again(tmp_path, hashed):
    path = write(tmp_path / "model.pth", b"a" * 100)
    first = digests.file_sha256(path)
    write(path, b"b" * 100)  # same size, other bytes
    stamp = path.stat().st_mtime_ns + 5_000_000_000
    os.utime(path, ns=(stamp, stamp))  # a coarse clock may not have moved on its own
    second = digests.file_sha256(path)
    assert second == hashlib.sha256(b"b" * 100).hexdigest() != first
    assert len(hashed) == 2


def test_a_replaced_file_with_the_same_size_and_mtime_is_hashed_again(tmp_path, hashed):
    path = write(tmp_path / "model.pth", b"a" * 100)
    digests.file_sha256(path)
    st = path.stat()
    other = write(tmp_path / "other", b"c" * 100)
    os.utime(other, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(other, path)  # a new inode under the old name
    assert digests.file_sha256(path) == hashlib.sha256(b"c" * 100).hexdigest()
    assert len(hashed) == 2


@pytest.mark.parametrize(
    "garbage", [b"", b"not json", b"[1, 2]", b'{"size": "x"}', b"\xff\xfe", b'{"sha256": 5}']
)
def test_a_garbage_sidecar_is_ignored_and_replaced(tmp_path, hashed, garbage):
    path = write(tmp_path / "model.pth", b"weights")
    write(digests.sidecar_path(path), garbage)
    assert digests.file_sha256(path) == hashlib.sha256(b"weights").hexdigest()
    assert digests.cached_sha256(path) == hashlib.sha256(b"weights").hexdigest()
    assert len(hashed) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pth", "model.pth.sha256.json"]


def test_a_sidecar_with_a_forged_digest_for_another_stat_is_not_believed(tmp_path, hashed):
    path = write(tmp_path / "model.pth", b"weights")
    digests.remember_sha256(path, "0" * 64, os.stat(tmp_path))  # the folder's stat, not the file's
    assert digests.file_sha256(path) == hashlib.sha256(b"weights").hexdigest()
    assert hashed == [path]


def test_an_unwritable_folder_costs_only_the_cache(tmp_path, hashed, monkeypatch):
    path = write(tmp_path / "model.pth", b"weights")

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(digests.safefs, "create_exclusive", refuse)
    assert digests.file_sha256(path) == digests.file_sha256(path)
    assert len(hashed) == 2 and not digests.sidecar_path(path).exists()


def test_compare_names_stand_ins_and_unregistered_files(tmp_path):
    x2 = REGISTRY.get("realesrgan-x2plus")
    write(tmp_path / x2.file, b"random weights")
    released = dataclasses.replace(
        REGISTRY.get("parsenet"), size=8, sha256=hashlib.sha256(b"released").hexdigest()
    )
    write(tmp_path / released.file, b"released")
    custom = write(tmp_path / "4x-custom.pth", b"custom")
    models, notices = digests.compare([x2, released], tmp_path, [custom])
    own = {name: hashlib.sha256((tmp_path / name).read_bytes()).hexdigest() for name, _ in models}
    assert models == [(custom.name, own[custom.name]), (x2.file, own[x2.file]),
                      (released.file, released.sha256)]  # fmt: skip
    unregistered, renamed = notices
    assert unregistered.model is None and unregistered.path == custom
    assert (
        "not a released model file" in unregistered.text and own[custom.name] in unregistered.text
    )
    assert renamed.model == x2 and renamed.sha256 == own[x2.file]
    assert f"14 bytes, expected {x2.size}" in renamed.text
    assert renamed.text.endswith("facefix download --force realesrgan-x2plus")
    assert "\n" not in renamed.text


def test_same_size_other_bytes_names_both_digests(tmp_path):
    model = dataclasses.replace(REGISTRY.get("parsenet"), size=4)
    write(tmp_path / model.file, b"abcd")
    _, (notice,) = digests.compare([model], tmp_path)
    assert f"SHA-256 {hashlib.sha256(b'abcd').hexdigest()}, expected {model.sha256}" in notice.text


def test_missing_files_are_left_to_the_loader(tmp_path):
    assert digests.compare([REGISTRY.get("parsenet")], tmp_path, [tmp_path / "gone.pth"]) == (
        [],
        [],
    )


def test_models_states_use_a_cached_digest_without_hashing(tmp_path, hashed):
    good = dataclasses.replace(
        REGISTRY.get("parsenet"), size=4, sha256=hashlib.sha256(b"good").hexdigest()
    )
    bad = dataclasses.replace(REGISTRY.get("gfpgan-1.4"), size=4)
    write(tmp_path / good.file, b"good")
    write(tmp_path / bad.file, b"evil")
    assert [s.state for s in store.model_states([good, bad], tmp_path)] == ["present", "present"]
    verified = store.model_states([good, bad], tmp_path, verify=True)
    assert [s.state for s in verified] == ["verified", "corrupt"]
    assert len(hashed) == 2
    again = store.model_states([good, bad], tmp_path)  # from the cache the check left
    assert [(s.state, s.sha256) for s in again] == [(v.state, v.sha256) for v in verified]
    assert again[1].sha256 == hashlib.sha256(b"evil").hexdigest() in again[1].detail
    assert len(hashed) == 2


def test_install_caches_the_verified_digest(tmp_path, hashed):
    model = dataclasses.replace(
        REGISTRY.get("parsenet"), size=8, sha256=hashlib.sha256(b"released").hexdigest()
    )
    part = write(tmp_path / (model.file + ".part"), b"released")
    final = tmp_path / model.file
    store.install(part, final, model)
    assert digests.file_sha256(final) == model.sha256
    assert hashed == []  # the download had verified it already


def test_the_report_says_which_recorded_digests_are_released_files():
    from facefix_cli.report import html

    x4 = REGISTRY.get("realesrgan-x4plus")
    summary = html.Summary(
        created="now", fixed=1, skipped=0, failed=0, faces=0,
        models=((x4.file, x4.sha256), ("RealESRGAN_x2plus.pth", "ab" * 32), ("mine.pth", "cd" * 32)),
    )  # fmt: skip
    page = html.render(html.Page(summary))
    table = page[page.index("<table class=models>") :].split("</table>")[0]
    rows = [row.strip() for row in table.split("<tr>")[2:]]
    assert [row.count("<code>") for row in rows] == [1, 2, 1]
    assert rows[0].endswith("<td>yes</td></tr>")
    assert "ab" * 32 in rows[1] and REGISTRY.get("realesrgan-x2plus").sha256 in rows[1]
    assert rows[2].endswith("<td>no registry entry</td></tr>")
