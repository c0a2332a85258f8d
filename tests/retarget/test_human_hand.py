"""Human hand model: kernel vs a chain-of-rotations reference, geometry, calibration."""

from __future__ import annotations

import json
import tomllib

import numpy as np
import pytest

from retarget.human_hand import (
    ANGLE_LIMITS_RAD,
    ANGLE_NAMES,
    FINGER_NAMES,
    KEYPOINT_NAMES,
    KEYPOINT_PARENT,
    REFERENCE_HAND_LENGTH_M,
    TIP_INDEX,
    HandCalibration,
    HumanHand,
    make_skeleton,
)
from retarget.kernels.hand_model import hand_keypoints
from teleop.errors import ConfigError
from teleop.types import SIDES, Side

MCP = (5, 9, 13, 17)
TIPS = (8, 12, 16, 20)


def _rot(axis: str, angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    if axis == "x":
        return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    if axis == "y":
        return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def reference_keypoints(angles: np.ndarray, hand: HumanHand) -> np.ndarray:
    """Plain NumPy: per chain a base rotation, then one per joint; left frame, then mirror."""
    sk = hand.skeleton
    q_all = angles + sk.angle_offset_rad
    out = np.zeros((21, 3))
    for c in range(5):
        q = q_all[4 * c : 4 * c + 4]
        if (
            c == 0
        ):  # thumb: cmc_flex swings across the palm (-y), cmc_abd lifts out of the palm (+z)
            yaw, tilt = sk.rest_yaw_rad[0] - q[1], q[0]
        else:  # abduction away from the middle finger; the middle finger's + is towards the thumb
            yaw, tilt = sk.rest_yaw_rad[c] + (1.0 if c <= 2 else -1.0) * q[0], q[1]
        # flexion of angle f about the chain's lateral axis is Ry(-f): x goes towards +z
        rot = _rot("z", yaw) @ _rot("y", -tilt) @ _rot("x", sk.twist_rad[c])
        p = sk.base_pos_m[c].copy()
        out[1 + 4 * c] = p
        for j in range(3):
            if j > 0:
                rot = rot @ _rot("y", -q[1 + j])
            p = p + rot @ np.array([sk.seg_len_m[c, j], 0.0, 0.0])
            out[2 + 4 * c + j] = p
    out[:, 1] *= hand.sign_y
    return out


def _random_angles(rng: np.random.Generator, n: int, margin: float = 0.3) -> np.ndarray:
    lo, hi = ANGLE_LIMITS_RAD[:, 0] - margin, ANGLE_LIMITS_RAD[:, 1] + margin
    return rng.uniform(lo, hi, size=(n, 20))


def _random_calibration(rng: np.random.Generator) -> HandCalibration:
    return HandCalibration(
        bone_scale=tuple(rng.uniform(0.85, 1.15, 20)),
        angle_offset_rad=tuple(rng.uniform(-0.1, 0.1, 20)),
    )


def _bones(k: np.ndarray) -> np.ndarray:
    return np.linalg.norm(k[..., 1:, :] - k[..., KEYPOINT_PARENT[1:], :], axis=-1)


def test_names_and_limits() -> None:
    assert len(KEYPOINT_NAMES) == 21 and KEYPOINT_NAMES[9] == "MIDDLE_FINGER_MCP"
    assert (
        len(ANGLE_NAMES) == 20
        and ANGLE_NAMES[1] == "thumb_cmc_flex"
        and ANGLE_NAMES[16] == "pinky_mcp_abd"
    )
    assert TIP_INDEX == {"thumb": 4, "index": 8, "middle": 12, "ring": 16, "pinky": 20}
    assert ANGLE_LIMITS_RAD.shape == (20, 2)
    assert np.all(ANGLE_LIMITS_RAD[:, 0] < 0.0) and np.all(ANGLE_LIMITS_RAD[:, 1] > 0.0)


@pytest.mark.parametrize("side", ["left", "right"])
def test_kernel_matches_reference(side: Side) -> None:
    rng = np.random.default_rng(1)
    for i, q in enumerate(_random_angles(rng, 50)):
        hand = HumanHand(
            side,
            hand_length_m=rng.uniform(0.15, 0.22),
            calibration=_random_calibration(rng) if i % 2 else None,
        )
        np.testing.assert_allclose(
            hand.keypoints(q), reference_keypoints(q, hand), rtol=0, atol=1e-12
        )


def test_batch_matches_single_and_out_is_filled_in_place() -> None:
    rng = np.random.default_rng(2)
    hand = HumanHand("right", calibration=_random_calibration(rng))
    qs = _random_angles(rng, 7)
    out = np.full((7, 21, 3), np.nan)
    assert hand.keypoints_batch(qs, out=out) is out
    single = np.full((21, 3), np.nan)
    for t in range(7):
        assert hand.keypoints(qs[t], out=single) is single
        np.testing.assert_array_equal(out[t], single)


def test_raw_kernel_call() -> None:
    sk = make_skeleton()
    out = np.empty((21, 3))
    hand_keypoints(
        np.zeros(20),
        sk.angle_offset_rad,
        sk.base_pos_m,
        sk.seg_len_m,
        sk.rest_yaw_rad,
        sk.twist_rad,
        1.0,
        out,
    )
    np.testing.assert_array_equal(out, HumanHand("left").keypoints(np.zeros(20)))


def test_bone_lengths_preserved_for_any_angles() -> None:
    rng = np.random.default_rng(3)
    for side in SIDES:
        hand = HumanHand(side, calibration=_random_calibration(rng))
        expected = hand.bone_lengths_m()
        k = hand.keypoints_batch(_random_angles(rng, 40, margin=1.0))
        np.testing.assert_allclose(
            _bones(k), np.broadcast_to(expected, (40, 20)), rtol=0, atol=1e-14
        )


def test_reference_bone_lengths_are_the_table() -> None:
    bones_mm = HumanHand("left").bone_lengths_m().reshape(5, 4)[:, 1:] * 1000.0
    np.testing.assert_allclose(bones_mm[0], [46.22, 31.57, 21.67 + 5.67])
    np.testing.assert_allclose(bones_mm[2], [44.63, 26.33, 17.40 + 3.95])
    np.testing.assert_allclose(bones_mm[4], [32.57, 18.11, 15.96 + 3.73])


def test_left_right_mirror() -> None:
    rng = np.random.default_rng(4)
    cal = _random_calibration(rng)
    qs = _random_angles(rng, 20)
    left = HumanHand("left", calibration=cal).keypoints_batch(qs)
    right = HumanHand("right", calibration=cal).keypoints_batch(qs)
    np.testing.assert_array_equal(right, left * np.array([1.0, -1.0, 1.0]))


def test_flat_hand_geometry() -> None:
    for side in SIDES:
        thumb_sign = 1.0 if side == "left" else -1.0
        k = HumanHand(side).keypoints(np.zeros(20))
        np.testing.assert_array_equal(k[0], 0.0)
        assert k[9, 0] > 0 and k[9, 1] == 0.0 and k[9, 2] == 0.0  # keypoint 9 on +x
        assert 0.080 <= k[9, 0] <= 0.095
        assert 0.070 <= abs(k[5, 1] - k[17, 1]) <= 0.080  # MCP spread across the palm
        assert np.linalg.norm(k[12]) == pytest.approx(REFERENCE_HAND_LENGTH_M, abs=1e-12)
        for mcp, tip in zip(MCP, TIPS, strict=True):
            assert k[tip, 0] > k[mcp, 0] + 0.05  # fingers straight ahead
            assert abs(k[tip, 2] - k[mcp, 2]) < 1e-12  # in the palm plane
        assert thumb_sign * k[4, 1] > 0.05 and thumb_sign * k[1, 1] > 0  # thumb on the thumb side
        angle = np.arctan2(abs(k[4, 1] - k[1, 1]), k[4, 0] - k[1, 0])
        assert np.deg2rad(30) <= angle <= np.deg2rad(45)
        assert np.all(np.abs(k[:, 2]) < 0.01)  # flat


def test_fist_curls_tips_into_the_palm() -> None:
    q = np.zeros(20)
    for c in range(1, 5):
        q[4 * c + 1 : 4 * c + 4] = [1.45, 1.7, 1.0]
    k = HumanHand("left").keypoints(q)
    for mcp, tip in zip(MCP, TIPS, strict=True):
        assert k[tip, 0] < k[mcp, 0]
        assert k[tip, 2] > 0.0
        assert np.linalg.norm(k[tip] - k[mcp]) < 0.06


def test_sign_conventions() -> None:
    hand = HumanHand("left")  # y towards the thumb

    def tip_delta(angle: str, value: float, tip: int) -> np.ndarray:
        q = np.zeros(20)
        q[ANGLE_NAMES.index(angle)] = value
        return hand.keypoints(q)[tip] - hand.keypoints(np.zeros(20))[tip]

    for finger in FINGER_NAMES[1:]:
        tip = TIP_INDEX[finger]
        for joint in ("mcp_flex", "pip_flex", "dip_flex"):
            d = tip_delta(f"{finger}_{joint}", 0.3, tip)
            assert d[2] > 0 and d[0] < 0  # flexion curls towards +z and back
    assert (
        tip_delta("index_mcp_abd", 0.2, 8)[1] > 0
    )  # away from the middle finger: towards the thumb
    assert tip_delta("middle_mcp_abd", 0.2, 12)[1] > 0
    assert tip_delta("ring_mcp_abd", 0.2, 16)[1] < 0
    assert tip_delta("pinky_mcp_abd", 0.2, 20)[1] < 0
    assert tip_delta("thumb_cmc_abd", 0.3, 4)[2] > 0.02  # out of the palm, palmar side
    d = tip_delta("thumb_cmc_flex", 0.3, 4)
    assert d[1] < -0.02 and abs(d[2]) < 1e-12  # across the palm, in its plane
    for joint in ("thumb_mcp_flex", "thumb_ip_flex"):
        d = tip_delta(joint, 0.3, 4)
        assert d[1] < 0 and d[2] > 0  # curls towards the palm and the little finger


def test_hand_length_scales_uniformly() -> None:
    rng = np.random.default_rng(5)
    qs = _random_angles(rng, 10)
    ref = HumanHand("right").keypoints_batch(qs)
    big = HumanHand("right", hand_length_m=0.2035).keypoints_batch(qs)
    np.testing.assert_allclose(big, ref * (0.2035 / REFERENCE_HAND_LENGTH_M), rtol=0, atol=1e-14)
    assert np.linalg.norm(
        HumanHand("left", hand_length_m=0.17).keypoints(np.zeros(20))[12]
    ) == pytest.approx(0.17)


def test_calibration_scales_one_bone_and_offsets_angles() -> None:
    scale = [1.0] * 20
    scale[9] = 1.1  # MIDDLE_FINGER_MCP -> MIDDLE_FINGER_PIP
    base = HumanHand("left").bone_lengths_m()
    bones = HumanHand("left", calibration=HandCalibration(bone_scale=tuple(scale))).bone_lengths_m()
    np.testing.assert_allclose(bones / base, scale, rtol=1e-15)
    offset = np.random.default_rng(6).uniform(-0.2, 0.2, 20)
    q = np.random.default_rng(7).uniform(0.0, 0.5, 20)
    calibrated = HumanHand("left", calibration=HandCalibration(angle_offset_rad=tuple(offset)))
    np.testing.assert_allclose(
        calibrated.keypoints(q), HumanHand("left").keypoints(q + offset), atol=1e-15
    )


def test_calibration_round_trips_through_json_and_toml() -> None:
    cal = _random_calibration(np.random.default_rng(8))
    assert HandCalibration.from_dict(json.loads(json.dumps(cal.to_dict()))) == cal
    text = "bone_scale = [" + ", ".join(["1.05"] * 20) + "]\n"
    from_toml = HandCalibration.from_dict(tomllib.loads(text))
    assert from_toml.bone_scale == (1.05,) * 20 and from_toml.angle_offset_rad == (0.0,) * 20


def test_calibration_unknown_key() -> None:
    with pytest.raises(ConfigError, match="bone_scales"):
        HandCalibration.from_dict({"bone_scales": [1.0] * 20})


def test_calibration_wrong_length() -> None:
    with pytest.raises(ConfigError, match="20 entries"):
        HandCalibration(angle_offset_rad=(0.0,) * 19)


def test_calibration_non_positive_scale() -> None:
    with pytest.raises(ConfigError, match="bone_scale must be > 0"):
        HandCalibration(bone_scale=(1.0,) * 19 + (0.0,))


def test_calibration_not_numbers() -> None:
    with pytest.raises(ConfigError, match="numbers"):
        HandCalibration(bone_scale="abc")  # type: ignore[arg-type]


def test_bad_side() -> None:
    with pytest.raises(ConfigError, match="side"):
        HumanHand("middle")  # type: ignore[arg-type]


def test_bad_hand_length() -> None:
    with pytest.raises(ConfigError, match="hand_length_m"):
        HumanHand("left", hand_length_m=0.0)


def test_bad_shapes() -> None:
    hand = HumanHand("left")
    with pytest.raises(ValueError, match=r"\(20,\)"):
        hand.keypoints(np.zeros(21))
    with pytest.raises(ValueError, match="out"):
        hand.keypoints(np.zeros(20), out=np.zeros((21, 2)))
    with pytest.raises(ValueError, match=r"\(T, 20\)"):
        hand.keypoints_batch(np.zeros(20))
