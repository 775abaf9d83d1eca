"""facefix's record: each restoration lists the faces it restored, and reads back the same."""

from __future__ import annotations

import json

import numpy as np
import pytest

from facefix_cli.io.pngchunks import itxt_chunk
from facefix_cli.metadata import FACEFIX_KEY, parse_generation
from facefix_cli.operations import Operation, RecordedFace, facefix_record


def test_a_detection_is_plain_rounded_json():
    landmarks = np.array([[10.123456, 20.5], [30.0, 20.25], [20, 30], [12, 40], [28, 40.001]])
    detection = RecordedFace.rounded(
        np.float32([1.23456, 2.5, 40.0, 50.987]), np.float32(0.98768), landmarks
    )
    data = detection.to_json()
    assert data == {
        "box": [1.23, 2.5, 40.0, 50.99],
        "score": 0.9877,
        "landmarks": [[10.12, 20.5], [30.0, 20.25], [20.0, 30.0], [12.0, 40.0], [28.0, 40.0]],
    }
    assert json.loads(json.dumps(data)) == data  # no numpy values left in it
    assert RecordedFace.from_json(data) == detection


def test_restoration_records_its_faces_and_reads_them_back_from_the_png_record():
    faces = (
        RecordedFace.rounded((4, 6, 30, 34), 0.99),
        RecordedFace.rounded((40, 2, 60, 20), 0.975),
    )
    operations = [
        Operation(type="esrgan", strength=0.75, scale=2, model="RealESRGAN_x2plus.pth"),
        Operation(type="gfpgan", strength=0.8, version="1.4", faces=2, detections=faces),
    ]
    record = facefix_record(operations, "a.png", "0" * 64)
    assert "detections" not in record["operations"][0]  # an upscale finds no faces
    assert record["operations"][1]["detections"] == [
        {"box": [4.0, 6.0, 30.0, 34.0], "score": 0.99},
        {"box": [40.0, 2.0, 60.0, 20.0], "score": 0.975},
    ]
    chunk = itxt_chunk(FACEFIX_KEY, json.dumps(record, sort_keys=True, separators=(",", ":")))
    stored = parse_generation([chunk]).facefix[-1]
    assert [Operation.from_json(op) for op in stored["operations"]] == operations


def test_a_restoration_that_found_no_face_records_an_empty_list():
    operation = Operation(type="codeformer", strength=0.5, fidelity=0.5, faces=0, detections=())
    assert operation.to_json()["detections"] == []
    assert Operation.from_json(operation.to_json()) == operation


def test_records_written_before_detections_existed_still_read():
    old = {"type": "gfpgan", "strength": 0.8, "faces": 1, "model": "GFPGANv1.4.pth"}
    assert Operation.from_json(old).detections is None


@pytest.mark.parametrize(
    "bad", [{"box": [1, 2, 3], "score": 0.9}, {"box": "abcd", "score": 0.9}, {"score": 0.9}]
)
def test_a_malformed_detection_is_an_error_not_a_wrong_face(bad):
    with pytest.raises((ValueError, KeyError, TypeError)):
        Operation.from_json({"type": "gfpgan", "strength": 1.0, "detections": [bad]})
