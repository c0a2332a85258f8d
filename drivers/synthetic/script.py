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

__all__ = ["BimanualScript", "SCRIPTS", "HAND_POSES", "Keyframe", "hand_pose"]

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


#: Hand poses of the scripts beyond the named poses of ``retarget.motions``: 20 angles [rad] in
#: ``retarget.human_hand.ANGLE_NAMES`` order (thumb cmc_abd, cmc_flex, mcp, ip; then index, middle,
#: ring, pinky each mcp_abd, mcp_flex, pip, dip).
HAND_POSES: Final[dict[str, tuple[float, ...]]] = {
    # thumb flat in the palm plane (out of the object's way), fingers slightly bent: before a grasp
    "preshape": (0.0, 0.0, 0.0, 0.0) + (0.0, 0.15, 0.165, 0.09) * 4,
    # power grasp of a ~6 cm cylinder by the four fingers against the palm, thumb flat: retargets
    # to robot mcp_flex 1.6 (its limit) and pip 1.2-1.3, i.e. fingers commanded past contact so
    # the position error squeezes; no thumb-fingertip distance is under the pinch threshold
    "hook": (0.0, 0.0, 0.0, 0.0) + (0.0, 1.4, 1.54, 0.84) * 4,
}


def hand_pose(name: str) -> F64:
    """The 20 angles of a script hand pose: ``HAND_POSES`` first, else ``retarget.motions.pose``."""
    if name in HAND_POSES:
        return np.array(HAND_POSES[name], dtype=np.float64)
    return pose(name)


_FWD_DOWN = (0.10, 0.0, -0.10)
_LIFT = (0.10, 0.0, 0.0)

# -- pick_handover ------------------------------------------------------------------------------
# Designed for the bundled dexhumanoid in its scene (robots/dexhumanoid/generate.py): the session
# engages at the robot's ``home`` keyframe and the wrist mapping is clutch-relative with scale 1
# and identity R_map, so every wrist target below is (offset [m], rotation vector [rad]) of the
# robot wrist frame from its pose at home, in the torso frame (x forward, y left, z up). The
# targets were solved from the scene geometry (bottle axis at x 0.49, y -0.13, bottom on the table
# top at z 0.75, radius 0.033 m) with the side-wrap rule of ``robots.scripted``: hand level, palm
# facing the object at 0.015 + radius + 0.002 m from its axis, the axis 0.085 m along the fingers
# from the wrist. Home wrists: left (0.402, 0.243, 0.963), right (0.402, -0.243, 0.963), palms
# facing each other, thumbs up. The rotation vectors level the hand (home is rolled ~6 deg) and
# yaw the fingers toward the midline by the angle given.
_Wrist = tuple[tuple[float, float, float], tuple[float, float, float]]
_HOME: _Wrist = ((0.0, 0.0, 0.0), (0.0, 0.0, 0.0))
_R_YAW08 = (0.104, 0.037, 0.196)  # right hand level, fingers yawed 8 deg inward (toward the bottle)
_L_YAW08 = (-0.104, 0.037, -0.196)  # the left mirror image of _R_YAW08
# right wrist: 8 cm behind and 2 cm above the grasp, palm 2 cm farther out
_R_PREGRASP: _Wrist = ((-0.066, 0.021, -0.128), _R_YAW08)
# right wrist at z 0.815 beside the bottle (its pinky clears the table), bottle in the fingers
_R_GRASP: _Wrist = ((0.011, 0.052, -0.148), _R_YAW08)
_R_LIFTED: _Wrist = ((0.011, 0.052, 0.002), _R_YAW08)  # 15 cm up
# The hand-over goes through the table. Mid-air variants (left hand on the upper part while the
# right hand holds the lower part; right thumb tucked, left index relaxed, slower release, ...)
# kept dropping the bottle: the upper hand only has the cylinder between the lower hand's fingers
# and thumb and the top dome (fingers on the dome push the bottle down), its fingers land on the
# lower hand, and the two synthetic devices are not in step (see "wait" below).
# Both hands instead use the proven low side-wrap grasp: the right hand stands the bottle on the
# table at (0.38, -0.07) (the grasp above moved by (-0.11, +0.06), same orientation, 3 mm higher),
# lets go and backs off along its approach; the left hand picks it up there with the mirror image
# of the right grasp and sets it down at (0.38, 0.05), where its opening fingers clear the cube.
_R_HOVER: _Wrist = ((-0.099, 0.112, 0.002), _R_YAW08)  # carried over the hand-over spot
_R_PUT: _Wrist = ((-0.099, 0.112, -0.145), _R_YAW08)  # bottle standing on the table
_R_OUT: _Wrist = ((-0.176, 0.081, -0.125), _R_YAW08)  # open hand backed off along its approach
# left wrist for the bottle at (0.38, -0.07): the mirror of _R_GRASP moved by (-0.11, -0.20) (its
# open fingers reach ~10 cm past the bottle: this spot keeps them ~2 cm off the mug)
_L_GRASP: _Wrist = ((-0.099, -0.252, -0.148), _L_YAW08)
_L_PREGRASP: _Wrist = ((-0.176, -0.221, -0.128), _L_YAW08)
_L_LIFTED: _Wrist = ((-0.099, -0.252, 0.002), _L_YAW08)  # 15 cm up
_L_OVER: _Wrist = ((-0.099, -0.132, 0.002), _L_YAW08)  # over the set-down spot (0.38, 0.05)
_L_PLACE: _Wrist = ((-0.099, -0.132, -0.145), _L_YAW08)
_L_OUT: _Wrist = ((-0.176, -0.101, -0.125), _L_YAW08)


