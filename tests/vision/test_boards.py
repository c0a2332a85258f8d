"""Board specs, the printed image, and finding the board in it (orientation included)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from teleop.errors import ConfigError
from teleop.vision.boards import CharucoBoard, CheckerBoard, NotFound, parse_board


def test_specs_parse():
    b = parse_board("checker:9x6:0.025")
    assert isinstance(b, CheckerBoard) and (b.cols, b.rows, b.square_m) == (9, 6, 0.025)
    assert b.squares == (10, 7) and b.orientation_known and b.spec == "checker:9x6:0.025"
    c = parse_board("charuco:7x5:0.04:0.03")
    assert isinstance(c, CharucoBoard) and c.dictionary == "4x4_50" and c.squares == (7, 5)
    assert parse_board(c.spec) == c
    assert parse_board("charuco:8x6:0.03:0.022:apriltag_36h11").dictionary == "apriltag_36h11"
    assert not parse_board("checker:8x6:0.02").orientation_known  # looks the same turned half a turn


@pytest.mark.parametrize("spec, match", [
    ("circles:4x11:0.02", "unknown kind 'circles'; give checker:COLSxROWS"),
    ("checker:9x6", "checker takes checker:COLSxROWS:SQUARE_M"),
    ("checker:2x6:0.02", "size '2x6' must be COLSxROWS inner corners, each 3..100"),
    ("checker:9by6:0.02", "size '9by6'"),
    ("checker:9x6:nan", "SQUARE_M 'nan' must be a length in metres"),
    ("checker:9x6:25", "SQUARE_M '25' must be a length in metres, 0.001..1"),
    ("charuco:7x5:0.04", "charuco takes charuco:COLSxROWS:SQUARE_M:MARKER_M"),
    ("charuco:7x5:0.04:0.05", "marker .* must be smaller than the square"),
    ("charuco:7x5:0.04:0.03:9x9_1", "unknown marker dictionary '9x9_1'; known: 4x4_100"),
    ("charuco:12x12:0.02:0.015", "72 markers but dictionary 4x4_50 only 50"),
])
def test_bad_specs(spec, match):
    with pytest.raises(ConfigError, match=match):
        parse_board(spec)


@pytest.mark.parametrize("spec", ["checker:9x6:0.025", "charuco:7x5:0.04:0.03"])
def test_generated_board_is_found_and_numbered_from_its_top_left(spec):
    board = parse_board(spec)
    px = 40
    img = board.generate_image(px)
    nx, ny = board.squares
    assert img.shape == ((ny + 2) * px, (nx + 2) * px) and img.dtype == np.uint8
    # corner (i, j) of the board frame [m] sits at pixel (margin + i * px - 0.5) in OpenCV's convention
    expected = (board.corners_m()[:, :2] / board.square_m + 1) * px - 0.5
    for turned in (False, True):
        view = board.detect(cv2.rotate(img, cv2.ROTATE_180) if turned else img)
        assert not isinstance(view, NotFound), view
        pts = view.image_points.astype(np.float64)
        if turned:  # the same physical corners, seen in the turned picture
            pts = np.array(img.shape[1::-1]) - 1 - pts
        assert np.allclose(pts, expected[view.ids], atol=0.2)
        assert np.allclose(view.object_points, board.corners_m()[view.ids])


def test_no_board_in_a_blank_picture():
    blank = np.full((480, 640), 200, np.uint8)
    for spec in ("checker:9x6:0.025", "charuco:7x5:0.04:0.03"):
        assert isinstance(parse_board(spec).detect(blank), NotFound)


def test_charuco_needs_enough_corners():
    board = parse_board("charuco:7x5:0.04:0.03")
    img = board.generate_image(40)
    found = board.detect(img[:, : 3 * 40])  # the margin and two columns of squares: too few corners
    assert isinstance(found, NotFound) and "corners" in found.reason
