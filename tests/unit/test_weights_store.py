"""weights.store: the weights folder's states, read without the HTTP stack."""

from __future__ import annotations

import errno
import os
import subprocess
import sys

import pytest

from facefix_cli.errors import SetupError
from facefix_cli.weights import store
from tests.weights_server import (
    payload,
    stand_in,
)


def test_the_store_and_the_models_command_load_no_http_code():
    """`fix`, `models` and workers read the weights folder without the HTTP stack."""
    probe = (
        "import sys, facefix_cli.weights.store, facefix_cli.cli.weights\n"
        "print(sorted(m for m in sys.modules if m.startswith(('http', 'urllib.request', "
        "'facefix_cli.weights.transfer', 'facefix_cli.weights.download'))))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert loaded.strip() == "[]"


def test_check_and_model_states(tmp_path):
    good_data, bad_data = payload(1), payload(2)
    good = stand_in("good", good_data)
    missing = stand_in("gone", payload(3))
    wrong_size = stand_in("short", bad_data)
    wrong_bytes = stand_in("flipped", bad_data)
    (tmp_path / good.file).write_bytes(good_data)
    (tmp_path / wrong_size.file).write_bytes(bad_data[:-1])
    (tmp_path / wrong_bytes.file).write_bytes(payload(4))
    models = [good, missing, wrong_size, wrong_bytes]
    quick = store.model_states(models, tmp_path, verify=False)  # nothing hashed yet
    assert [s.state for s in quick] == ["present", "missing", "corrupt", "present"]

    checked = store.check(models, tmp_path)
    assert [s.state for s in checked] == ["verified", "missing", "corrupt", "corrupt"]
    assert "47999 bytes, expected 48000" in checked[2].detail
    assert "SHA-256" in checked[3].detail

    # The check left each digest beside its file: states without hashing now know them.
    quick = store.model_states(models, tmp_path, verify=False)
    assert [s.state for s in quick] == ["verified", "missing", "corrupt", "corrupt"]


def test_no_part_or_lock_file_is_written_through_a_link(tmp_path):
    """A link planted at `<file>.part` or `<file>.lock` (a shared weights folder) is replaced
    or refused, never written through; the file it points at stays as it was."""
    model = stand_in("model", payload(1))
    target = tmp_path / "target"
    target.write_bytes(b"precious")
    final = tmp_path / "model.pth"
    part, lock = store.part_path(final), store.lock_path(final)
    os.symlink(target, part)
    assert store.resumable_size(model, part) == 0 and not part.exists()  # the link is gone
    os.symlink(target, part)
    with pytest.raises(OSError) as caught:
        store.open_part(part, resume=True)
    assert caught.value.errno == errno.ELOOP
    with store.open_part(part, resume=False) as out:  # a new part replaces the link
        out.write(b"new bytes")
    assert not part.is_symlink() and part.read_bytes() == b"new bytes"
    os.symlink(tmp_path / "created-through-a-link", lock)
    with pytest.raises(SetupError), store.file_lock(lock, model, lambda: None):
        pass
    assert target.read_bytes() == b"precious"
    assert not (tmp_path / "created-through-a-link").exists()