def _kf(duration_s: float, label: str, left: str, right: str, left_wrist: _Wrist, right_wrist: _Wrist) -> Keyframe:
    return Keyframe(duration_s, label, left, right, left_offset=left_wrist[0], right_offset=right_wrist[0],
                    left_rotvec_rad=left_wrist[1], right_rotvec_rad=right_wrist[1])


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
    # the right hand picks the bottle up and hands it to the left hand through the table (stands it
    # at the hand-over spot and lets go; the left hand picks it up there), the left hand lifts it,
    # holds it, sets it down at (0.38, 0.05) and both return home; about 24 s
    "pick_handover": (
        _kf(1.0, "engage", "open", "open", _HOME, _HOME),
        _kf(1.5, "reach", "open", "preshape", _HOME, _R_PREGRASP),
        _kf(1.2, "approach", "open", "preshape", _HOME, _R_GRASP),
        _kf(1.0, "grasp", "open", "hook", _HOME, _R_GRASP),
        _kf(0.4, "squeeze", "open", "hook", _HOME, _R_GRASP),
        _kf(1.5, "lift", "open", "hook", _HOME, _R_LIFTED),
        _kf(1.5, "carry", "open", "hook", _HOME, _R_HOVER),
        _kf(1.2, "put down", "open", "hook", _HOME, _R_PUT),
        _kf(0.8, "right release", "open", "open", _HOME, _R_PUT),
        _kf(1.0, "right back off", "open", "open", _HOME, _R_OUT),
        # slack: each synthetic device plays the script from its own open (the left one first in
        # sim_demo; see ``BimanualScript.at``: they open within ~0.1 s of each other); the left
        # hand may run up to ~2.5 s ahead and still find the right hand gone
        _kf(1.0, "wait", "open", "open", _HOME, _HOME),
        _kf(1.5, "left reach", "preshape", "open", _L_PREGRASP, _HOME),
        _kf(1.2, "left approach", "preshape", "open", _L_GRASP, _HOME),
        _kf(1.0, "left grasp", "hook", "open", _L_GRASP, _HOME),
        _kf(0.4, "left squeeze", "hook", "open", _L_GRASP, _HOME),
        _kf(1.5, "left lift", "hook", "open", _L_LIFTED, _HOME),
        _kf(0.5, "left hold", "hook", "open", _L_LIFTED, _HOME),
        _kf(1.5, "carry left", "hook", "open", _L_OVER, _HOME),
        _kf(1.2, "set down", "hook", "open", _L_PLACE, _HOME),
        _kf(0.8, "left release", "open", "open", _L_PLACE, _HOME),
        _kf(1.0, "left back off", "open", "open", _L_OUT, _HOME),
        _kf(1.2, "home", "open", "open", _HOME, _HOME),
    ),
    # the hands alone, wrists still: every named pose once
    "hand_poses": tuple(
        Keyframe(0.8, name, name, name)
        for name in ("open", "fist", "pinch_index", "pinch_middle", "pinch_ring", "pinch_pinky", "point", "spread", "open")
    ),
}

