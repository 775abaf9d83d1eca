"""The ledger (io.ledger): which recipe made each output of a folder, so a run with another
recipe says why it skips a done output; a hint read from the walk's listing, written safely."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from facefix_cli.io import ledger
from facefix_cli.io.discover import DONE_REASON, Kind, scan
from facefix_cli.recipe import Recipe

PNG = b"\x89PNG\r\n\x1a\n" + bytes(16)
OTHER = 4242  # another user: any uid but root's and ours
as_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="plays two users by chown, which needs root (CI runs as root)"
)


def tag(recipe: Recipe) -> ledger.RecipeTag:
    return ledger.RecipeTag(tuple(recipe.rows()))


X2, X4 = tag(Recipe(scale=2)), tag(Recipe(scale=4))
X2_CODEFORMER = tag(Recipe(scale=2, restore_with="codeformer", restore_strength=0.5))


def done_pair(folder: Path, stem: str, mode: int = 0o644) -> Path:
    (folder / f"{stem}.png").write_bytes(PNG)
    output = folder / f"{stem}.fixed.png"
    output.write_bytes(PNG + os.fsencode(stem))
    output.chmod(mode)
    return output


def reasons(folder: Path, recipe: ledger.RecipeTag | None) -> dict[str, str]:
    return {f.source.name: f.reason for f in scan([folder], recipe=recipe) if f.kind is Kind.DONE}


def test_a_done_output_made_with_another_recipe_says_which(tmp_path):
    a, b = done_pair(tmp_path, "a"), done_pair(tmp_path, "b")
    ledger.record(tmp_path, [a, b], X2)
    assert reasons(tmp_path, X2) == {"a.png": DONE_REASON, "b.png": DONE_REASON}
    made = "output exists, made with upscale x2 (use --overwrite)"
    assert reasons(tmp_path, X4) == {"a.png": made, "b.png": made}
    assert reasons(tmp_path, None) == {"a.png": DONE_REASON, "b.png": DONE_REASON}


def test_the_last_entry_for_an_output_wins_and_names_never_seen_say_nothing_new(tmp_path):
    a, b = done_pair(tmp_path, "a"), done_pair(tmp_path, "b")
    ledger.record(tmp_path, [a, b], X2)
    ledger.record(tmp_path, [a], X4)  # `a` redone with --overwrite and x4
    done_pair(tmp_path, "c")  # made before the ledger existed
    assert reasons(tmp_path, X4) == {
        "a.png": DONE_REASON,
        "b.png": "output exists, made with upscale x2 (use --overwrite)",
        "c.png": DONE_REASON,
    }


def test_an_output_changed_since_it_was_entered_is_not_vouched_for(tmp_path):
    a = done_pair(tmp_path, "a")
    ledger.record(tmp_path, [a], X2)
    a.write_bytes(PNG + b"edited by hand, longer than before")
    assert reasons(tmp_path, X4) == {"a.png": DONE_REASON}


def test_the_differences_name_what_the_output_had_and_what_it_lacked():
    gfpgan = tag(Recipe(scale=2, restore_with="gfpgan", restore_strength=0.8))
    x4_strong = tag(Recipe(scale=4, upscale_strength=1.0))
    assert ledger.differences(X2.rows, X4.rows) == "made with upscale x2"
    # a step on one side only is named by its first row, not its fidelity and detector too
    assert ledger.differences(X2_CODEFORMER.rows, X2.rows) == "made with codeformer 0.5"
    assert ledger.differences(X2.rows, X2_CODEFORMER.rows) == "made without codeformer 0.5"
    assert (
        ledger.differences(X2.rows, tag(Recipe(scale=4, restore_with="codeformer",
                                               restore_strength=0.5)).rows)
        == "made with upscale x2, without codeformer 0.5"
    )  # fmt: skip
    assert ledger.differences(gfpgan.rows, X2_CODEFORMER.rows) == (
        "made with gfpgan 0.8, without codeformer 0.5"
    )
    assert ledger.differences(X2_CODEFORMER.rows, x4_strong.rows) == (
        "made with upscale x2, upscale strength 0.75, codeformer 0.5"
    )
    assert ledger.differences(gfpgan.rows, tag(Recipe(scale=4, restore_with="codeformer",
                                                      restore_strength=0.5, upscale_strength=1.0)
                                               ).rows) == (
        "made with upscale x2, upscale strength 0.75, gfpgan 0.8, ..."
    )  # fmt: skip
    assert ledger.differences(X2.rows, X2.rows) == "made with another recipe"


def test_a_broken_or_foreign_ledger_says_nothing_and_breaks_nothing(tmp_path):
    a = done_pair(tmp_path, "a")
    (tmp_path / ledger.LEDGER_NAME).write_bytes(b'not json\n{"output": 3}\n\xff\xfe\n')
    assert reasons(tmp_path, X4) == {"a.png": DONE_REASON}
    ledger.record(tmp_path, [a], X2)  # appended after the junk: still read
    assert reasons(tmp_path, X4) == {
        "a.png": "output exists, made with upscale x2 (use --overwrite)"
    }


def test_a_name_that_is_not_utf8_round_trips(tmp_path):
    name = os.fsdecode(b"caf\xe9")
    output = done_pair(tmp_path, name)
    ledger.record(tmp_path, [output], X2)
    assert reasons(tmp_path, X4) == {
        f"{name}.png": "output exists, made with upscale x2 (use --overwrite)"
    }


def test_the_ledger_is_never_written_through_a_link_or_a_hard_link(tmp_path):
    a = done_pair(tmp_path, "a")
    victim = tmp_path / "victim"
    victim.write_text("keep")
    os.symlink(victim, tmp_path / ledger.LEDGER_NAME)
    ledger.record(tmp_path, [a], X2)
    assert victim.read_text() == "keep"
    assert ledger.read(tmp_path) is None  # a link is not read either
    os.unlink(tmp_path / ledger.LEDGER_NAME)
    os.link(victim, tmp_path / ledger.LEDGER_NAME)
    ledger.record(tmp_path, [a], X2)
    assert victim.read_text() == "keep"


def test_the_ledger_is_no_more_readable_than_the_outputs_it_lists(tmp_path):
    private = done_pair(tmp_path, "private", 0o600)
    shared = done_pair(tmp_path, "shared", 0o644)
    ledger.record(tmp_path, [shared], X2)
    assert stat.S_IMODE((tmp_path / ledger.LEDGER_NAME).stat().st_mode) & ~0o644 == 0
    ledger.record(tmp_path, [private], X2)  # narrowed before a private name goes in
    assert stat.S_IMODE((tmp_path / ledger.LEDGER_NAME).stat().st_mode) & ~0o600 == 0


@as_root
def test_as_root_the_ledger_is_the_outputs_owners_and_another_users_is_left_alone(tmp_path):
    a = done_pair(tmp_path, "a")
    os.chown(a, OTHER, OTHER)
    ledger.record(tmp_path, [a], X2)
    info = (tmp_path / ledger.LEDGER_NAME).stat()
    assert (info.st_uid, info.st_gid) == (OTHER, OTHER)
    root_owned = tmp_path / "root"
    root_owned.mkdir()
    b = done_pair(root_owned, "b")
    (root_owned / ledger.LEDGER_NAME).write_text("")
    os.chown(root_owned / ledger.LEDGER_NAME, OTHER, OTHER)  # planted by the other user
    ledger.record(root_owned, [b], X2)  # root's outputs: not added to that user's file
    assert (root_owned / ledger.LEDGER_NAME).read_text() == ""
