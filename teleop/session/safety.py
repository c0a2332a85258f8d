"""The last software step before a command leaves the session: joint position limits, the
robot's velocity limits per tick, a per-tick ramp after (re-)engaging, and a minimum distance
between the two wrists. One numba call per tick, nothing allocated."""

from __future__ import annotations

import math

import numba
import numpy as np
import numpy.typing as npt

from retarget.kernels.kinematics import fk_frames, fk_nodes
from retarget.kernels.packed import tree_views

__all__ = ["command_step", "CLAMPED", "RATE_LIMITED", "RAMPED", "HANDS_TOO_CLOSE", "LIMITS_APPLIED", "SafetyFilter"]

CLAMPED = 1
RATE_LIMITED = 2
RAMPED = 4
HANDS_TOO_CLOSE = 8

#: The session's counters of this filter doing its job (ticks a command was held to a limit), by
#: what held it: totals in every summary, never faults.
LIMITS_APPLIED = {"clamped": "joint position limits", "rate_limited": "joint velocity limits"}


@numba.njit(cache=True, nogil=True)
def _wrist_pos(q, start, ti, tf, ee, node_pos, node_rot, frame_pos, frame_rot, qbuf, out):
    n, nf, nq, parent, jtype, qidx, f_node, mult, offset, axis, t_pos, t_rot, f_pos, f_rot, lower, upper = tree_views(ti, tf)
    for i in range(nq):
        qbuf[i] = q[start + i]
    fk_nodes(qbuf[:nq], parent, jtype, qidx, mult, offset, axis, t_pos, t_rot, node_pos[:n], node_rot[:n])
    fk_frames(node_pos[:n], node_rot[:n], f_node, f_pos, f_rot, frame_pos[:nf], frame_rot[:nf])
    for a in range(3):
        out[a] = frame_pos[ee, a]


@numba.njit(cache=True)  # called from the control loop: keeps the GIL (see bimanual_step)
def command_step(target, prev, out, lower, upper, max_step, ramp_step, arms, lti, ltf, lee, rti, rtf, ree,
                 min_dist, work, wrists):
    """``out`` = ``target`` clamped to [lower, upper], moved from ``prev`` by at most
    min(max_step, ramp_step) per joint; if the wrists of ``out`` would be closer than
    ``min_dist``, both arms keep ``prev``. ``arms`` (4,) int: left arm start, stop, right arm
    start, stop in the command vector (stop == start: no arm). Returns flag bits; ``wrists`` (2, 3)
    gets the wrist positions of ``out``."""
    flags = 0
    n = target.shape[0]
    for i in range(n):
        v = target[i]
        if v < lower[i]:
            v = lower[i]
            flags |= CLAMPED
        elif v > upper[i]:
            v = upper[i]
            flags |= CLAMPED
        d = v - prev[i]
        cap = max_step[i]
        if ramp_step < cap:
            cap = ramp_step
            if abs(d) > cap:
                flags |= RAMPED
        elif abs(d) > cap:
            flags |= RATE_LIMITED
        if d > cap:
            d = cap
        elif d < -cap:
            d = -cap
        out[i] = prev[i] + d
    if arms[1] > arms[0] and arms[3] > arms[2] and min_dist > 0.0:
        node_pos = work[0:300].reshape((100, 3))
        node_rot = work[300:1200].reshape((100, 3, 3))
        frame_pos = work[1200:1230].reshape((10, 3))
        frame_rot = work[1230:1320].reshape((10, 3, 3))
        qbuf = work[1320:1420]
        _wrist_pos(out, arms[0], lti, ltf, lee, node_pos, node_rot, frame_pos, frame_rot, qbuf, wrists[0])
        _wrist_pos(out, arms[2], rti, rtf, ree, node_pos, node_rot, frame_pos, frame_rot, qbuf, wrists[1])
        dx = wrists[0, 0] - wrists[1, 0]
        dy = wrists[0, 1] - wrists[1, 1]
        dz = wrists[0, 2] - wrists[1, 2]
        if math.sqrt(dx * dx + dy * dy + dz * dz) < min_dist:
            flags |= HANDS_TOO_CLOSE
            for i in range(arms[0], arms[1]):
                out[i] = prev[i]
            for i in range(arms[2], arms[3]):
                out[i] = prev[i]
            _wrist_pos(out, arms[0], lti, ltf, lee, node_pos, node_rot, frame_pos, frame_rot, qbuf, wrists[0])
            _wrist_pos(out, arms[2], rti, rtf, ree, node_pos, node_rot, frame_pos, frame_rot, qbuf, wrists[1])
    return flags


class SafetyFilter:
    """Holds the arrays ``command_step`` needs for one robot (limits from the robot's spec, arm
    trees from the retargeter)."""

    def __init__(self, lower, upper, velocity, rate_hz: float, arms: tuple[int, int, int, int], left_arm, right_arm,
                 min_hand_distance_m: float) -> None:
        self.lower = np.ascontiguousarray(lower, dtype=np.float64)
        self.upper = np.ascontiguousarray(upper, dtype=np.float64)
        self.max_step = np.ascontiguousarray(velocity, dtype=np.float64) / rate_hz
        self.arms = np.array(arms, dtype=np.int64)
        self.l = (left_arm.ti, left_arm.tf, int(left_arm.ee))
        self.r = (right_arm.ti, right_arm.tf, int(right_arm.ee))
        for ti in (left_arm.ti, right_arm.ti):
            if ti[0] > 100 or ti[1] > 10 or ti[2] > 100:
                raise ValueError("arm trees above 100 nodes / 10 frames are not supported by the hand-distance check")
        self.min_dist = float(min_hand_distance_m)
        self.work = np.zeros(1420)
        self.wrists = np.zeros((2, 3))

    @classmethod
    def for_retargeter(cls, retarget, lower, upper, velocity, rate_hz: float,
                       min_hand_distance_m: float) -> SafetyFilter:
        """The filter for a ``BimanualRetargeter``'s robot: its arm slices and arm trees."""
        left, right = retarget.sides["left"], retarget.sides["right"]
        arms = (left.arm_slice.start, left.arm_slice.stop, right.arm_slice.start, right.arm_slice.stop)
        return cls(lower, upper, velocity, rate_hz, arms, left.arm, right.arm, min_hand_distance_m)

    def step(self, target: npt.NDArray[np.float64], prev: npt.NDArray[np.float64], out: npt.NDArray[np.float64],
             ramp_step: float = math.inf) -> int:
        return command_step(target, prev, out, self.lower, self.upper, self.max_step, ramp_step, self.arms,
                            self.l[0], self.l[1], self.l[2], self.r[0], self.r[1], self.r[2], self.min_dist,
                            self.work, self.wrists)
