"""The session's safety filter and haptics mapping, on their own."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from retarget.bimanual import BimanualRetargeter
from robots.description import bundled_description_path, load_description
from teleop.session.config import HapticsConfig
from teleop.session.haptics import HapticsMapper
from teleop.session.safety import CLAMPED, HANDS_TOO_CLOSE, RAMPED, RATE_LIMITED, SafetyFilter

DESC = load_description(bundled_description_path())
RET = BimanualRetargeter(DESC)
S = RET.sides
ARMS = (S["left"].arm_slice.start, S["left"].arm_slice.stop, S["right"].arm_slice.start, S["right"].arm_slice.stop)
N = RET.n_command
LOWER, UPPER = np.full(N, -1.5), np.full(N, 1.5)
VEL = np.full(N, 2.0)
RATE = 500.0


def _filter(min_dist: float = 0.1) -> SafetyFilter:
    return SafetyFilter(LOWER, UPPER, VEL, RATE, ARMS, S["left"].arm, S["right"].arm, min_dist)


def _home() -> np.ndarray:
    q = np.zeros(N)
    q[S["left"].arm_slice] = S["left"].arm.posture
    q[S["right"].arm_slice] = S["right"].arm.posture
    return np.clip(q, LOWER, UPPER)


@settings(max_examples=80, deadline=None)
@given(arrays(np.float64, N, elements=st.floats(-10, 10)), st.floats(1e-4, 1.0))
def test_output_within_limits_and_step(target, ramp):
    f = _filter(min_dist=0.0)
    prev = _home()
    out = np.zeros(N)
    flags = f.step(target, prev, out, ramp)
    assert np.all(out >= LOWER) and np.all(out <= UPPER)
    assert np.all(np.abs(out - prev) <= np.minimum(VEL / RATE, ramp) + 1e-12)
    if np.any(target > UPPER) or np.any(target < LOWER):
        assert flags & CLAMPED
    if flags & (RAMPED | RATE_LIMITED):
        assert np.any(np.abs(np.clip(target, LOWER, UPPER) - prev) > np.minimum(VEL / RATE, ramp) - 1e-12)


def test_wrists_never_closer_than_the_minimum():
    f = _filter(min_dist=0.3)
    prev = _home()
    out = np.zeros(N)
    f.step(prev, prev, out)
    d0 = np.linalg.norm(f.wrists[0] - f.wrists[1])
    assert d0 > 0.3
    # swing both arms inward (shoulder yaw / roll toward the midline) over many ticks
    target = prev.copy()
    names = DESC.joint_names
    for side, sign in (("left", 1), ("right", 1)):
        target[names.index(f"{side}_shoulder_roll")] = -1.5 * sign
        target[names.index(f"{side}_shoulder_pitch")] = 1.4
    closest = np.inf
    flagged = False
    for _ in range(2000):
        flags = f.step(target, prev, out)
        flagged |= bool(flags & HANDS_TOO_CLOSE)
        prev[:] = out
        closest = min(closest, float(np.linalg.norm(f.wrists[0] - f.wrists[1])))
    assert flagged and closest >= 0.3 - 1e-9


def test_haptics_curve_and_rate_limit():
    cfg = HapticsConfig(full_force_n=5.0, deadband_n=1.0, exponent=2.0, max_change_per_s=2.0)
    names = tuple(f"{s}_{f}_tip" for s in ("left", "right") for f in ("thumb", "index", "middle", "ring", "pinky"))
    h = HapticsMapper(cfg, names)
    forces = np.zeros((10, 3))
    forces[6] = [0.0, 0.0, 3.0]  # right index: (3 - 1) / 4 = 0.5 -> 0.25 after the curve
    forces[0] = [0.0, 0.5, 0.0]  # left thumb: inside the deadband
    h.update(forces, 0.0)  # first call: no rate limit yet
    assert h.level[1, 1] == pytest.approx(0.25) and h.level[0, 0] == 0.0
    forces[6] = [0.0, 0.0, 50.0]  # saturates at 1
    lv = h.update(forces, 0.1)  # at most 2/s * 0.1 s = 0.2 more
    assert lv[1, 1] == pytest.approx(0.45)
    for k in range(2, 20):
        lv = h.update(forces, 0.1 * k)
    assert lv[1, 1] == pytest.approx(1.0)
    assert np.all(h.side_levels("left") == h.level[0])
