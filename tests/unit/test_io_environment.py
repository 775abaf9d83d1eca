"""The checks before any network loads (io.environment): faults that would stop the run at its
first write anyway are found at once; anything about single files is left to them."""

from __future__ import annotations

import os
from types import SimpleNamespace

from facefix_cli.io import environment
from facefix_cli.io.environment import output_fault


def test_a_full_disk_is_a_fault_before_anything_loads(tmp_path, monkeypatch):
    output = tmp_path / "a.fixed.png"
    assert output_fault(output, None) is None
    full = SimpleNamespace(f_bavail=10, f_frsize=4096)
    monkeypatch.setattr(environment.os, "statvfs", lambda path: full)
    assert output_fault(output, None) == f"disk full: {tmp_path} (40 kB free)"


def test_an_output_tree_is_made_and_probed_leaving_nothing(tmp_path):
    out = tmp_path / "out" / "deep"
    assert output_fault(tmp_path / "in" / "a.fixed.png", out) is None
    assert out.is_dir() and os.listdir(out) == []


def test_an_output_tree_that_refuses_writes_is_a_fault(tmp_path, monkeypatch):
    def refused(path, mode=0o600, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(environment.safefs, "create_exclusive", refused)
    fault = output_fault(tmp_path / "a.fixed.png", tmp_path / "out")
    assert fault == f"cannot write to {tmp_path / 'out'}: Permission denied"
    # beside the inputs a refused folder fails its own files only: no fault here
    assert output_fault(tmp_path / "a.fixed.png", None) is None


def test_an_output_tree_under_a_file_is_left_to_the_files(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    assert output_fault(tmp_path / "a.fixed.png", tmp_path / "file" / "out") is None
