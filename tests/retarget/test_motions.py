"""Synthetic motion set: determinism, pinch geometry, ranges, smooth transitions."""

from __future__ import annotations

import numpy as np
import pytest

from retarget.human_hand import ANGLE_LIMITS_RAD, TIP_INDEX, HandCalibration, HumanHand
from retarget.motions import (
    MOTION_ORDER,
    POSE_NAMES,
    keypoint_sequence,
    min_jerk,
    motion_set,
    pose,
    poses,
)
from teleop.errors import ConfigError


def _within_limits(angles: np.ndarray) -> bool:
    return bool(
        np.all(angles >= ANGLE_LIMITS_RAD[:, 0]) and np.all(angles <= ANGLE_LIMITS_RAD[:, 1])
    )


def test_motion_set_is_deterministic() -> None:
    a, la = motion_set()
    b, lb = motion_set()
    np.testing.assert_array_equal(a, b)
    assert la == lb
    c, _ = motion_set(seed=1)
    assert not np.array_equal(a, c)
    np.testing.assert_allclose(a, c, atol=0.05)  # the seed only changes the noise


def test_motion_set_layout() -> None:
    angles, labels = motion_set(rate_hz=100.0, hold_s=0.3, transition_s=0.5)
    assert angles.shape == (9 * 30 + 8 * 50, 20) and len(labels) == angles.shape[0]
    assert set(POSE_NAMES) <= set(labels)
    assert labels[0] == "open" and labels[30] == "open->fist" and labels[-1] == "open"
    assert MOTION_ORDER[0] == MOTION_ORDER[-1] == "open"
    quiet, _ = motion_set(noise_rad=0.0)
    idx = labels.index("pinch_ring")
    np.testing.assert_array_equal(quiet[idx], pose("pinch_ring"))


def test_transitions_are_smooth() -> None:
    quiet, _ = motion_set(rate_hz=200.0, noise_rad=0.0)
    step = np.abs(np.diff(quiet, axis=0)).max()
    assert (
        step < 0.05
    )  # rad per 5 ms frame (min-jerk peak 1.875 * 1.7 rad / 0.5 s); a jump is ~1 rad
    s = min_jerk(np.linspace(0.0, 1.0, 101))
    assert s[0] == 0.0 and s[-1] == 1.0 and np.all(np.diff(s) >= 0)
    np.testing.assert_allclose(np.diff(s)[[0, -1]], 0.0, atol=1e-4)  # zero velocity at both ends


def test_all_angles_within_human_ranges() -> None:
    for name, q in poses().items():
        assert _within_limits(q), name
    for seed in range(3):
        assert _within_limits(motion_set(seed=seed, noise_rad=0.05).angles_rad)


@pytest.mark.parametrize("finger", ["index", "middle", "ring", "pinky"])
def test_pinch_brings_thumb_to_fingertip(finger: str) -> None:
    q = pose(f"pinch_{finger}")
    cal = HandCalibration(bone_scale=(1.02,) * 20)
    for hand in (
        HumanHand("left"),
        HumanHand("right", hand_length_m=0.17),
        HumanHand("left", calibration=cal),
    ):
        k = hand.keypoints(q)
        assert np.linalg.norm(k[4] - k[TIP_INDEX[finger]]) < 0.006
        others = [f for f in TIP_INDEX if f not in ("thumb", finger)]
        assert all(np.linalg.norm(k[4] - k[TIP_INDEX[f]]) > 0.02 for f in others)


def test_pose_shapes() -> None:
    k = {name: HumanHand("left").keypoints(pose(name)) for name in POSE_NAMES}
    assert np.all(pose("open") == 0.0)
    for mcp, tip in ((5, 8), (9, 12), (13, 16), (17, 20)):
        assert k["fist"][tip, 0] < k["fist"][mcp, 0] and k["fist"][tip, 2] > 0
    assert k["point"][8, 0] > k["point"][5, 0] + 0.07  # index straight
    assert all(
        k["point"][tip, 0] < k["point"][mcp, 0] for mcp, tip in ((9, 12), (13, 16), (17, 20))
    )
    spread_tips = np.linalg.norm(np.diff(k["spread"][[8, 12, 16, 20]], axis=0), axis=1)
    open_tips = np.linalg.norm(np.diff(k["open"][[8, 12, 16, 20]], axis=0), axis=1)
    assert np.all(spread_tips > open_tips + 0.008)


def test_pose_returns_a_copy() -> None:
    q = pose("fist")
    q[:] = 0.0
    assert pose("fist")[5] > 1.0


def test_unknown_pose() -> None:
    with pytest.raises(ConfigError, match="wave"):
        pose("wave")


def test_bad_motion_parameters() -> None:
    with pytest.raises(ConfigError, match="rate_hz"):
        motion_set(rate_hz=0.0)
    with pytest.raises(ConfigError, match="hold_s"):
        motion_set(hold_s=-1.0)
    with pytest.raises(ConfigError, match="no frames"):
        motion_set(hold_s=0.0, transition_s=0.0)


def test_keypoint_sequence() -> None:
    left = keypoint_sequence("left", rate_hz=50.0)
    right = keypoint_sequence("right", rate_hz=50.0)
    angles, _ = motion_set(rate_hz=50.0)
    assert left.shape == (angles.shape[0], 21, 3)
    np.testing.assert_array_equal(right, left * np.array([1.0, -1.0, 1.0]))
    np.testing.assert_array_equal(left, HumanHand("left").keypoints_batch(angles))
