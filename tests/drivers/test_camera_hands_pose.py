"""The camera hand driver's geometry, with real OpenCV and no models: a hand placed in front of a
pinhole camera comes back as the same wrist-frame keypoints and the wrist pose it was placed at;
intrinsics files are checked and scale with the image size."""

from __future__ import annotations

import math

import numpy as np
import pytest

from drivers.camera_hands.config import CameraHandsConfig
from teleop.vision.intrinsics import Intrinsics
from drivers.camera_hands.pose import OPTICAL_TO_CAMERA, hand_in_camera, wrist_frame
from retarget.kernels.poses import quat_to_mat
from retarget.motions import keypoint_sequence
from teleop.errors import ConfigError


def _rot(axis, angle):
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + math.sin(angle) * k + (1 - math.cos(angle)) * k @ k


@pytest.mark.parametrize("side", ["left", "right"])
def test_a_hand_in_front_of_the_camera_comes_back_in_the_wrist_frame_and_where_it_was(side):
    kp_model = keypoint_sequence(side)[40]  # the hand contract: wrist frame, metres
    axes = wrist_frame(kp_model, side)  # as the keypoints define it (the model's palm is not quite flat)
    assert np.abs(axes - np.eye(3)).max() < 0.05
    kp_wrist = kp_model @ axes
    rot = _rot([0.3, 1.0, 0.2], 2.1)  # the wrist frame in the optical frame
    wrist_at = np.array([0.05, -0.02, 0.45])  # 45 cm in front of the lens
    in_optical = kp_wrist @ rot.T + wrist_at
    intr = Intrinsics.pinhole(1280, 720, 65.0)
    k = intr.matrix()
    px = in_optical[:, :2] / in_optical[:, 2:] * [intr.fx, intr.fy] + [intr.cx, intr.cy]
    world = (in_optical - in_optical.mean(axis=0)) @ _rot([1, 0, 0], 0.0)  # hand-centred, camera axes
    kp, pos, quat = hand_in_camera(world, px, side, k, np.zeros(5))
    assert np.abs(kp - kp_wrist).max() < 1e-6
    assert np.abs(pos - OPTICAL_TO_CAMERA @ wrist_at).max() < 1e-4
    got = np.zeros((3, 3))
    quat_to_mat(quat, got)
    assert np.abs(got - OPTICAL_TO_CAMERA @ rot).max() < 1e-4
    assert pos[0] > 0.4  # x forward out of the lens, in the runtime's Z-up convention


def test_intrinsics_files_are_checked_and_scale_with_the_frames(tmp_path):
    good = tmp_path / "cam.toml"
    good.write_text("fx = 900.0\nfy = 905.0\ncx = 960.0\ncy = 540.0\nwidth = 1920\nheight = 1080\n"
                    "dist = [0.1, -0.2, 0.0, 0.0, 0.05]\n")
    intr = Intrinsics.load(good).for_size(1280, 720)
    assert (intr.fx, intr.cx, intr.cy) == pytest.approx((600.0, 640.0, 360.0)) and len(intr.dist) == 5
    for text, why in [("fx = nan\nfy = 1.0\ncx = 1.0\ncy = 1.0\n", "'fx'"), ("fx = 1.0\n", "'fy'"),
                      ("fx = 1.0\nfy = 1.0\ncx = 1.0\ncy = 1.0\ndist = [1e400]\n", "'dist'"),
                      ("fx = 1.0\nfy = 1.0\ncx = 1.0\ncy = 1.0\nfocal = 3\n", "unknown keys"), ("fx = [", "TOML")]:
        bad = tmp_path / "bad.toml"
        bad.write_text(text)
        with pytest.raises(ConfigError, match=why):
            Intrinsics.load(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        Intrinsics.load(tmp_path / "missing.toml")


def test_driver_options_are_checked():
    for options, why in [({"hfov_deg": "nan"}, "hfov_deg"), ({"max_hands": "3"}, "max_hands"),
                         ({"side": "left"}, "sees both hands"), ({"device": "0", "video": "x.mp4"}, "set one")]:
        with pytest.raises(ConfigError, match=why):
            CameraHandsConfig.from_options(options, "camera_hands")
