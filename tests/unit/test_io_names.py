"""io.names: output and hidden names that never collide and always fit, paths shown safely."""

from __future__ import annotations

import os
from pathlib import Path

from facefix_cli.io.names import (
    NAME_MAX,
    TEMPORARY_RE,
    claim_path,
    display_path,
    output_name,
    temporary_path,
)


def test_output_names_never_collide_across_extensions():
    assert output_name("a.png") == "a.fixed.png"
    assert output_name("a.PNG") == "a.fixed.png"
    assert output_name("a.jpg") == "a.jpg.fixed.png"
    assert output_name("a.webp") == "a.webp.fixed.png"
    assert len({output_name(n) for n in ("a.png", "a.jpg", "a.jpeg", "a.webp")}) == 4


def test_hidden_names_fit_however_long_the_output_name(tmp_path):
    output = tmp_path / ("x" * 250 + ".fixed.png")
    for hidden in (temporary_path(output, 4194304), claim_path(output)):
        assert len(os.fsencode(hidden.name)) <= NAME_MAX and hidden.name.startswith(".")
    short = tmp_path / "a.fixed.png"
    first, second = temporary_path(short, 12).name, temporary_path(short, 12).name
    # hidden, this pid's, and not guessable: a new random token each time
    assert first.startswith(".a.fixed.png.12.") and first.endswith(".tmp") and first != second
    assert TEMPORARY_RE.match(first)["stem"] == "a.fixed.png"
    assert TEMPORARY_RE.match(".a.fixed.png.12.tmp")["stem"] == "a.fixed.png"  # older runs
    assert claim_path(short).name == ".a.fixed.png.claim"


def test_display_path_escapes_undecodable_bytes_and_control_characters():
    name = os.fsdecode(b"bad\xff\x1bname.png")
    shown = display_path(Path("/x") / name)
    assert shown == "/x/bad\\xff\\x1bname.png"
    shown.encode("utf-8")  # always encodable: JSON and logs stay valid
    assert display_path("ünï.png") == "ünï.png"
