"""Parametric human hand: 20 joint angles -> 21 keypoints (MediaPipe order) in the wrist frame.

Wrist frame (the same rule as the robot's ``<side>_wrist`` sites): origin at the wrist
(keypoint 0); x from the wrist towards the middle-finger MCP (keypoint 9 = (L, 0, 0)); z the palm
normal pointing out of the palm on the palmar side (fingers curl towards +z); y = z cross x. So the
thumb is on +y on a left hand and on -y on a right hand; a right hand is a left hand with y -> -y.

Angles (20, radians), fixed order, see ``ANGLE_NAMES``: thumb (cmc_abd, cmc_flex, mcp_flex,
ip_flex), then index, middle, ring, pinky each (mcp_abd, mcp_flex, pip_flex, dip_flex).
Positive flexion curls towards the palm (+z); positive abduction spreads away from the middle
finger (the middle finger's + is towards the thumb); thumb cmc_abd + lifts the thumb out of the
palm plane towards +z, cmc_flex + swings it across the palm towards the pinky. All zeros is a flat
open hand, fingers along about +x, the thumb in the palm plane at ``THUMB_REST_YAW_RAD`` from x.

Defaults: phalanx lengths from Buryanov & Kotiuk 2010 (``docs/hand-keypoints.md``), a palm
template for the MCP and CMC positions, all scaled so that the wrist-to-middle-fingertip distance
of the flat hand equals ``hand_length_m``. Per-operator calibration (``HandCalibration``) scales
each bone and offsets each angle.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple

import numpy as np
import numpy.typing as npt

from retarget.kernels.hand_model import hand_keypoints, hand_keypoints_batch
from teleop.errors import ConfigError
from teleop.types import SIDES, Side

__all__ = [
    "KEYPOINT_NAMES",
    "KEYPOINT_PARENT",
    "FINGER_NAMES",
    "ANGLE_NAMES",
    "ANGLE_LIMITS_RAD",
    "N_ANGLES",
    "N_KEYPOINTS",
    "TIP_INDEX",
    "REFERENCE_HAND_LENGTH_M",
    "HandCalibration",
    "HandSkeleton",
    "make_skeleton",
    "HumanHand",
]

N_KEYPOINTS: Final = 21
N_ANGLES: Final = 20

KEYPOINT_NAMES: Final[tuple[str, ...]] = (
    "WRIST",
    "THUMB_CMC", "THUMB_MCP", "THUMB_IP", "THUMB_TIP",
    "INDEX_FINGER_MCP", "INDEX_FINGER_PIP", "INDEX_FINGER_DIP", "INDEX_FINGER_TIP",
    "MIDDLE_FINGER_MCP", "MIDDLE_FINGER_PIP", "MIDDLE_FINGER_DIP", "MIDDLE_FINGER_TIP",
    "RING_FINGER_MCP", "RING_FINGER_PIP", "RING_FINGER_DIP", "RING_FINGER_TIP",
    "PINKY_MCP", "PINKY_PIP", "PINKY_DIP", "PINKY_TIP",
)  # fmt: skip

#: Parent keypoint of each keypoint in the kinematic tree 0-1-2-3-4, 0-5-6-7-8, ... (-1: root).
#: Bone ``b`` (0..19) of ``HandCalibration.bone_scale`` is the bone ending at keypoint ``b + 1``.
KEYPOINT_PARENT: Final[npt.NDArray[np.int64]] = np.array(
    [-1, 0, 1, 2, 3, 0, 5, 6, 7, 0, 9, 10, 11, 0, 13, 14, 15, 0, 17, 18, 19], dtype=np.int64
)

FINGER_NAMES: Final[tuple[str, ...]] = ("thumb", "index", "middle", "ring", "pinky")

#: Keypoint index of each fingertip, in ``FINGER_NAMES`` order.
TIP_INDEX: Final[dict[str, int]] = {name: 4 + 4 * c for c, name in enumerate(FINGER_NAMES)}

ANGLE_NAMES: Final[tuple[str, ...]] = (
    "thumb_cmc_abd", "thumb_cmc_flex", "thumb_mcp_flex", "thumb_ip_flex",
    "index_mcp_abd", "index_mcp_flex", "index_pip_flex", "index_dip_flex",
    "middle_mcp_abd", "middle_mcp_flex", "middle_pip_flex", "middle_dip_flex",
    "ring_mcp_abd", "ring_mcp_flex", "ring_pip_flex", "ring_dip_flex",
    "pinky_mcp_abd", "pinky_mcp_flex", "pinky_pip_flex", "pinky_dip_flex",
)  # fmt: skip

_THUMB_LIMITS = [(-0.35, 1.30), (-0.50, 1.20), (-0.35, 1.10), (-0.35, 1.45)]


def _finger_limits(abd_max: float) -> list[tuple[float, float]]:
    # mcp_abd, mcp_flex (hyperextension to -30 deg), pip (to 110 deg), dip (to 80 deg)
    return [(-0.35, abd_max), (-0.50, 1.60), (-0.10, 1.92), (-0.20, 1.40)]


#: Active range of motion of a typical adult hand, (20, 2) [min, max] in ``ANGLE_NAMES`` order
#: (rounded from clinical AROM tables; a range for plausibility checks and synthetic data, not a
#: hard anatomical limit of every operator).
ANGLE_LIMITS_RAD: Final[npt.NDArray[np.float64]] = np.array(
    _THUMB_LIMITS
    + _finger_limits(0.40)
    + _finger_limits(0.35)
    + _finger_limits(0.35)
    + _finger_limits(0.55),
    dtype=np.float64,
)
ANGLE_LIMITS_RAD.setflags(write=False)

# ---------------------------------------------------------------------------------------------
# Reference skeleton (left-hand wrist frame, metres), for REFERENCE_HAND_LENGTH_M.

#: Phalanx lengths, Buryanov & Kotiuk 2010 (mm): thumb (metacarpal, proximal, distal + tissue),
#: fingers (proximal, middle, distal + tissue).
_SEGMENT_MM = np.array(
    [
        [46.22, 31.57, 21.67 + 5.67],
        [39.78, 22.38, 15.82 + 3.84],
        [44.63, 26.33, 17.40 + 3.95],
        [41.37, 25.65, 17.30 + 3.95],
        [32.57, 18.11, 15.96 + 3.73],
    ]
)

#: Wrist to the middle fingertip of the flat reference hand.
REFERENCE_HAND_LENGTH_M: Final = 0.185

_MIDDLE_MCP_X_M = REFERENCE_HAND_LENGTH_M - _SEGMENT_MM[2].sum() / 1000.0  # 0.0927 m

#: Palm template: thumb CMC and index..pinky MCP centres (x distal, y radial, z palmar). The four
#: MCPs span 72 mm across the palm and form a slight transverse arch (index and pinky palmar of
#: the middle MCP); the CMC sits near the wrist on the thumb side.
_BASE_POS_M = np.array(
    [
        [0.0240, 0.0220, 0.0060],
        [0.0890, 0.0260, 0.0030],
        [_MIDDLE_MCP_X_M, 0.0, 0.0],
        [0.0865, -0.0225, 0.0030],
        [0.0780, -0.0460, 0.0060],
    ]
)

#: Zero-pose direction of each chain in the palm plane (+ towards the thumb): the thumb at 34 deg,
#: the fingers fanning slightly.
THUMB_REST_YAW_RAD: Final = 0.60
_REST_YAW_RAD = np.array([THUMB_REST_YAW_RAD, 0.05, 0.0, -0.05, -0.12])

#: Axial twist of each chain's first segment: the thumb is pronated so that its MCP and IP flexion
#: curls towards the palm and the little finger, not straight out of the palm plane.
_TWIST_RAD = np.array([0.9, 0.0, 0.0, 0.0, 0.0])


def _as_float_tuple(name: str, value: Any, n: int) -> tuple[float, ...]:
    try:
        out = tuple(float(v) for v in value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{name} must be a list of {n} numbers, got {value!r}") from exc
    if len(out) != n:
        raise ConfigError(f"{name} must have {n} entries (one per bone or angle), got {len(out)}")
    if not all(math.isfinite(v) for v in out):
        raise ConfigError(f"{name} must be finite, got {list(out)}")
    return out


@dataclass(frozen=True, kw_only=True)
class HandCalibration:
    """Per-operator calibration.

    ``bone_scale`` (20): factor on bone ``b``, the bone ending at keypoint ``b + 1`` (so
    ``bone_scale[8]`` scales wrist -> MIDDLE_FINGER_MCP, ``bone_scale[9]`` MCP -> PIP); the
    wrist -> MCP / CMC bones scale the palm template position. ``angle_offset_rad`` (20): added to
    the measured angles, in ``ANGLE_NAMES`` order (anatomical = measured + offset).
    """

    bone_scale: tuple[float, ...] = field(default=(1.0,) * N_ANGLES)
    angle_offset_rad: tuple[float, ...] = field(default=(0.0,) * N_ANGLES)

    def __post_init__(self) -> None:
        scale = _as_float_tuple("bone_scale", self.bone_scale, N_ANGLES)
        if not all(s > 0.0 for s in scale):
            bad = {i: s for i, s in enumerate(scale) if not s > 0.0}
            raise ConfigError(f"bone_scale must be > 0 for every bone, got {bad} (index: value)")
        object.__setattr__(self, "bone_scale", scale)
        object.__setattr__(
            self,
            "angle_offset_rad",
            _as_float_tuple("angle_offset_rad", self.angle_offset_rad, N_ANGLES),
        )

    def to_dict(self) -> dict[str, list[float]]:
        """Plain lists, ready for ``json.dump`` or a TOML writer."""
        return {
            "bone_scale": list(self.bone_scale),
            "angle_offset_rad": list(self.angle_offset_rad),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HandCalibration:
        """Inverse of ``to_dict``; missing keys take the defaults. Raises ``ConfigError``."""
        if not isinstance(data, dict):
            raise ConfigError(f"a hand calibration must be a table/dict, got {type(data).__name__}")
        allowed = ("angle_offset_rad", "bone_scale")
        unknown = sorted(set(data) - set(allowed))
        if unknown:
            raise ConfigError(
                f"unknown HandCalibration key(s) {unknown}; allowed keys: {list(allowed)}"
            )
        return cls(**data)


class HandSkeleton(NamedTuple):
    """Flat arrays of one hand's skeleton, left-hand wrist frame, metres (the kernel's inputs)."""

    base_pos_m: npt.NDArray[np.float64]  # Shape (5, 3): thumb CMC, index..pinky MCP
    seg_len_m: npt.NDArray[np.float64]  # Shape (5, 3): three segments per chain, base to tip
    rest_yaw_rad: npt.NDArray[np.float64]  # Shape (5,)
    twist_rad: npt.NDArray[np.float64]  # Shape (5,)
    angle_offset_rad: npt.NDArray[np.float64]  # Shape (20,)


def make_skeleton(
    hand_length_m: float = REFERENCE_HAND_LENGTH_M, calibration: HandCalibration | None = None
) -> HandSkeleton:
    """The reference skeleton scaled to ``hand_length_m`` with ``calibration`` applied."""
    if not (math.isfinite(hand_length_m) and 0.05 <= hand_length_m <= 0.40):
        raise ConfigError(
            f"hand_length_m={hand_length_m!r}: must be within 0.05..0.40 m (adults: ~0.16..0.21)"
        )
    cal = calibration or HandCalibration()
    k = hand_length_m / REFERENCE_HAND_LENGTH_M
    scale = np.asarray(cal.bone_scale, dtype=np.float64).reshape(5, 4)
    return HandSkeleton(
        base_pos_m=np.ascontiguousarray(_BASE_POS_M * k * scale[:, :1]),
        seg_len_m=np.ascontiguousarray(_SEGMENT_MM / 1000.0 * k * scale[:, 1:]),
        rest_yaw_rad=_REST_YAW_RAD.copy(),
        twist_rad=_TWIST_RAD.copy(),
        angle_offset_rad=np.asarray(cal.angle_offset_rad, dtype=np.float64),
    )


def _check(name: str, arr: npt.ArrayLike, shape: tuple[int, ...]) -> npt.NDArray[np.float64]:
    a = np.ascontiguousarray(arr, dtype=np.float64)
    if a.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {a.shape}")
    return a


class HumanHand:
    """One human hand. ``HumanHand("left").keypoints(np.zeros(20))`` is the flat open hand.

    ``skeleton`` holds the (already scaled and calibrated) arrays the kernel reads; ``sign_y`` is
    +1.0 for a left hand, -1.0 for a right hand.
    """

    def __init__(
        self,
        side: Side,
        hand_length_m: float = REFERENCE_HAND_LENGTH_M,
        calibration: HandCalibration | None = None,
    ) -> None:
        if side not in SIDES:
            raise ConfigError(f"side={side!r}: must be one of {list(SIDES)}")
        self.side: Side = side
        self.sign_y = 1.0 if side == "left" else -1.0
        self.hand_length_m = float(hand_length_m)
        self.calibration = calibration or HandCalibration()
        self.skeleton = make_skeleton(self.hand_length_m, self.calibration)

    def keypoints(
        self, angles_rad: npt.ArrayLike, out: npt.NDArray[np.float64] | None = None
    ) -> npt.NDArray[np.float64]:
        """Keypoints for ``angles_rad`` (Shape (20,), ``ANGLE_NAMES`` order). Shape (21, 3), metres.

        Pass a preallocated C-contiguous float64 ``out`` to allocate nothing.
        """
        q = _check("angles_rad", angles_rad, (N_ANGLES,))
        if out is None:
            out = np.empty((N_KEYPOINTS, 3))
        elif out.shape != (N_KEYPOINTS, 3) or out.dtype != np.float64:
            raise ValueError(
                f"out must be a float64 array of shape (21, 3), got {out.dtype} {out.shape}"
            )
        s = self.skeleton
        hand_keypoints(
            q,
            s.angle_offset_rad,
            s.base_pos_m,
            s.seg_len_m,
            s.rest_yaw_rad,
            s.twist_rad,
            self.sign_y,
            out,
        )
        return out

    def keypoints_batch(
        self, angles_rad: npt.ArrayLike, out: npt.NDArray[np.float64] | None = None
    ) -> npt.NDArray[np.float64]:
        """Keypoints for every row of ``angles_rad`` (Shape (T, 20)). Shape (T, 21, 3)."""
        q = np.ascontiguousarray(angles_rad, dtype=np.float64)
        if q.ndim != 2 or q.shape[1] != N_ANGLES:
            raise ValueError(f"angles_rad must have shape (T, 20), got {q.shape}")
        shape = (q.shape[0], N_KEYPOINTS, 3)
        if out is None:
            out = np.empty(shape)
        elif out.shape != shape or out.dtype != np.float64:
            raise ValueError(
                f"out must be a float64 array of shape {shape}, got {out.dtype} {out.shape}"
            )
        s = self.skeleton
        hand_keypoints_batch(
            q,
            s.angle_offset_rad,
            s.base_pos_m,
            s.seg_len_m,
            s.rest_yaw_rad,
            s.twist_rad,
            self.sign_y,
            out,
        )
        return out

    def bone_lengths_m(self) -> npt.NDArray[np.float64]:
        """Length of bone ``b`` (ending at keypoint ``b + 1``), for any angles. Shape (20,)."""
        s = self.skeleton
        return np.concatenate(
            [np.linalg.norm(s.base_pos_m, axis=1)[:, None], s.seg_len_m], axis=1
        ).ravel()
