"""Deterministic synthetic human hand motion: named poses and a benchmark motion set.

Poses are 20-angle vectors in ``retarget.human_hand.ANGLE_NAMES`` order. The pinch poses are
solved once (lazily, on first use) by a small damped least-squares on the reference hand model:
the thumb's four angles and the target finger's three flexions move so that the thumb tip meets
that fingertip, with a light pull towards a natural nominal pose. Uniform hand scaling does not
change the solution, so the pinches close for any ``hand_length_m`` (per-bone calibration can open
them by a few millimetres).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Final, NamedTuple

import numpy as np
import numpy.typing as npt

from retarget.human_hand import (
    ANGLE_LIMITS_RAD,
    FINGER_NAMES,
    N_ANGLES,
    N_KEYPOINTS,
    REFERENCE_HAND_LENGTH_M,
    TIP_INDEX,
    HandCalibration,
    HumanHand,
)
from teleop.errors import ConfigError
from teleop.types import Side

__all__ = [
    "POSE_NAMES",
    "MOTION_ORDER",
    "pose",
    "poses",
    "min_jerk",
    "Motion",
    "motion_set",
    "keypoint_sequence",
]

POSE_NAMES: Final[tuple[str, ...]] = (
    "open",
    "fist",
    "pinch_index",
    "pinch_middle",
    "pinch_ring",
    "pinch_pinky",
    "point",
    "spread",
)

#: Pose order of ``motion_set``: every pose once, back to ``open`` so the set loops smoothly.
MOTION_ORDER: Final[tuple[str, ...]] = POSE_NAMES + ("open",)

_FIST_FINGER = (0.0, 1.45, 1.70, 1.00)  # mcp_abd, mcp_flex, pip, dip
_FIST_THUMB = (0.45, 0.65, 0.50, 0.40)  # cmc_abd, cmc_flex, mcp, ip: over the middle phalanges
_RELAXED_FINGER = (0.0, 0.30, 0.40, 0.20)
_PINCH_THUMB_NOMINAL = (0.60, 0.40, 0.30, 0.20)
#: mcp_flex, pip, dip of the pinching finger: more flexion towards the ulnar side.
_PINCH_FINGER_NOMINAL = {
    1: (0.50, 0.60, 0.30),
    2: (0.60, 0.70, 0.35),
    3: (0.75, 0.80, 0.40),
    4: (0.90, 0.90, 0.45),
}


def _hand_pose(
    thumb: Sequence[float], fingers: Sequence[Sequence[float]]
) -> npt.NDArray[np.float64]:
    return np.array(list(thumb) + [v for f in fingers for v in f], dtype=np.float64)


def _pinch_nominal(finger: int) -> npt.NDArray[np.float64]:
    fingers = [_RELAXED_FINGER] * 4
    fingers[finger - 1] = (0.0, *_PINCH_FINGER_NOMINAL[finger])
    return _hand_pose(_PINCH_THUMB_NOMINAL, fingers)


def _solve_pinch(finger: int, iterations: int = 60) -> npt.NDArray[np.float64]:
    """Levenberg-Marquardt with a forward-difference Jacobian, clipped to ``ANGLE_LIMITS_RAD``."""
    hand = HumanHand("left")
    q_nom = _pinch_nominal(finger)
    free = np.array([0, 1, 2, 3, 4 * finger + 1, 4 * finger + 2, 4 * finger + 3])
    tip = TIP_INDEX[FINGER_NAMES[finger]]
    lo, hi = ANGLE_LIMITS_RAD[free, 0], ANGLE_LIMITS_RAD[free, 1]
    w_dist, w_reg, h = 1000.0, 0.1, 1e-7  # 1 mm of gap weighs like 10 mrad off the nominal pose
    kp = np.empty((N_KEYPOINTS, 3))

    def residual(q: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        hand.keypoints(q, kp)
        return np.concatenate([w_dist * (kp[4] - kp[tip]), w_reg * (q[free] - q_nom[free])])

    q = q_nom.copy()
    r = residual(q)
    cost = float(r @ r)
    mu = 1e-3
    jac = np.empty((r.size, free.size))
    for _ in range(iterations):
        for col, j in enumerate(free):
            qd = q.copy()
            qd[j] += h
            jac[:, col] = (residual(qd) - r) / h
        step = np.linalg.solve(jac.T @ jac + mu * np.eye(free.size), -jac.T @ r)
        q_new = q.copy()
        q_new[free] = np.clip(q[free] + step, lo, hi)
        r_new = residual(q_new)
        c_new = float(r_new @ r_new)
        if c_new < cost:
            q, r, cost, mu = q_new, r_new, c_new, mu * 0.3
        else:
            mu *= 10.0
    return q


@functools.cache
def _poses() -> dict[str, npt.NDArray[np.float64]]:
    fist = _hand_pose(_FIST_THUMB, [_FIST_FINGER] * 4)
    out = {
        "open": np.zeros(N_ANGLES),
        "fist": fist,
        "pinch_index": _solve_pinch(1),
        "pinch_middle": _solve_pinch(2),
        "pinch_ring": _solve_pinch(3),
        "pinch_pinky": _solve_pinch(4),
        "point": _hand_pose(_FIST_THUMB, [(0.0, 0.0, 0.0, 0.0)] + [_FIST_FINGER] * 3),
        "spread": _hand_pose(
            (0.10, -0.35, 0.0, 0.0),
            [(0.30, 0, 0, 0), (0.0, 0, 0, 0), (0.20, 0, 0, 0), (0.50, 0, 0, 0)],
        ),
    }
    for v in out.values():
        v.setflags(write=False)
    return out


def pose(name: str) -> npt.NDArray[np.float64]:
    """A copy of the named pose, Shape (20,). Names: ``POSE_NAMES``.

    ``open`` is the flat hand (all zeros); ``fist`` curls every finger with the thumb over the
    middle phalanges; ``pinch_<finger>`` brings the thumb tip onto that fingertip (the other
    fingers relaxed); ``point`` has the index straight and the rest as in the fist; ``spread``
    abducts index, ring and pinky and swings the thumb out (the middle finger stays central).
    """
    try:
        return _poses()[name].copy()
    except KeyError:
        raise ConfigError(f"unknown pose {name!r}; known poses: {list(POSE_NAMES)}") from None


def poses() -> dict[str, npt.NDArray[np.float64]]:
    """Every named pose (copies), ``POSE_NAMES`` order."""
    return {name: pose(name) for name in POSE_NAMES}


def min_jerk(tau: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Minimum-jerk profile ``10 t^3 - 15 t^4 + 6 t^5`` of the phase ``tau`` in [0, 1] (clipped)."""
    t = np.clip(np.asarray(tau, dtype=np.float64), 0.0, 1.0)
    return t**3 * (10.0 - 15.0 * t + 6.0 * t * t)


