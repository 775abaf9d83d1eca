"""io.write's faults: a read-only folder, a name too long."""

from __future__ import annotations

import errno

import pytest

from facefix_cli.errors import (
    OutputWriteError,
)
from facefix_cli.io import safefs
from facefix_cli.io.write import write_atomic


def test_a_read_only_folder_is_one_clean_error_with_its_errno(tmp_path, monkeypatch):
    def refuse(name, *args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(name))

    monkeypatch.setattr(safefs, "create_exclusive", refuse)
    with pytest.raises(OutputWriteError, match="Read-only file system") as caught:
        write_atomic(tmp_path / "o.fixed.png", b"data")
    assert caught.value.errno == errno.EROFS


def test_a_name_too_long_fails_that_write_only(tmp_path):
    with pytest.raises(OutputWriteError, match="File name too long") as caught:
        write_atomic(tmp_path / ("x" * 250 + ".fixed.png"), b"data")
    assert caught.value.errno == errno.ENAMETOOLONG
    assert list(tmp_path.iterdir()) == []
