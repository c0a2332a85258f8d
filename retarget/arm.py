"""Arm IK: a wrist pose target (position + orientation, in the arm's base frame) -> arm joints.

Damped least squares (kernel ``arm_ik_solve``) with the posture in the null space, warm start from
the previous solution, step norm bounded, joints clamped to their limits. An unreachable target
yields the closest pose found, within limits, with ``reachable=False``.

``solve`` takes a target already in the base frame. ``step`` is the teleop path: a tracker wrist
pose, One-Euro filtered, mapped into the base frame (absolute, or clutch-relative after
``engage``), then solved, in one kernel call.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from retarget.filters import FilterConfig
from retarget.kernels.packed import (
    A_COLD_ITERS, A_DAMP, A_EE, A_ENGAGED, A_F_ON, A_ITERS, A_NPARAMS, A_OFFSET, A_PF_BETA, A_PF_D, A_PF_MIN, A_PH0, A_POSTURE,
    A_PR0, A_RF_BETA, A_RF_D, A_RF_MIN, A_RH0, A_RMAP, A_ROTW, A_RR0, A_SCALE, A_STEP, A_TOLM, A_TOLR,
    arm_step, arm_work_size, pack_tree,
)
from retarget.kernels.poses import mat_to_quat, quat_to_mat
from retarget.kinematics import KinematicTree
from teleop.errors import ConfigError

__all__ = ["ArmIK", "IKResult"]

F64 = npt.NDArray[np.float64]


class IKResult(NamedTuple):
    q: F64  # (nq,)
    pos_err_m: float
    rot_err_rad: float
    iterations: int
    reachable: bool


class ArmIK:
    def __init__(
        self,
        tree: KinematicTree,
        ee_frame: str,
        *,
        posture: npt.ArrayLike | None = None,
        rot_weight_m: float = 0.2,
        damping: float = 1e-2,
        posture_gain: float = 0.05,
        max_step_rad: float = 0.3,
        max_iters: int = 8,
        cold_iters: int = 100,
        tol_m: float = 1e-4,
        tol_rad: float = 1e-3,
        reach_tol_m: float = 1e-3,
        reach_tol_rad: float = float(np.deg2rad(1.0)),
        workspace_scale: float = 1.0,
        workspace_rotation: npt.ArrayLike | None = None,
        workspace_offset_m: npt.ArrayLike | None = None,
        position_filter: FilterConfig | None = None,
        orientation_filter: FilterConfig | None = None,
    ) -> None:
        if not (damping > 0 and max_step_rad > 0 and max_iters > 0 and rot_weight_m >= 0 and workspace_scale > 0):
            raise ConfigError("arm IK needs damping > 0, max_step_rad > 0, max_iters > 0, rot_weight_m >= 0, scale > 0")
        self.tree = tree
        self.ee = tree.frame_index(ee_frame)
        nq = tree.nq
        mid = 0.5 * (tree.lower + tree.upper)
        self.posture = np.clip(mid if posture is None else np.asarray(posture, dtype=np.float64), tree.lower, tree.upper)
        if self.posture.shape != (nq,):
            raise ConfigError(f"posture has shape {self.posture.shape}, the arm has {nq} joints")
        self.reach_tol = (reach_tol_m, reach_tol_rad)
        self.ti, self.tf = pack_tree(tree)
        p = np.zeros(A_NPARAMS)
        p[[A_ROTW, A_DAMP, A_POSTURE, A_STEP, A_ITERS, A_TOLM, A_TOLR, A_EE]] = (
            rot_weight_m, damping, posture_gain, max_step_rad, max_iters, tol_m, tol_rad, self.ee)
        p[A_COLD_ITERS] = cold_iters
        p[A_SCALE] = 1.0
        p[A_RMAP:A_RMAP + 9] = np.eye(3).ravel()
        self.af_direct = np.concatenate([self.posture, p])  # identity mapping, no filter: ``solve``
        p = p.copy()
        p[A_SCALE] = workspace_scale
        rmap = np.eye(3) if workspace_rotation is None else np.asarray(workspace_rotation, dtype=np.float64)
        p[A_RMAP:A_RMAP + 9] = rmap.ravel()
        p[A_OFFSET:A_OFFSET + 3] = np.zeros(3) if workspace_offset_m is None else workspace_offset_m
        if position_filter is not None and orientation_filter is not None:
            p[[A_PF_MIN, A_PF_BETA, A_PF_D, A_RF_MIN, A_RF_BETA, A_RF_D, A_F_ON]] = (
                position_filter.min_cutoff_hz, position_filter.beta, position_filter.d_cutoff_hz,
                orientation_filter.min_cutoff_hz, orientation_filter.beta, orientation_filter.d_cutoff_hz, 1.0)
        self.af = np.concatenate([self.posture, p])
        nw, ni = arm_work_size(tree.n_nodes, len(tree.f_node), nq)
        self.work = np.zeros(nw)
        self.iwork = np.zeros(ni, dtype=np.int64)
        self.flags = np.zeros(3, dtype=np.bool_)  # [pos filter init, rot filter init, cold start]
        self.q = self.posture.copy()
        self._quat = np.zeros(4)
        self._zero3 = np.zeros(3)
        self._base = len(self.posture)
        self.rejected = 0  # poses with NaN/inf (the previous solution was held)

    @property
    def engaged(self) -> bool:
        return self.af[self._base + A_ENGAGED] > 0

    def reset(self, q: npt.ArrayLike | None = None) -> None:
        """Warm start from ``q`` (default: the posture); forget the filter and the clutch."""
        self.q[:] = self.posture if q is None else np.clip(np.asarray(q, dtype=np.float64), self.tree.lower, self.tree.upper)
        self.flags[:] = False
        self.flags[2] = True
        self.af[self._base + A_ENGAGED] = 0.0

    def warmup(self) -> None:
        pose = self.tree.fk(self.posture)
        self.solve(pose.pos[self.ee], pose.rot[self.ee])
        self.step(np.zeros(3), np.array([1.0, 0, 0, 0]), 0.0)
        self.reset()

    def engage(self, wrist_pos: F64, wrist_quat: F64, arm_q: F64) -> None:
        """Clutch in: the robot wrist (at the measured ``arm_q``) follows the operator's motion
        relative to this tracker pose from now on; nothing jumps."""
        b = self._base
        self.reset(arm_q)
        pose = self.tree.fk(self.q)
        self.af[b + A_PH0:b + A_PH0 + 3] = wrist_pos
        r = np.zeros((3, 3))
        quat_to_mat(np.asarray(wrist_quat, dtype=np.float64), r)
        self.af[b + A_RH0:b + A_RH0 + 9] = r.ravel()
        self.af[b + A_PR0:b + A_PR0 + 3] = pose.pos[self.ee]
        self.af[b + A_RR0:b + A_RR0 + 9] = pose.rot[self.ee].ravel()
        self.af[b + A_ENGAGED] = 1.0
        self.flags[2] = False  # starts at the measured pose: the first step is a tracking step

    def disengage(self) -> None:
        self.af[self._base + A_ENGAGED] = 0.0

    def _result(self, res: tuple[float, float, float], out: F64 | None) -> IKResult:
        pe, re, it = res
        if it < 0:  # non-finite input: held the previous solution
            self.rejected += 1
        if out is not None:
            out[:] = self.q
            q = out
        else:
            q = self.q.copy()
        return IKResult(q, float(pe), float(re), int(it), bool(pe <= self.reach_tol[0] and re <= self.reach_tol[1]))

    def solve(self, target_pos: F64, target_rot: F64, out: F64 | None = None) -> IKResult:
        """Joints reaching ``target_pos`` (3,) [m] and ``target_rot`` (3, 3) in the base frame,
        warm-started from the previous solution."""
        mat_to_quat(np.ascontiguousarray(target_rot, dtype=np.float64), self._quat)
        flags = np.array([False, False, True])  # one-off target: solve to convergence
        res = arm_step(np.ascontiguousarray(target_pos, dtype=np.float64), self._quat, 0.0, self.q, self.ti, self.tf,
                       self.af_direct, self.work, self.iwork, flags)
        return self._result(res, out)

    def step(self, wrist_pos: F64, wrist_quat: F64, t_s: float, out: F64 | None = None) -> IKResult:
        """Teleop path: tracker wrist pose (3,) [m] and quaternion (4,) (w, x, y, z) at ``t_s``."""
        res = arm_step(wrist_pos, wrist_quat, t_s, self.q, self.ti, self.tf, self.af, self.work, self.iwork, self.flags)
        return self._result(res, out)

    def solve_global(self, target_pos: F64, target_rot: F64, restarts: int = 16, seed: int = 0) -> IKResult:
        """Like ``solve`` but from several starts (current, posture, random) when the first does not
        reach: for initialisation and offline use, not the per-tick path."""
        best = self.solve(target_pos, target_rot)
        rng = np.random.default_rng(seed)
        starts = [self.posture] + [rng.uniform(self.tree.lower, self.tree.upper) for _ in range(restarts)]
        for q0 in starts:
            if best.reachable:
                break
            self.q[:] = q0
            res = self.solve(target_pos, target_rot)
            if res.pos_err_m + 0.1 * res.rot_err_rad < best.pos_err_m + 0.1 * best.rot_err_rad:
                best = res
        self.q[:] = best.q
        return best
