"""ops.align: landmarks onto the FFHQ template, and the warp against OpenCV's."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from conftest import gradient_image
from ops_support import FACE_PLACES, assert_close_to_opencv, face_at, rotated_face

from facefix_cli.ops import align


def test_alignment_maps_landmarks_onto_the_template():
    face = face_at(120, 90, 0.25)
    matrix = align.alignment_matrix(face.landmarks)
    mapped = np.hstack([face.landmarks, np.ones((5, 1))]) @ matrix.T
    np.testing.assert_allclose(mapped, align.FFHQ_TEMPLATE_512, atol=1e-2)
    crop = align.warp_face(gradient_image(240, 180), matrix)
    assert crop.shape == (512, 512, 3)


@pytest.mark.parametrize("place", FACE_PLACES)
def test_alignment_warp_agrees_with_opencv(place):
    image = gradient_image(300, 240, seed=2)  # textured: every pixel differs from its neighbours
    matrix = rotated_face(*place)
    opencv = cv2.warpAffine(
        image, matrix, (512, 512), borderMode=cv2.BORDER_CONSTANT, borderValue=align.BORDER_RGB
    )
    assert_close_to_opencv(align.warp_face(image, matrix), opencv)
