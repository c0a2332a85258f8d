"""Calibration against MuJoCo renders of a board with a known camera: the intrinsics, a fixed
camera's pose from a board at a known pose, and hand-eye in both modes, each compared with the
truth the scene was built from; and the pictures that cannot give a calibration."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from board_scene import BoardScene, transform

from teleop.vision.boards import NotFound, parse_board
from teleop.vision.calibration import board_pose, calibrate_intrinsics, camera_pose_from_board, find_boards
from teleop.vision.errors import CalibrationError
from teleop.vision.handeye import calibrate_hand_eye
from teleop.vision.images import Frame
from teleop.vision.intrinsics import Intrinsics
from teleop.vision.transforms import rotation_angle_deg

CHARUCO = "charuco:7x5:0.04:0.03"
T_WORLD_BOARD = transform([0.55, 0.10, 0.02], [180.0, 0.0, 30.0])  # lying face up on a table, turned 30 deg


def gray(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def errors(t: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """Position [mm] and angle [deg] between two poses."""
    return (float(np.linalg.norm(t[:3, 3] - truth[:3, 3]) * 1000),
            rotation_angle_deg(t[:3, :3].T @ truth[:3, :3]))


def test_scene_matches_projection():
    """The texture lies on the quad as the board frame says (orientation and scale), and the
    camera is the pinhole the scene claims: detected corners = projected known corners."""
    board = parse_board(CHARUCO)
    with BoardScene(board) as scene:
        k = scene.intrinsics
        worst = []
        for t_camera_board in scene.views(4, seed=7):
            view = board.detect(gray(scene.render(scene.wrist_for(t_camera_board))))
            assert not isinstance(view, NotFound), view
            p = (t_camera_board[:3, :3] @ view.object_points.T).T + t_camera_board[:3, 3]
            projected = np.stack([k.fx * p[:, 0] / p[:, 2] + k.cx, k.fy * p[:, 1] / p[:, 2] + k.cy], axis=1)
            worst.append(np.abs(view.image_points - projected).max())
    assert max(worst) < 0.5, worst


@pytest.mark.parametrize("spec", [CHARUCO, "checker:9x6:0.025"])
def test_intrinsics_from_renders(spec):
    board = parse_board(spec)
    with BoardScene(board, fovy_deg=50.0) as scene:
        frames = [Frame(f"v{i:02d}.png", gray(scene.render(scene.wrist_for(t))))
                  for i, t in enumerate(scene.views(15, seed=1, shift=0.5))]
        truth = scene.intrinsics
    result = calibrate_intrinsics(find_boards(frames, board))
    k = result.intrinsics
    print(f"{spec}: fx {k.fx / truth.fx - 1:+.3%} fy {k.fy / truth.fy - 1:+.3%} cx {k.cx - truth.cx:+.2f} "
          f"cy {k.cy - truth.cy:+.2f} px, RMS {result.rms_px:.3f} px")
    assert len(result.used) == 15 and not result.rejected
    assert abs(k.fx / truth.fx - 1) < 0.01 and abs(k.fy / truth.fy - 1) < 0.01
    assert abs(k.cx - truth.cx) < 2.0 and abs(k.cy - truth.cy) < 2.0
    assert result.rms_px < 0.3 and (k.width, k.height) == (640, 480)
    assert np.all(np.abs(k.dist) < 0.02)  # the renderer has no lens distortion


def test_camera_pose_from_a_board_at_a_known_pose():
    board = parse_board(CHARUCO)
    with BoardScene(board, T_world_board=T_WORLD_BOARD) as scene:
        t_world_camera = scene.wrist_for(scene.views(1, seed=5, distance_m=(0.5, 0.5))[0])
        still = gray(scene.render(t_world_camera)).astype(np.float64)
        intrinsics = scene.intrinsics
    rng = np.random.default_rng(0)  # the same still scene, with sensor noise in each picture
    frames = [Frame(f"p{i}.png", np.clip(still + rng.normal(0, 2.0, still.shape), 0, 255).astype(np.uint8))
              for i in range(4)]
    result = camera_pose_from_board(find_boards(frames, board), intrinsics, T_WORLD_BOARD)
    d_mm, d_deg = errors(result.pose.matrix(), t_world_camera)
    print(f"camera pose: {d_mm:.2f} mm, {d_deg:.3f} deg off; spread {result.spread.pos_max_m * 1000:.2f} mm")
    assert d_mm < 5.0 and d_deg < 1.0
    assert result.pose.parent == "base" and len(result.used) == 4 and not result.warnings


@pytest.mark.parametrize("mode", ["eye-in-hand", "eye-to-hand"])
def test_hand_eye_recovers_the_mount(mode):
    board = parse_board(CHARUCO)
    if mode == "eye-in-hand":  # a camera on the wrist, 8 cm out and turned; the board still on the table
        truth = transform([0.03, -0.05, 0.08], [5.0, -10.0, 90.0])
        scene = BoardScene(board, camera_on_wrist=True, T_wrist_camera=truth, T_world_board=T_WORLD_BOARD)
    else:  # a fixed camera; the gripper holds the board 10 cm out
        truth = transform([0.2, -0.4, 0.6], [-120.0, 0.0, 60.0])
        scene = BoardScene(board, camera_on_wrist=False, T_world_camera=truth,
                           T_wrist_board=transform([0.0, 0.05, 0.10], [0.0, 90.0, 0.0]))
    with scene:
        frames, poses = [], {}
        for i, t_camera_board in enumerate(scene.views(12, seed=3)):
            t_world_wrist = scene.wrist_for(t_camera_board)
            poses[f"h{i:02d}.png"] = t_world_wrist
            frames.append(Frame(f"h{i:02d}.png", gray(scene.render(t_world_wrist))))
        intrinsics = scene.intrinsics
    result = calibrate_hand_eye(find_boards(frames, board), intrinsics, poses, mode)
    d_mm, d_deg = errors(result.T, truth)
    print(f"{mode}: {d_mm:.2f} mm, {d_deg:.3f} deg off ({result.method}); residual "
          f"{result.spread.pos_rms_m * 1000:.2f} mm")
    assert d_mm < 5.0 and d_deg < 1.0
    assert result.camera_pose().parent == ("wrist" if mode == "eye-in-hand" else "base")
    if mode == "eye-in-hand":  # the board's pose the pictures agree on is where it lies
        assert errors(result.constant, T_WORLD_BOARD)[0] < 5.0


def test_board_pose_in_one_picture():
    board = parse_board("checker:9x6:0.025")
    with BoardScene(board) as scene:
        t_camera_board = scene.views(1, seed=11)[0]
        view = board.detect(gray(scene.render(scene.wrist_for(t_camera_board))))
        pose = board_pose(view, scene.intrinsics)
    d_mm, d_deg = errors(pose.T_camera_board, t_camera_board)
    assert d_mm < 5.0 and d_deg < 1.0 and pose.error_px < 0.3


# -- pictures that cannot give a calibration --------------------------------------------------------


def test_no_board_in_view_says_what_to_do():
    board = parse_board(CHARUCO)
    with BoardScene(board) as scene:  # the camera looks away from the board
        away = scene.wrist_for(scene.views(1)[0]) @ transform([0, 0, 0], [0, 180, 0])
        frames = [Frame(f"away{i}.png", gray(scene.render(away))) for i in range(10)]
    with pytest.raises(CalibrationError, match=r"only 0 of 10 pictures show enough of the board .* at least 8 are "
                       r"needed: take pictures .* tilted .* Left out: 10 x no ChArUco corners found"):
        calibrate_intrinsics(find_boards(frames, board))


def test_too_few_pictures_with_the_whole_checkerboard():
    board = parse_board("checker:9x6:0.025")
    with BoardScene(board) as scene:
        views = scene.views(3, seed=2)
        frames = [Frame(f"v{i}.png", gray(scene.render(scene.wrist_for(t)))) for i, t in enumerate(views)]
        frames += [Frame(f"cut{i}.png", f.gray[:, :200]) for i, f in enumerate(frames)]  # another size
    with pytest.raises(CalibrationError, match=r"only 3 of 6 pictures show the whole board .* at least 8 are needed"):
        calibrate_intrinsics(find_boards(frames, board))


def test_no_pictures_and_undecodable_pictures():
    board = parse_board(CHARUCO)
    with pytest.raises(CalibrationError, match="no pictures"):
        find_boards([], board)
    with pytest.raises(CalibrationError, match="none of the 2 pictures could be decoded"):
        find_boards([Frame("a.png", None), Frame("b.png", None)], board)


def test_a_symmetric_checkerboard_gives_no_pose():
    board = parse_board("checker:8x6:0.025")
    with BoardScene(board) as scene:
        frames = [Frame("v.png", gray(scene.render(scene.wrist_for(scene.views(1)[0]))))]
        intrinsics = scene.intrinsics
    with pytest.raises(CalibrationError, match="looks the same turned half a turn"):
        camera_pose_from_board(find_boards(frames, board), intrinsics, np.eye(4))


def test_hand_eye_refuses_a_wrist_that_only_turns_about_one_axis():
    board = parse_board(CHARUCO)
    with BoardScene(board, T_world_board=T_WORLD_BOARD) as scene:
        start = scene.wrist_for(scene.views(1, seed=4)[0])
        poses, frames = {}, []
        for i, angle in enumerate(np.linspace(-20, 20, 6)):  # spinning about the optical axis only
            t = start @ transform([0, 0, 0], [0, 0, angle])
            poses[f"s{i}.png"] = t
            frames.append(Frame(f"s{i}.png", gray(scene.render(t))))
        intrinsics = scene.intrinsics
    with pytest.raises(CalibrationError, match="turns about one axis only"):
        calibrate_hand_eye(find_boards(frames, board), intrinsics, poses, "eye-in-hand")
    with pytest.raises(CalibrationError, match="turns at most 0.0 deg"):
        calibrate_hand_eye(find_boards(frames, board), intrinsics, dict.fromkeys(poses, start), "eye-in-hand")


def test_hand_eye_names_must_match():
    board = parse_board(CHARUCO)
    with BoardScene(board) as scene:
        frames = [Frame(f"v{i}.png", gray(scene.render(scene.wrist_for(t)))) for i, t in enumerate(scene.views(5))]
        intrinsics = scene.intrinsics
    with pytest.raises(CalibrationError, match="none of the 5 pictures with the board has a wrist pose"):
        calibrate_hand_eye(find_boards(frames, board), intrinsics, {"other.png": np.eye(4)}, "eye-in-hand")


def test_many_pictures_are_thinned_and_another_aspect_ratio_is_refused():
    board = parse_board(CHARUCO)
    with BoardScene(board) as scene:
        frames = [Frame(f"v{i:02d}.png", gray(scene.render(scene.wrist_for(t))))
                  for i, t in enumerate(scene.views(12, seed=6, shift=0.5))]
        truth = scene.intrinsics
    found = find_boards(frames, board)
    result = calibrate_intrinsics(found, max_images=9)
    assert len(result.used) == 9 and [r.reason.startswith("not needed") for r in result.rejected] == [True] * 3
    wide = Intrinsics(truth.fx * 3, truth.fy * 2.25, 960.0, 540.0, width=1920, height=1080)
    with pytest.raises(CalibrationError, match=r"for 1920x1080 px, the pictures are 640x480: another aspect ratio"):
        camera_pose_from_board(found, wide, np.eye(4))
    scaled = Intrinsics(truth.fx * 2, truth.fy * 2, truth.cx * 2, truth.cy * 2, width=1280, height=960)
    assert camera_pose_from_board(found.only(["v00.png"], "one is enough"), scaled, np.eye(4)).per_image_px[0] < 0.5
