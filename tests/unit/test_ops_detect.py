"""ops.detect: which of the faces found are restored (`select_faces`), detection on a smaller
copy and the mapping back, and the recipe's face choices as a restoration records them."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch
from helpers import placed_face
from ops_support import face_at

from facefix_cli.errors import SetupError
from facefix_cli.operations import Operation
from facefix_cli.ops import detect
from facefix_cli.recipe import DEFAULT_FACE_THRESHOLD, Recipe, parse_min_face


def test_select_faces_drops_tiny_faces_and_picks_the_centre():
    big_left, big_centre = face_at(20, 50, 0.3), face_at(50, 50, 0.3)
    tiny = face_at(80, 80, 0.02)  # eyes 2.5 px apart
    assert detect.select_faces([big_left, tiny, big_centre], (100, 100)) == [big_left, big_centre]
    assert detect.select_faces([big_left, big_centre], (100, 100), only_center_face=True) == [
        big_centre
    ]


# -- Face choice and detection size, as pure functions: `select_faces`, `detect_faces` on a
# copy and the mapping back, the recipe's options and how a restoration records them.
# Boxes of 100, 60, 40 and 8 px (the last one's eyes 2 px apart), in no order of size.
FACES = [placed_face(300, 100, 60), placed_face(100, 100, 100), placed_face(500, 100, 40)]
FACES.append(placed_face(560, 100, 8))


def sizes(faces: list[detect.Face]) -> list[float]:
    return [round(face.size) for face in faces]


@pytest.mark.parametrize(
    ("options", "kept"),
    [
        ({}, [60, 100, 40]),
        ({"min_size": 60}, [60, 100]),
        ({"min_size": 61}, [100]),
        ({"min_share": 0.4}, [60, 100, 40]),  # 40 px is 0.4 of the largest
        ({"min_share": 0.5}, [60, 100]),
        ({"max_faces": 1}, [100]),
        ({"max_faces": 2}, [60, 100]),  # the largest two, in the detector's order
        ({"max_faces": 3}, [60, 100, 40]),
        ({"min_size": 50, "max_faces": 1}, [100]),
        ({"only_center_face": True}, [60]),  # the image's centre is x = 320
        ({"only_center_face": True, "min_size": 80}, [100]),  # sizes first, then the centre
        ({"min_eye_distance": 0}, [60, 100, 40, 8]),
    ],
)
def test_select_faces_keeps_exactly_the_faces_each_choice_names(options, kept):
    assert sizes(detect.select_faces(FACES, (640, 200), **options)) == kept


def test_max_faces_keeps_the_first_of_faces_of_one_size():
    first, second = placed_face(100, 50, 30, 0.99), placed_face(200, 50, 30, 0.98)
    assert detect.select_faces([first, second], (300, 100), max_faces=1) == [first]


def test_detection_size_brings_the_long_side_down():
    assert detect.detection_size(4096, 3072, 2048) == (2048, 1536)
    assert detect.detection_size(1000, 3001, 1000) == (333, 1000)
    assert detect.detection_size(2048, 2048, 2048) == (2048, 2048)  # up to it: as it is
    assert detect.detection_size(5000, 5000, 0) == (5000, 5000)  # 0: always full size


def blob_image(width: int, height: int, points: np.ndarray, sigma: float) -> torch.Tensor:
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    plane = np.zeros((height, width), np.float32)
    for px, py in points:
        plane += np.exp(-((x - px) ** 2 + (y - py) ** 2) / (2 * sigma**2))
    return torch.from_numpy(np.clip(plane, 0, 1))[None, None].expand(1, 3, height, width)


def blob_detector(seen: list):
    """A FaceDetector that really looks at the pixels: the five landmarks are the centroids of
    the five bright blobs of the image (left to right), the box is their bounding box."""

    def find(images: torch.Tensor) -> list[list[detect.Face]]:
        seen.append(tuple(images.shape))
        found = []
        for image in images:
            plane = image[0].numpy()
            count, labels = cv2.connectedComponents((plane > 0.2).astype(np.uint8))
            ys, xs = np.mgrid[0 : plane.shape[0], 0 : plane.shape[1]]
            points = []
            for label in range(1, count):
                weight = plane * (labels == label)
                points.append(
                    ((weight * xs).sum() / weight.sum(), (weight * ys).sum() / weight.sum())
                )
            landmarks = np.array(sorted(points), np.float32)
            (x0, y0), (x1, y1) = landmarks.min(axis=0), landmarks.max(axis=0)
            found.append([detect.Face((x0, y0, x1, y1), 0.99, landmarks)])
        return found

    return find


def test_landmarks_found_on_the_copy_map_back_within_a_pixel():
    # Five features of a face at sub-pixel places on a 3001 x 1203 image, searched for at full
    # size and on copies of 1000 and 640 px (factors 3 and 4.7, aspect kept only roughly).
    points = np.array([[1203.3, 500.6], [1501.8, 498.2], [1350.5, 640.1], [1230.7, 780.9]])
    points = np.vstack([points, [[1480.2, 782.4]]])
    image = blob_image(3001, 1203, points, sigma=14.0)
    seen: list = []
    (full,) = detect.detect_faces(blob_detector(seen), image, 0)[0]
    by_x = points[np.argsort(points[:, 0])]
    np.testing.assert_allclose(full.landmarks, by_x, atol=0.05)  # the stand-in is exact
    for max_side in (1000, 640):
        (mapped,) = detect.detect_faces(blob_detector(seen), image, max_side)[0]
        assert max(seen[-1][2:]) == max_side
        np.testing.assert_allclose(mapped.landmarks, full.landmarks, atol=1.0)
        np.testing.assert_allclose(mapped.box, full.box, atol=1.0)
    assert seen[0] == (1, 3, 1203, 3001)


def test_images_up_to_the_detect_size_reach_the_detector_as_they_are():
    image = torch.rand(2, 3, 40, 64)
    given = []

    def detector(images):
        given.append(images)
        return [[], []]

    detect.detect_faces(detector, image, 64)
    detect.detect_faces(detector, image, 0)
    assert given[0] is image and given[1] is image


def test_scale_faces_follows_the_resize_geometry():
    face = placed_face(10.0, 20.0, 8.0)
    (scaled,) = detect.scale_faces([face], 2.0, 4.0)
    # Pixel x's centre is at x + 0.5 of the image's width; that place is kept.
    expected = (face.landmarks.astype(np.float64) + 0.5) * [2.0, 4.0] - 0.5
    np.testing.assert_allclose(scaled.landmarks, expected, atol=1e-4)
    assert scaled.box[2] - scaled.box[0] == pytest.approx(16.0)
    assert scaled.box[3] - scaled.box[1] == pytest.approx(32.0)
    assert scaled.box[0] == pytest.approx((6.0 + 0.5) * 2 - 0.5)
    assert scaled.score == face.score


# --- the recipe and the record ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "parsed"),
    [("64", (64.0, 0.0)), ("0.3x", (0.0, 0.3)), (" 1X ", (0.0, 1.0)), ("0", (0.0, 0.0))],
)
def test_min_face_is_pixels_or_a_share(text, parsed):
    assert parse_min_face(text) == parsed


@pytest.mark.parametrize("text", ["", "x", "-3", "1.5x", "big", "nan", "inf"])
def test_a_bad_min_face_is_a_setup_error(text):
    with pytest.raises(SetupError, match="--min-face"):
        parse_min_face(text)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"face_threshold": 1.0}, "--face-threshold"),
        ({"face_threshold": -0.1}, "--face-threshold"),
        ({"max_faces": 0}, "--max-faces"),
        ({"detect_size": 32}, "--detect-size"),
        ({"detect_size": -1}, "--detect-size"),
        ({"min_face": 10, "min_face_share": 0.5}, "--min-face"),
        ({"order": "sideways"}, "--order"),
    ],
)
def test_impossible_face_choices_are_refused_before_work(fields, message):
    with pytest.raises(SetupError, match=message):
        Recipe(restore_with="gfpgan", restore_strength=0.5, **fields).validate()


def test_the_recipe_shows_only_choices_that_differ_from_the_defaults():
    plain = Recipe(scale=2, restore_with="gfpgan", restore_strength=0.8)
    assert plain.face_rows() == []
    assert DEFAULT_FACE_THRESHOLD == detect.CONFIDENCE_THRESHOLD
    chosen = Recipe(
        scale=2,
        restore_with="gfpgan",
        restore_strength=0.8,
        face_threshold=0.9,
        min_face_share=0.3,
        max_faces=2,
        detect_size=0,
        order="restore-first",
    )
    assert chosen.face_rows() == [
        ("face threshold", "0.9"),
        ("min face", "0.3x the largest"),
        ("max faces", "2"),
        ("detect size", "full"),
        ("order", "restore-first"),
    ]
    assert ("min face", "0.3x the largest") in chosen.rows()
    assert Recipe(restore_with="gfpgan", restore_strength=1, min_face=64).face_rows() == [
        ("min face", "64 px")
    ]


def test_a_restoration_records_its_choices_and_skipped_faces_and_reads_them_back():
    operation = Operation(
        type="gfpgan", strength=0.8, faces=2, found=5, min_face=64.0, max_faces=2, detect_size=0
    )
    data = operation.to_json()
    assert data == {
        "type": "gfpgan",
        "strength": 0.8,
        "faces": 2,
        "found": 5,
        "min_face": 64.0,
        "max_faces": 2,
        "detect_size": 0,
    }
    assert Operation.from_json(data) == operation
    assert operation.skipped == 3
    assert operation.face_choices() == [
        "min face 64 px",
        "max faces 2",
        "detect size full",
    ]
    assert operation.face_counts() == ["2 faces restored", "3 skipped of 5 found"]
    assert Operation(type="gfpgan", strength=0.8, faces=2).face_choices() == []


# --- where people see them ------------------------------------------------------------------


def test_the_log_line_counts_skipped_faces_only_when_there_are_some():
    from pathlib import Path

    from facefix_cli.cli.console.fix import describe
    from facefix_cli.pipeline.results import FileResult, Status

    result = FileResult(Path("a.png"), Path("a.fixed.png"), Status.FIXED, faces=2, seconds=1.4)
    assert "(2 faces, 1.4s)" in describe(result)
    result.faces_skipped = 3
    assert "(2 faces, 3 skipped, 1.4s)" in describe(result)


def test_info_and_the_report_show_the_choices_and_the_skipped_faces():
    from facefix_cli.metadata.generation import describe_facefix_record

    operation = Operation(type="gfpgan", strength=0.8, faces=1, found=4, min_face_share=0.3)
    line = describe_facefix_record(
        {"facefix_version": "0.1.0", "operations": [operation.to_json()]}
    )
    # One rendering: info's line is the report's `Operation.describe()`.
    assert line == f"facefix 0.1.0: {operation.describe()}"
    assert operation.describe() == (
        "gfpgan: strength 0.8, min face 0.3x the largest, 1 face restored, 3 skipped of 4 found"
    )
    assert operation.describe(counts=False) == "gfpgan: strength 0.8, min face 0.3x the largest"
    plain = Operation(type="gfpgan", strength=0.8, faces=1)
    assert "skipped" not in describe_facefix_record({"operations": [plain.to_json()]})


def test_the_command_line_reaches_the_recipe(tmp_path):
    from PIL import Image
    from typer.testing import CliRunner

    from facefix_cli.cli import app

    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    common = ["fix", str(tmp_path), "-G", "0.8", "-U", "2", "--dry-run", "--json"]
    chosen = [
        "--min-face", "0.3x", "--max-faces", "2", "--face-threshold", "0.9",
        "--detect-size", "1024", "--order", "restore-first",
    ]  # fmt: skip
    # no weights here: not offline, the dry run only says a real run would fetch them
    online = {"FACEFIX_OFFLINE": ""}
    args = [*common, *chosen, "--weights-dir", str(tmp_path)]
    result = CliRunner().invoke(app, args, env=online)
    recipe = json.loads(result.stdout)["recipe"]
    assert recipe["min face"] == "0.3x the largest" and recipe["max faces"] == "2"
    assert recipe["face threshold"] == "0.9" and recipe["detect size"] == "1024"
    assert recipe["order"] == "restore-first"
    bad = CliRunner().invoke(app, [*common, "--min-face", "big", "--weights-dir", str(tmp_path)])
    assert bad.exit_code == 2 and "--min-face 'big'" in json.loads(bad.stdout)["error"]
