"""ops.detect: which of the faces found are restored."""

from __future__ import annotations

from ops_support import face_at

from facefix_cli.ops import detect


def test_select_faces_drops_tiny_faces_and_picks_the_centre():
    big_left, big_centre = face_at(20, 50, 0.3), face_at(50, 50, 0.3)
    tiny = face_at(80, 80, 0.02)  # eyes 2.5 px apart
    assert detect.select_faces([big_left, tiny, big_centre], (100, 100)) == [big_left, big_centre]
    assert detect.select_faces([big_left, big_centre], (100, 100), only_center_face=True) == [
        big_centre
    ]
