"""Scripted bimanual motion: per side, hand poses (the named poses of ``retarget.motions``) and
wrist offsets over time, minimum-jerk between keyframes.

Wrist poses are in a tracker frame that follows the runtime's convention (right-handed, Z up,
metres, x forward from the operator, y to the operator's left); orientation is the wrist frame of
docs/hand-keypoints.md: palms facing each other, fingers forward.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from retarget.motions import min_jerk, pose
from teleop.types import Side

__all__ = ["BimanualScript", "SCRIPTS", "Keyframe"]

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Keyframe:
    """Reached at the end of ``duration_s``. ``left``/``right`` name a hand pose (``pose_angles``).
    Offsets are [m] from the nominal wrist position; ``roll_rad`` rotates the wrist about its own
    x axis (forearm pronation); ``rotvec_rad`` (a rotation vector in the tracker frame) then turns
    the whole wrist frame about the wrist centre, so with the identity workspace rotation the robot
    wrist turns by exactly that rotation from its pose at engage. Rotations are interpolated
    component-wise between keyframes (fine for the small, same-axis turns the scripts use)."""

    duration_s: float
    label: str
    left: str
    right: str
    left_offset: tuple[float, float, float] = (0.0, 0.0, 0.0)
    right_offset: tuple[float, float, float] = (0.0, 0.0, 0.0)
    left_roll_rad: float = 0.0
    right_roll_rad: float = 0.0
    left_rotvec_rad: tuple[float, float, float] = (0.0, 0.0, 0.0)
    right_rotvec_rad: tuple[float, float, float] = (0.0, 0.0, 0.0)


_FWD_DOWN = (0.10, 0.0, -0.10)
_LIFT = (0.10, 0.0, 0.0)

SCRIPTS: Final[dict[str, tuple[Keyframe, ...]]] = {
    # open, reach, grasp, lift, hand-over toward the middle, release, retreat, then finger poses
    "bimanual_demo": (
        Keyframe(1.0, "open", "open", "open"),
        Keyframe(1.5, "reach", "open", "open", _FWD_DOWN, _FWD_DOWN),
        Keyframe(1.0, "grasp", "fist", "fist", _FWD_DOWN, _FWD_DOWN),
        Keyframe(1.0, "lift", "fist", "fist", _LIFT, _LIFT),
        Keyframe(1.5, "hand-over", "open", "fist", (0.12, -0.12, 0.02), (0.12, 0.12, 0.02), 0.3, -0.3),
        Keyframe(1.0, "take", "fist", "fist", (0.12, -0.12, 0.02), (0.12, 0.12, 0.02), 0.3, -0.3),
        Keyframe(1.0, "release", "fist", "open", (0.12, -0.12, 0.02), (0.12, 0.12, 0.02), 0.3, -0.3),
        Keyframe(1.5, "retreat", "fist", "open"),
        Keyframe(1.0, "open", "open", "open"),
        Keyframe(0.8, "pinch index", "pinch_index", "pinch_index"),
        Keyframe(0.8, "pinch middle", "pinch_middle", "pinch_middle"),
        Keyframe(0.8, "pinch ring", "pinch_ring", "pinch_ring"),
        Keyframe(0.8, "pinch pinky", "pinch_pinky", "pinch_pinky"),
        Keyframe(0.8, "point", "point", "point"),
        Keyframe(0.8, "spread", "spread", "spread"),
        Keyframe(1.0, "open", "open", "open"),
    ),
    # the hands alone, wrists still: every named pose once
    "hand_poses": tuple(
        Keyframe(0.8, name, name, name)
        for name in ("open", "fist", "pinch_index", "pinch_middle", "pinch_ring", "pinch_pinky", "point", "spread", "open")
    ),
}

#: Nominal wrist positions in the tracker frame [m] and the palms-facing orientation per side.
NOMINAL_POS: Final[dict[Side, tuple[float, float, float]]] = {"left": (0.35, 0.25, 1.0), "right": (0.35, -0.25, 1.0)}


def _palm_rotation(side: Side, roll_rad: float, rotvec_rad: F64 | None = None) -> F64:
    """Wrist frame axes in the tracker frame: x forward; palm normal (z) toward the other hand;
    rolled by ``roll_rad`` about its own x, then turned by ``rotvec_rad`` (tracker frame)."""
    x = np.array([1.0, 0.0, 0.0])
    z = np.array([0.0, -1.0, 0.0]) if side == "left" else np.array([0.0, 1.0, 0.0])
    y = np.cross(z, x)
    r = np.stack([x, y, z], axis=1)
    c, s = np.cos(roll_rad), np.sin(roll_rad)
    r = r @ np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    if rotvec_rad is not None and np.any(rotvec_rad):
        r = _rotvec_to_mat(rotvec_rad) @ r
    return r


def _rotvec_to_mat(v: F64) -> F64:
    """Rodrigues: the rotation by |v| about v / |v|."""
    angle = float(np.linalg.norm(v))
    if angle < 1e-12:
        return np.eye(3)
    k = np.asarray(v, dtype=np.float64) / angle
    kx = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    return np.eye(3) + np.sin(angle) * kx + (1.0 - np.cos(angle)) * (kx @ kx)


def _mat_to_quat(r: F64) -> F64:
    from retarget.kernels.poses import mat_to_quat

    q = np.zeros(4)
    mat_to_quat(np.ascontiguousarray(r), q)
    return q


class BimanualScript:
    """``at(t_s, side)`` -> (angles (20,), wrist position (3,), wrist quaternion (4,)); ``label``."""

    def __init__(self, name: str = "bimanual_demo", loop: bool = True) -> None:
        if name not in SCRIPTS:
            raise KeyError(f"unknown script {name!r}; scripts: {sorted(SCRIPTS)}")
        self.name = name
        self.keys = SCRIPTS[name]
        self.loop = loop
        self.ends = np.cumsum([k.duration_s for k in self.keys])
        self.duration_s = float(self.ends[-1])

    def _phase(self, t_s: float) -> tuple[Keyframe, Keyframe, float]:
        t = t_s % self.duration_s if self.loop else min(max(t_s, 0.0), self.duration_s - 1e-9)
        i = int(np.searchsorted(self.ends, t, side="right"))
        i = min(i, len(self.keys) - 1)
        start = self.ends[i] - self.keys[i].duration_s
        prev = self.keys[i - 1] if i > 0 else self.keys[-1] if self.loop else self.keys[0]
        tau = float(min_jerk((t - start) / self.keys[i].duration_s))
        return prev, self.keys[i], tau

    def label(self, t_s: float) -> str:
        return self._phase(t_s)[1].label

    def at(self, t_s: float, side: Side) -> tuple[F64, F64, F64]:
        a, b, tau = self._phase(t_s)
        angles = (1 - tau) * pose(getattr(a, side)) + tau * pose(getattr(b, side))
        off = (1 - tau) * np.array(getattr(a, f"{side}_offset")) + tau * np.array(getattr(b, f"{side}_offset"))
        roll = (1 - tau) * getattr(a, f"{side}_roll_rad") + tau * getattr(b, f"{side}_roll_rad")
        rotvec = (1 - tau) * np.array(getattr(a, f"{side}_rotvec_rad")) + tau * np.array(getattr(b, f"{side}_rotvec_rad"))
        pos = np.array(NOMINAL_POS[side]) + off
        return angles, pos, _mat_to_quat(_palm_rotation(side, roll, rotvec))