#: Nominal wrist positions in the tracker frame [m] and the palms-facing orientation per side.
NOMINAL_POS: Final[dict[Side, tuple[float, float, float]]] = {"left": (0.35, 0.25, 1.0), "right": (0.35, -0.25, 1.0)}


def _base_rotation(side: Side) -> F64:
    x = np.array([1.0, 0.0, 0.0])
    z = np.array([0.0, -1.0, 0.0]) if side == "left" else np.array([0.0, 1.0, 0.0])
    y = np.cross(z, x)
    r = np.stack([x, y, z], axis=1)
    r.setflags(write=False)
    return r


#: The palms-facing wrist frame per side before roll and rotation (constant: computed once, since
#: the synthetic driver evaluates the script at every sample of a loop period when it opens).
_BASE_ROTATION: Final[dict[Side, F64]] = {"left": _base_rotation("left"), "right": _base_rotation("right")}


def _palm_rotation(side: Side, roll_rad: float, rotvec_rad: F64 | None = None) -> F64:
    """Wrist frame axes in the tracker frame: x forward; palm normal (z) toward the other hand;
    rolled by ``roll_rad`` about its own x, then turned by ``rotvec_rad`` (tracker frame)."""
    r = _BASE_ROTATION[side]
    c, s = np.cos(roll_rad), np.sin(roll_rad)
    r = r @ np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    if rotvec_rad is not None and rotvec_rad.any():
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


#: ``BimanualScript.at`` results of the other side, waiting for the other hand's device.
_AT_CACHE: dict[tuple[str, float, Side], tuple[F64, F64, F64]] = {}
_AT_CACHE_MAX: Final = 200_000


class BimanualScript:
    """``at(t_s, side)`` -> (angles (20,), wrist position (3,), wrist quaternion (4,)); ``label``."""

    def __init__(self, name: str = "bimanual_demo", loop: bool = True) -> None:
        if name not in SCRIPTS:
            raise KeyError(f"unknown script {name!r}; scripts: {sorted(SCRIPTS)}")
        self.name = name
        self.keys = SCRIPTS[name]
        self.loop = loop
        self.ends = np.cumsum([k.duration_s for k in self.keys])
        self._poses = {n: hand_pose(n) for k in self.keys for n in (k.left, k.right)}
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
        """Both sides are evaluated and the other one is kept (read-only) for a later call with the
        same script, time and side: the two synthetic devices of a bimanual session precompute
        the same script when they open, one after the other, and the second one then opens in
        milliseconds instead of seconds, so the two hands play in step."""
        key = (self.name, float(t_s), side)
        hit = _AT_CACHE.pop(key, None)
        if hit is not None:
            return hit
        other: Side = "right" if side == "left" else "left"
        if len(_AT_CACHE) >= _AT_CACHE_MAX:
            _AT_CACHE.clear()
        mine = self._at(t_s, side)
        theirs = self._at(t_s, other)
        for arr in theirs:
            arr.setflags(write=False)
        _AT_CACHE[(self.name, float(t_s), other)] = theirs
        return mine

    def _at(self, t_s: float, side: Side) -> tuple[F64, F64, F64]:
        a, b, tau = self._phase(t_s)
        angles = (1 - tau) * self._poses[getattr(a, side)] + tau * self._poses[getattr(b, side)]
        off = (1 - tau) * np.array(getattr(a, f"{side}_offset")) + tau * np.array(getattr(b, f"{side}_offset"))
        roll = (1 - tau) * getattr(a, f"{side}_roll_rad") + tau * getattr(b, f"{side}_roll_rad")
        rotvec = (1 - tau) * np.array(getattr(a, f"{side}_rotvec_rad")) + tau * np.array(getattr(b, f"{side}_rotvec_rad"))
        pos = np.array(NOMINAL_POS[side]) + off
        return angles, pos, _mat_to_quat(_palm_rotation(side, roll, rotvec))
