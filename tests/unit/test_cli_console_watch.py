"""`facefix watch` lines (cli.console.watch): the same timestamped lines as `fix`, saying what
the watch waits for."""

from __future__ import annotations

import io

from facefix_cli.cli.console.watch import PlainWatchEvents


def test_the_first_line_says_the_networks_load_before_the_backlog():
    stream = io.StringIO()
    PlainWatchEvents(stream=stream).walk_started("upscale x2")
    (line,) = stream.getvalue().splitlines()
    assert line.endswith(" watch: upscale x2; loading the networks, then the backlog")
    quiet = io.StringIO()
    PlainWatchEvents(quiet=True, stream=quiet).walk_started("upscale x2")
    assert quiet.getvalue() == ""
