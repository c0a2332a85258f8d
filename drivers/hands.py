"""Keypoints for glove drivers: what a glove measures (finger curls, joint angles) -> the 21
keypoints a ``HandSample`` must carry (``drivers.samples``: the session retargets from keypoints
only), through the human hand model ``retarget.human_hand.HumanHand``.

This is the operator's own hand, not the robot's: no retargeting happens here. One object per
glove, made once (it loads the model's compiled kernel), then one call per reading::

    hand = GloveHand("right")                          # hand_length_m=0.185 by default
    keypoints, angles = hand.from_curls(curls)         # 5 curls thumb..pinky, 0 open .. 1 fist
    keypoints = hand.keypoints(angles)                 # or 20 joint angles [rad], ANGLE_NAMES order

Curls map to angles as the ``opengloves`` driver maps its glove's curls and splays
(``drivers.opengloves.channels_to_angles``: a curl flexes a finger's three joints together, a
fist at 1); a glove with per-joint sensors fills the 20 angles itself and calls ``keypoints``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from drivers.opengloves.opengloves import channels_to_angles
from retarget.human_hand import N_ANGLES, REFERENCE_HAND_LENGTH_M, HandCalibration, HumanHand
from teleop.errors import DeviceError
from teleop.types import Side

__all__ = ["GloveHand"]

F64 = npt.NDArray[np.float64]

_NO_JOINTS = np.full((5, 4), np.nan)  # no per-joint readings: every joint follows its finger's curl


class GloveHand(HumanHand):
    """``HumanHand`` plus ``from_curls``; see the module docstring. ``keypoints(angles)`` is the
    model's own (Shape (20,) -> (21, 3), metres, wrist frame)."""

    def __init__(
        self,
        side: Side,
        hand_length_m: float = REFERENCE_HAND_LENGTH_M,
        calibration: HandCalibration | None = None,
    ) -> None:
        super().__init__(side, hand_length_m, calibration)
        self.keypoints(np.zeros(N_ANGLES))  # compile / load the kernel now, not at the first reading

    def from_curls(self, curls: npt.ArrayLike, splay: npt.ArrayLike | None = None) -> tuple[F64, F64]:
        """(keypoints (21, 3) [m], angles (20,) [rad]) for 5 curls thumb..pinky, 0 (open) .. 1
        (fist), and optionally 5 splays -1..1 (0 neutral, + spreads away from the middle finger).
        Values outside the ranges are clipped; a reading that is not 5 finite numbers raises
        ``DeviceError`` (count it as a bad reading in the driver)."""
        c = np.asarray(curls, dtype=np.float64)
        s = np.zeros(5) if splay is None else np.asarray(splay, dtype=np.float64)
        if c.shape != (5,) or s.shape != (5,) or not (np.isfinite(c).all() and np.isfinite(s).all()):
            raise DeviceError(f"curls {c.tolist()}, splay {s.tolist()}: expected 5 finite numbers each, thumb to pinky")
        angles = channels_to_angles(np.clip(c, 0.0, 1.0), _NO_JOINTS, np.clip(s, -1.0, 1.0))
        return self.keypoints(angles), angles
