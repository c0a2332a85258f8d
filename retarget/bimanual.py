"""One bimanual retargeting tick: keypoints -> both hands, tracker wrist poses -> both arms,
written into one command vector in the robot description's order (left_arm, left_hand,
right_arm, right_hand). Each side is two kernel calls (hand, arm), each of which filters its
inputs (One-Euro: the keypoints when the config has [filter.keypoints]), so a tick allocates
nothing. The hand commands are low-passed when the config's ``low_pass_alpha`` < 1.

Workspace mapping (``[workspace]`` in the retargeting config): tracker positions are scaled and
rotated into the robot base frame (R_map from ``rotation_rpy_deg``). Before ``engage`` the mapping
is absolute (``offset_m`` added); ``engage(side, ...)`` re-centres it so the robot wrist stays
where it is and follows the operator's motion from there (clutch): the robot never jumps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import mujoco
import numpy as np
import numpy.typing as npt

from retarget.arm import ArmIK
from retarget.config import RetargetConfig, load_retarget_config
from retarget.hand import HandRetargeter
from retarget.kernels.packed import bimanual_step
from retarget.kinematics import compile_tree
from robots.description import RobotDescription
from teleop.types import SIDES, Side

__all__ = ["BimanualRetargeter", "TickResult", "home_posture"]

F64 = npt.NDArray[np.float64]


class TickResult(NamedTuple):
    reachable: tuple[bool, bool]  # (left, right) arm targets reached within tolerance
    pos_err_m: tuple[float, float]
    rot_err_rad: tuple[float, float]


def home_posture(model_path, joints: tuple[str, ...]) -> F64 | None:
    """Joint values of the model's ``home`` keyframe (MJCF), if it has one."""
    if str(model_path).lower().endswith(".urdf"):
        return None
    model = mujoco.MjModel.from_xml_path(str(model_path))
    key = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_KEY, "home")
    if key < 0:
        return None
    return np.array([model.key_qpos[key, model.jnt_qposadr[model.joint(j).id]] for j in joints])


@dataclass
class _Side:
    hand: HandRetargeter | None
    arm: ArmIK
    arm_slice: slice
    hand_slice: slice


class BimanualRetargeter:
    def __init__(self, description: RobotDescription, config: RetargetConfig | None = None, filter_inputs: bool = True) -> None:
        self.description = description
        self.config = config or load_retarget_config(description)
        cfg = self.config
        groups = description.groups
        slices, pos = {}, 0
        for g in ("left_arm", "left_hand", "right_arm", "right_hand"):
            slices[g] = slice(pos, pos + len(groups[g]))
            pos += len(groups[g])
        self.n_command = pos
        ws = cfg.workspace
        self.sides: dict[Side, _Side] = {}
        for side in SIDES:
            hc = cfg.hands.get(side)
            hand = None
            if hc is not None:  # the same construction as offline and the Python API (every key honoured)
                hand = HandRetargeter.from_config(
                    hc, keypoint_filter=cfg.keypoint_filter if filter_inputs else None,
                    limit_overrides=description.position_overrides,
                )
            ac = cfg.arms[side]
            atree = compile_tree(ac.model_path, ac.base_frame, [ac.ee_frame], ac.joints, description.position_overrides)
            posture = ac.posture if ac.posture is not None else home_posture(ac.model_path, ac.joints)
            arm = ArmIK(
                atree, ac.ee_frame, posture=posture, rot_weight_m=ac.rot_weight_m, damping=ac.damping,
                posture_gain=ac.posture_gain, max_step_rad=ac.max_step_rad, max_iters=ac.max_iters,
                cold_iters=ac.cold_iters,
                workspace_scale=ws.scale, workspace_rotation=ws.rotation, workspace_offset_m=ws.offset_m,
                position_filter=cfg.wrist_position_filter if filter_inputs else None,
                orientation_filter=cfg.wrist_orientation_filter if filter_inputs else None,
            )
            self.sides[side] = _Side(hand, arm, slices[f"{side}_arm"], slices[f"{side}_hand"])
        self._slices = np.array([v for g in ("left_arm", "left_hand", "right_arm", "right_hand")
                                 for v in (slices[g].start, slices[g].stop)], dtype=np.int64)
        self._results = np.zeros(8)
        self._args = self._kernel_args()  # the same arrays every tick (updated in place)

    def warmup(self) -> None:
        """Compile or load every kernel and run it once, then reset (before engaging a robot)."""
        for s in self.sides.values():
            if s.hand is not None:
                s.hand.warmup()
            s.arm.warmup()
        kp = np.zeros((2, 21, 3))
        kp[:, 1:, 0] = np.linspace(0.02, 0.18, 20)
        self.tick(0.0, kp, np.zeros((2, 3)), np.tile([1.0, 0, 0, 0], (2, 1)), np.zeros(self.n_command))
        self.reset()

    def reset(self) -> None:
        for s in self.sides.values():
            if s.hand is not None:
                s.hand.reset()
            s.arm.reset()

    def engage(self, side: Side, wrist_pos: F64, wrist_quat: F64, arm_q: F64) -> None:
        """Clutch in one side: its robot wrist (at the measured ``arm_q``) follows the operator's
        motion relative to this tracker pose from now on."""
        self.sides[side].arm.engage(wrist_pos, wrist_quat, arm_q)

    def disengage(self, side: Side) -> None:
        self.sides[side].arm.disengage()

    def _kernel_args(self) -> tuple:
        none_hand = (np.zeros(0), np.zeros(3, dtype=np.int64), np.zeros(0), np.zeros(1, dtype=np.int64), np.zeros(0),
                     np.zeros(0), np.zeros(0, dtype=np.int64), np.zeros(2, dtype=np.bool_))  # skipped: 0 nodes
        args: list = []
        for side in SIDES:
            h = self.sides[side].hand
            args += none_hand if h is None else (h.q, h.ti, h.tf, h.vi, h.vf, h.work, h.iwork, h.flags)
        for side in SIDES:
            a = self.sides[side].arm
            args += (a.q, a.ti, a.tf, a.af, a.work, a.iwork, a.flags)
        return tuple(args)

    def tick(self, t_s: float, keypoints: F64, wrist_pos: F64, wrist_quat: F64, out: F64, *,
             per_frame: bool = False) -> TickResult:
        """One tick. ``keypoints`` (2, 21, 3) wrist frame [m]; ``wrist_pos`` (2, 3) [m] and
        ``wrist_quat`` (2, 4) (w, x, y, z) in the tracker frame; side order (left, right);
        ``t_s`` capture time [s]. Writes the command vector (n_command,) into ``out``. One kernel
        call: no allocation, one dispatch. ``per_frame``: each hand solves the whole keypoint frame
        (offline: a video's frames), not one live tick."""
        r = self._results
        bimanual_step(keypoints, wrist_pos, wrist_quat, t_s, out, self._slices, r, *self._args, per_frame)
        left, right = self.sides["left"].arm, self.sides["right"].arm
        for arm, k in ((left, 2), (right, 5)):
            if r[k] < 0:
                arm.rejected += 1
        for side, k in (("left", 6), ("right", 7)):
            h = self.sides[side].hand
            if h is not None and r[k] < 0:
                h.rejected += 1
        tol_m, tol_r = left.reach_tol
        return TickResult(
            (bool(r[0] <= tol_m and r[1] <= tol_r), bool(r[3] <= tol_m and r[4] <= tol_r)),
            (float(r[0]), float(r[3])), (float(r[1]), float(r[4])),
        )