class Motion(NamedTuple):
    angles_rad: npt.NDArray[np.float64]  # Shape (T, 20)
    labels: list[str]  # per frame: the pose name while holding, "a->b" while moving


def motion_set(
    rate_hz: float = 100.0,
    seed: int = 0,
    hold_s: float = 0.3,
    transition_s: float = 0.5,
    noise_rad: float = 0.005,
) -> Motion:
    """Every pose of ``MOTION_ORDER`` held ``hold_s``, joined by minimum-jerk transitions of
    ``transition_s``, plus white noise of ``noise_rad`` (std) from ``np.random.default_rng(seed)``,
    clipped to ``ANGLE_LIMITS_RAD``. Frame ``i`` is at ``i / rate_hz``. Same output every call.

    At the defaults: 9 holds of 30 frames + 8 transitions of 50 frames = 670 frames (6.7 s).
    """
    if not (math.isfinite(rate_hz) and rate_hz > 0.0):
        raise ConfigError(f"rate_hz={rate_hz!r}: must be > 0")
    for name, v in (("hold_s", hold_s), ("transition_s", transition_s), ("noise_rad", noise_rad)):
        if not (math.isfinite(v) and v >= 0.0):
            raise ConfigError(f"{name}={v!r}: must be >= 0")
    n_hold = round(hold_s * rate_hz)
    n_move = round(transition_s * rate_hz)
    if n_hold == 0 and n_move == 0:
        raise ConfigError(
            f"hold_s={hold_s} and transition_s={transition_s} give no frames at {rate_hz} Hz"
        )
    table = _poses()
    chunks: list[npt.NDArray[np.float64]] = []
    labels: list[str] = []
    for i, name in enumerate(MOTION_ORDER):
        if i > 0 and n_move > 0:
            a, b = table[MOTION_ORDER[i - 1]], table[name]
            s = min_jerk(np.arange(1, n_move + 1) / n_move)[:, None]
            chunks.append(a + s * (b - a))
            labels += [f"{MOTION_ORDER[i - 1]}->{name}"] * n_move
        chunks.append(np.repeat(table[name][None, :], n_hold, axis=0))
        labels += [name] * n_hold
    angles = np.concatenate(chunks, axis=0)
    rng = np.random.default_rng(seed)
    if noise_rad > 0.0:
        angles += rng.normal(0.0, noise_rad, size=angles.shape)
    np.clip(angles, ANGLE_LIMITS_RAD[:, 0], ANGLE_LIMITS_RAD[:, 1], out=angles)
    return Motion(angles, labels)


def keypoint_sequence(
    side: Side,
    rate_hz: float = 100.0,
    seed: int = 0,
    hold_s: float = 0.3,
    transition_s: float = 0.5,
    noise_rad: float = 0.005,
    hand_length_m: float = REFERENCE_HAND_LENGTH_M,
    calibration: HandCalibration | None = None,
) -> npt.NDArray[np.float64]:
    """Keypoints of ``motion_set(...)`` on a ``side`` hand. Shape (T, 21, 3), wrist frame, m."""
    angles, _ = motion_set(
        rate_hz=rate_hz, seed=seed, hold_s=hold_s, transition_s=transition_s, noise_rad=noise_rad
    )
    return HumanHand(side, hand_length_m=hand_length_m, calibration=calibration).keypoints_batch(
        angles
    )
