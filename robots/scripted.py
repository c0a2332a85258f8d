"""Scripted joint-space motion plans (offline: tests, demos, smoke runs; not a hot path).

A ``Plan`` is a list of keyframes in the command-vector space of a ``RobotDescription``
(``description.joint_names``: left arm, left hand, right arm, right hand), interpolated with a
minimum-jerk profile. Waypoints that are easier to state in Cartesian space (the wrist beside
an object) are turned into joint values once, with ``solve_site_ik``.

The grasp plans are written for the bundled ``dexhumanoid`` (its hand layout, ``home`` keyframe
and object names) and assume every commanded joint has a position actuator of the same name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import mujoco
import numpy as np
import numpy.typing as npt

from robots.description import RobotDescription
from teleop.errors import ConfigError, SolverFailed
from teleop.types import SIDES, Side

__all__ = [
    "Plan",
    "PlanBuilder",
    "solve_site_ik",
    "actuator_indices",
    "home_command",
    "grasp_and_lift_plan",
    "bimanual_demo_plan",
]

FloatArray = npt.NDArray[np.float64]


# ---------------------------------------------------------------------------------------------
# Inverse kinematics.


def _target_quat(rot: npt.ArrayLike) -> FloatArray:
    arr = np.asarray(rot, dtype=np.float64)
    if arr.shape == (4,):
        quat = arr / np.linalg.norm(arr)
    elif arr.shape in ((3, 3), (9,)):
        quat = np.empty(4)
        mujoco.mju_mat2Quat(quat, arr.reshape(9))
    else:
        raise ValueError(
            "target rotation must be a quaternion (4,) or a rotation matrix (3, 3) or (9,), "
            f"got shape {arr.shape}"
        )
    return quat


_ONE_DOF_JOINTS = (int(mujoco.mjtJoint.mjJNT_HINGE), int(mujoco.mjtJoint.mjJNT_SLIDE))


def solve_site_ik(
    model: mujoco.MjModel,
    data: mujoco.MjData,
    site: str,
    joint_names: Sequence[str],
    target_pos: npt.ArrayLike,
    target_rot: npt.ArrayLike | None = None,
    q0: npt.ArrayLike | None = None,
    *,
    iters: int = 300,
    damping: float = 1e-3,
    posture_weight: float = 0.1,
    rot_weight_m: float = 0.1,
    max_step_rad: float = 0.2,
    tol_m: float = 1e-4,
    tol_rad: float = 1e-3,
    accept_m: float = 5e-3,
    accept_rad: float = 0.05,
    raise_on_fail: bool = True,
) -> FloatArray:
    """Damped least-squares IK of one site over some hinge/slide joints.

    ``data`` supplies the state of every other joint and is not modified (a scratch ``MjData`` is
    used). ``target_rot`` is a quaternion (w, x, y, z) or a rotation matrix; ``None`` solves for
    position only. ``q0`` (default: the joints' values in ``data``) is the initial guess and the
    posture the solution is pulled towards in the task null space with gain ``posture_weight``
    (keeps elbows natural without biasing the site pose).
    Rotation errors are weighted by ``rot_weight_m`` [m/rad] against position errors. Steps are
    bounded by ``max_step_rad`` and joint ranges are respected.

    Returns the joint values, shape (len(joint_names),). Raises ``SolverFailed`` if the final
    error exceeds ``accept_m`` / ``accept_rad`` and ``raise_on_fail`` is set.
    """
    jids = [_joint_id(model, name) for name in joint_names]
    for name, jid in zip(joint_names, jids, strict=True):
        if int(model.jnt_type[jid]) not in _ONE_DOF_JOINTS:
            raise ValueError(
                f"joint {name!r} is not a hinge or slide joint; IK handles 1-dof joints only"
            )
    qadr = model.jnt_qposadr[jids]
    dadr = model.jnt_dofadr[jids]
    lo = np.where(model.jnt_limited[jids], model.jnt_range[jids, 0], -np.inf)
    hi = np.where(model.jnt_limited[jids], model.jnt_range[jids, 1], np.inf)
    site_id = model.site(site).id
    want_pos = np.asarray(target_pos, dtype=np.float64).reshape(3)
    want_quat = None if target_rot is None else _target_quat(target_rot)

    scratch = mujoco.MjData(model)
    scratch.qpos[:] = data.qpos
    q = np.clip(
        np.asarray(q0, dtype=np.float64) if q0 is not None else data.qpos[qadr].copy(), lo, hi
    )
    rest = q.copy()
    n = len(jids)
    jacp = np.zeros((3, model.nv))
    jacr = np.zeros((3, model.nv))
    quat = np.empty(4)
    qerr = np.empty(4)
    neg = np.empty(4)
    rot_err = np.zeros(3)
    best_q, best_cost = q.copy(), np.inf
    pos_err_m, rot_err_rad = np.inf, 0.0

    for _ in range(iters):
        scratch.qpos[qadr] = q
        mujoco.mj_kinematics(model, scratch)
        mujoco.mj_comPos(model, scratch)
        pos_err = want_pos - scratch.site_xpos[site_id]
        if want_quat is not None:
            mujoco.mju_mat2Quat(quat, scratch.site_xmat[site_id])
            mujoco.mju_negQuat(neg, quat)
            mujoco.mju_mulQuat(qerr, want_quat, neg)
            mujoco.mju_quat2Vel(rot_err, qerr, 1.0)
        pos_err_m, rot_err_rad = float(np.linalg.norm(pos_err)), float(np.linalg.norm(rot_err))
        cost = pos_err_m + rot_weight_m * rot_err_rad
        if cost < best_cost:
            best_q, best_cost = q.copy(), cost
        if pos_err_m < tol_m and rot_err_rad < tol_rad:
            break
        mujoco.mj_jacSite(model, scratch, jacp, jacr, site_id)
        if want_quat is None:
            jac, err = jacp[:, dadr], pos_err
        else:
            jac = np.vstack([jacp[:, dadr], rot_weight_m * jacr[:, dadr]])
            err = np.concatenate([pos_err, rot_weight_m * rot_err])
        pinv = np.linalg.solve(jac.T @ jac + damping * np.eye(n), jac.T)  # damped pseudo-inverse
        dq = pinv @ err + (np.eye(n) - pinv @ jac) @ (posture_weight * (rest - q))
        step = float(np.max(np.abs(dq)))
        if step > max_step_rad:
            dq *= max_step_rad / step
        q = np.clip(q + dq, lo, hi)

    scratch.qpos[qadr] = best_q
    mujoco.mj_kinematics(model, scratch)
    pos_err_m = float(np.linalg.norm(want_pos - scratch.site_xpos[site_id]))
    if want_quat is not None:
        mujoco.mju_mat2Quat(quat, scratch.site_xmat[site_id])
        mujoco.mju_negQuat(neg, quat)
        mujoco.mju_mulQuat(qerr, want_quat, neg)
        mujoco.mju_quat2Vel(rot_err, qerr, 1.0)
        rot_err_rad = float(np.linalg.norm(rot_err))
    if raise_on_fail and (pos_err_m > accept_m or rot_err_rad > accept_rad):
        raise SolverFailed(
            f"IK for site {site!r} did not reach target {np.round(want_pos, 4).tolist()}: "
            f"position error {pos_err_m * 1e3:.1f} mm (allowed {accept_m * 1e3:.1f}), "
            f"rotation error {rot_err_rad:.3f} rad (allowed {accept_rad}); "
            "move the target closer or pass raise_on_fail=False"
        )
    return best_q


def _joint_id(model: mujoco.MjModel, name: str) -> int:
    jid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, name)
    if jid < 0:
        raise ConfigError(f"model has no joint named {name!r}")
    return int(jid)


# ---------------------------------------------------------------------------------------------
# Plans.


def _min_jerk(tau: float) -> float:
    return tau * tau * tau * (10.0 + tau * (-15.0 + 6.0 * tau))


@dataclass(frozen=True)
class Plan:
    """Keyframes in command-vector space, interpolated with a minimum-jerk profile.

    ``times_s`` shape (K,), non-decreasing from 0; ``commands`` shape (K, N) with N =
    ``len(joint_names)``; ``labels`` names each keyframe (for logs and plots).
    """

    joint_names: tuple[str, ...]
    times_s: FloatArray
    commands: FloatArray
    labels: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        times = np.asarray(self.times_s, dtype=np.float64)
        cmds = np.asarray(self.commands, dtype=np.float64)
        if times.ndim != 1 or times.size == 0:
            raise ValueError(f"times_s must be a non-empty 1-d array, got shape {times.shape}")
        if cmds.shape != (times.size, len(self.joint_names)):
            raise ValueError(
                f"commands must have shape {(times.size, len(self.joint_names))}, got {cmds.shape}"
            )
        if (
            np.any(np.diff(times) < 0)
            or not np.all(np.isfinite(times))
            or not np.all(np.isfinite(cmds))
        ):
            raise ValueError("times_s must be finite and non-decreasing and commands finite")
        object.__setattr__(self, "times_s", times)
        object.__setattr__(self, "commands", cmds)

    @property
    def duration_s(self) -> float:
        return float(self.times_s[-1])

    def command_at(self, t: float) -> FloatArray:
        """Command vector at time ``t`` [s], shape (N,); clamped to the first/last keyframe."""
        times = self.times_s
        if t <= times[0]:
            return self.commands[0].copy()
        if t >= times[-1]:
            return self.commands[-1].copy()
        k = int(np.searchsorted(times, t, side="right")) - 1
        span = times[k + 1] - times[k]
        s = _min_jerk((t - times[k]) / span) if span > 0 else 1.0
        return self.commands[k] + s * (self.commands[k + 1] - self.commands[k])

    def label_at(self, t: float) -> str:
        """Label of the keyframe being moved towards at ``t`` (or the last one)."""
        if not self.labels:
            return ""
        k = int(np.searchsorted(self.times_s, t, side="left"))
        return self.labels[min(k, len(self.labels) - 1)]


class PlanBuilder:
    """Appends keyframes: each one changes some joints and keeps the others."""

    def __init__(
        self, joint_names: Sequence[str], start: npt.ArrayLike, label: str = "start"
    ) -> None:
        self.joint_names = tuple(joint_names)
        self._index = {name: i for i, name in enumerate(self.joint_names)}
        self._times = [0.0]
        self._cmds = [np.asarray(start, dtype=np.float64).copy()]
        self._labels = [label]

    @property
    def t(self) -> float:
        return self._times[-1]

    @property
    def last(self) -> FloatArray:
        return self._cmds[-1].copy()

    def move(self, duration_s: float, values: Mapping[str, float], label: str) -> PlanBuilder:
        """Move the named joints to ``values`` in ``duration_s`` [s]."""
        if duration_s <= 0:
            raise ValueError(f"duration_s must be > 0, got {duration_s}")
        cmd = self.last
        for name, value in values.items():
            if name not in self._index:
                raise ConfigError(
                    f"joint {name!r} is not in the command vector; commanded: {self.joint_names}"
                )
            cmd[self._index[name]] = value
        self._times.append(self.t + duration_s)
        self._cmds.append(cmd)
        self._labels.append(label)
        return self

    def hold(self, duration_s: float, label: str = "hold") -> PlanBuilder:
        return self.move(duration_s, {}, label)

    def build(self) -> Plan:
        return Plan(
            self.joint_names, np.array(self._times), np.array(self._cmds), tuple(self._labels)
        )


def actuator_indices(model: mujoco.MjModel, joint_names: Sequence[str]) -> npt.NDArray[np.int64]:
    """Actuator index of every commanded joint (actuators are named like their joints), shape (N,).

    ``data.ctrl[actuator_indices(model, names)] = command`` applies a command vector."""
    out = []
    for name in joint_names:
        aid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_ACTUATOR, name)
        if aid < 0:
            raise ConfigError(
                f"model has no actuator named {name!r} (actuators are named like their joints)"
            )
        out.append(aid)
    return np.array(out, dtype=np.int64)


def _home_data(model: mujoco.MjModel) -> mujoco.MjData:
    data = mujoco.MjData(model)
    key = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_KEY, "home")
    if key < 0:
        raise ConfigError("model has no keyframe named 'home'; the scripted plans start from it")
    mujoco.mj_resetDataKeyframe(model, data, key)
    mujoco.mj_forward(model, data)
    return data


def home_command(model: mujoco.MjModel, description: RobotDescription) -> FloatArray:
    """The command vector of the ``home`` keyframe (joint positions), shape (N,)."""
    data = _home_data(model)
    return np.array(
        [data.qpos[model.jnt_qposadr[_joint_id(model, j)]] for j in description.joint_names]
    )


# ---------------------------------------------------------------------------------------------
# Hand postures (dexhumanoid joint layout; see robots/dexhumanoid/generate.py for signs).

_LONG_FINGERS = ("index", "middle", "ring", "pinky")
_THUMB_JOINTS = ("cmc_abd", "cmc_flex", "mcp", "ip")


def _thumb(side: Side, values: Sequence[float] | FloatArray) -> dict[str, float]:
    return {f"{side}_thumb_{j}": float(v) for j, v in zip(_THUMB_JOINTS, values, strict=True)}


def _hand_pose(
    side: Side,
    *,
    mcp: float = 0.0,
    pip: float = 0.0,
    abd: float = 0.0,
    thumb: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0),
    fingers: Sequence[str] = _LONG_FINGERS,
) -> dict[str, float]:
    """Joint targets of one hand; ``abd`` > 0 spreads the fingers."""
    pose = _thumb(side, thumb)
    for f in fingers:
        pose[f"{side}_{f}_mcp_abd"] = abd if f in ("index", "middle") else -abd
        pose[f"{side}_{f}_mcp_flex"] = mcp
        pose[f"{side}_{f}_pip"] = pip
    return pose


def _open_hand(side: Side) -> dict[str, float]:
    return _hand_pose(side)


def _preshape(side: Side) -> dict[str, float]:
    """Before a side wrap: thumb lifted out of the palm plane, fingers slightly bent."""
    return _hand_pose(side, mcp=0.15, pip=0.15, thumb=(1.1, 0.1, 0.0, 0.0))


def _wrap(side: Side) -> dict[str, float]:
    """Side wrap: fingers commanded past contact, so the position error squeezes."""
    return _hand_pose(side, mcp=1.35, pip=1.4, thumb=(1.15, 0.55, 0.55, 0.6))


# ---------------------------------------------------------------------------------------------
# Grasps.


class _SideGrasp(NamedTuple):
    """Wrist poses of a side wrap around a vertical object (world frame)."""

    pregrasp: FloatArray  # arm joints, behind the object
    grasp: FloatArray
    lifted: FloatArray
    backoff: FloatArray  # after letting go: hand moved back and away from the object


#: Where the object axis sits in the wrist frame for a side wrap: x (towards the fingers), z
#: (palm normal) beyond the palm surface by the object radius; the grasp height along the object.
_GRASP_AXIS_X_M = 0.085
_PALM_SURFACE_Z_M = 0.015


def _object_radius_and_height(model: mujoco.MjModel, obj: str) -> tuple[float, float]:
    geom = model.geom(obj)
    if int(geom.type[0]) == int(mujoco.mjtGeom.mjGEOM_CYLINDER):
        return float(geom.size[0]), float(2 * geom.size[1])
    if int(geom.type[0]) == int(mujoco.mjtGeom.mjGEOM_BOX):
        return float(geom.size[0]), float(2 * geom.size[2])
    raise ConfigError(
        f"object {obj!r} must be a cylinder or box geom named like its body for a scripted grasp"
    )


def _side_grasp(
    model: mujoco.MjModel,
    data: mujoco.MjData,
    description: RobotDescription,
    side: Side,
    obj: str,
    *,
    lift_m: float,
    offset_m: npt.ArrayLike = (0.0, 0.0, 0.0),
) -> _SideGrasp:
    """Arm joints for a side wrap of ``obj``: hand level, fingers pointing away from the shoulder
    (horizontally, through the object), palm facing the object from the ``side`` side, thumb up."""
    if mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, obj) < 0:
        raise ConfigError(f"scene has no object body named {obj!r}")
    radius, height = _object_radius_and_height(model, obj)
    center = data.body(obj).xpos.copy() + np.asarray(offset_m, dtype=np.float64)
    bottom = center[2] - height / 2
    arm = description.sides[side].arm_joints
    site = description.sides[side].wrist_frame
    shoulder = data.xanchor[_joint_id(model, arm[0])]
    reach = np.array([center[0] - shoulder[0], center[1] - shoulder[1], 0.0])
    x = reach / np.linalg.norm(reach)  # fingers forward, level
    sign = 1.0 if side == "left" else -1.0
    z = sign * np.array([x[1], -x[0], 0.0])  # palm normal, level, towards the midline
    rot = np.column_stack([x, np.cross(z, x), z])
    grasp_z = bottom + max(0.5 * height, 0.058) - 0.005
    axis = np.array([center[0], center[1], grasp_z])
    wrist = axis - _GRASP_AXIS_X_M * x - (_PALM_SURFACE_Z_M + radius + 0.002) * z
    pre = wrist - 0.09 * x - 0.02 * z + np.array([0.0, 0.0, 0.02])
    lifted = wrist + np.array([0.0, 0.0, lift_m])
    backoff = wrist - 0.08 * x - 0.025 * z + np.array([0.0, 0.0, 0.01])

    q_pre = solve_site_ik(model, data, site, arm, pre, rot, q0=_home_arm(data, description, side))
    q_grasp = solve_site_ik(model, data, site, arm, wrist, rot, q0=q_pre)
    q_lift = solve_site_ik(model, data, site, arm, lifted, rot, q0=q_grasp)
    q_back = solve_site_ik(model, data, site, arm, backoff, rot, q0=q_grasp)
    return _SideGrasp(q_pre, q_grasp, q_lift, q_back)


def _home_arm(data: mujoco.MjData, description: RobotDescription, side: Side) -> FloatArray:
    return np.array([data.joint(j).qpos[0] for j in description.sides[side].arm_joints])


def _arm_values(description: RobotDescription, side: Side, q: FloatArray) -> dict[str, float]:
    return dict(zip(description.sides[side].arm_joints, (float(v) for v in q), strict=True))


def grasp_and_lift_plan(
    model: mujoco.MjModel,
    description: RobotDescription,
    side: Side = "right",
    obj: str = "bottle",
    *,
    lift_m: float = 0.15,
    hold_s: float = 2.0,
    offset_m: npt.ArrayLike = (0.0, 0.0, 0.0),
) -> Plan:
    """From ``home``: pre-grasp behind ``obj``, approach, wrap the fingers, lift, hold.

    ``offset_m`` shifts where the plan believes the object is (robustness tests). The other arm
    stays at home. Keyframe labels: home, pregrasp, approach, close, squeeze, lift, hold.

    The grasp is a side wrap (hand level, thumb up) around an upright cylinder at least ~10 cm
    tall; in the bundled scene that is the right hand and the bottle (the default). Targets out
    of reach raise ``SolverFailed`` while the plan is built.
    """
    if side not in SIDES:
        raise ConfigError(f"side must be one of {SIDES}, got {side!r}")
    data = _home_data(model)
    g = _side_grasp(model, data, description, side, obj, lift_m=lift_m, offset_m=offset_m)
    b = PlanBuilder(description.joint_names, home_command(model, description), "home")
    b.hold(0.3, "home")
    b.move(
        1.8,
        {**_arm_values(description, side, g.pregrasp), **_preshape(side)},
        "pregrasp",
    )
    b.move(1.2, _arm_values(description, side, g.grasp), "approach")
    b.move(0.8, _wrap(side), "close")
    b.hold(0.4, "squeeze")
    b.move(1.5, _arm_values(description, side, g.lifted), "lift")
    b.hold(hold_s, "hold")
    return b.build()


def bimanual_demo_plan(model: mujoco.MjModel, description: RobotDescription) -> Plan:
    """About 20 s: the right hand picks up the bottle, holds it, puts it back and lets go while the
    left hand runs through its finger motions (fist, spread, thumb to each fingertip); then both
    return home. The arms stay on their own side of the table, so they cannot meet."""
    data = _home_data(model)
    right: Side = "right"
    left: Side = "left"
    g = _side_grasp(model, data, description, right, "bottle", lift_m=0.12)
    home = home_command(model, description)
    home_map = dict(zip(description.joint_names, (float(v) for v in home), strict=True))
    show_palm = {
        f"{left}_wrist_yaw": -1.3,
        f"{left}_wrist_roll": 0.0,
        f"{left}_elbow": home_map[f"{left}_elbow"] + 0.25,
    }
    thumb_rest = _thumb(left, (0.6, 0.2, 0.1, 0.1))
    b = PlanBuilder(description.joint_names, home, "home")
    b.hold(0.5, "home")
    b.move(
        1.8,
        {
            **_arm_values(description, right, g.pregrasp),
            **_preshape(right),
            **show_palm,
            **_hand_pose(left, mcp=1.4, pip=1.5, thumb=(0.5, 0.6, 0.6, 0.8)),
        },
        "reach / left fist",
    )
    b.move(
        1.2,
        {**_arm_values(description, right, g.grasp), **_open_hand(left)},
        "approach / left open",
    )
    b.move(0.8, {**_wrap(right), **_hand_pose(left, abd=0.3)}, "close / left spread")
    b.hold(0.4, "squeeze")
    b.move(
        1.5,
        {**_arm_values(description, right, g.lifted), **_hand_pose(left), **thumb_rest},
        "lift / left relax",
    )
    for finger in _LONG_FINGERS:
        finger_pose, thumb = _pinch(model, data, left, finger)
        b.move(0.8, {**finger_pose, **thumb}, f"pinch {finger}")
        b.move(0.6, {**_hand_pose(left, fingers=(finger,)), **thumb_rest}, "release pinch")
    b.move(
        2.0,
        {
            **_arm_values(description, right, g.grasp),
            **_arm_values(description, left, _home_arm(data, description, left)),
            **_open_hand(left),
        },
        "put down",
    )
    b.move(0.8, _preshape(right), "let go")
    b.move(1.0, _arm_values(description, right, g.backoff), "back off")
    b.move(2.0, home_map, "home")
    b.hold(1.5, "rest")
    return b.build()


#: (mcp_flex, pip) of a finger meeting the thumb: the farther from the thumb, the more it curls.
_PINCH_FLEX = {"index": (1.0, 0.7), "middle": (1.0, 1.1), "ring": (1.2, 1.2), "pinky": (1.3, 1.3)}


def _pinch(
    model: mujoco.MjModel, data: mujoco.MjData, side: Side, finger: str
) -> tuple[dict[str, float], dict[str, float]]:
    """Finger curled and the thumb joints that put the two pads together (position IK)."""
    mcp, pip = _PINCH_FLEX[finger]
    pose = _hand_pose(side, mcp=mcp, pip=pip, fingers=(finger,))
    scratch = mujoco.MjData(model)
    scratch.qpos[:] = data.qpos
    for name, value in pose.items():
        scratch.joint(name).qpos[0] = value
    _apply_joint_couplings(model, scratch)
    mujoco.mj_kinematics(model, scratch)
    tip = scratch.site(f"{side}_{finger}_tip")
    pad_normal = tip.xmat.reshape(3, 3)[:, 2]
    target = tip.xpos + 0.016 * pad_normal  # pads touch: sum of the two pad radii
    names = [f"{side}_thumb_{j}" for j in _THUMB_JOINTS]
    q = solve_site_ik(
        model,
        scratch,
        f"{side}_thumb_tip",
        names,
        target,
        q0=[0.9, 0.5, 0.3, 0.3],
        posture_weight=0.0,
        accept_m=4e-3,
    )
    return pose, _thumb(side, q)


def _apply_joint_couplings(model: mujoco.MjModel, data: mujoco.MjData) -> None:
    """Set every joint1 of a joint equality from its joint2 (``q1 = polycoef(q2)``, about qpos0)."""
    for i in range(model.neq):
        if int(model.eq_type[i]) != int(mujoco.mjtEq.mjEQ_JOINT) or model.eq_obj2id[i] < 0:
            continue
        a1 = model.jnt_qposadr[model.eq_obj1id[i]]
        a2 = model.jnt_qposadr[model.eq_obj2id[i]]
        x = data.qpos[a2] - model.qpos0[a2]
        c = model.eq_data[i, :5]
        data.qpos[a1] = model.qpos0[a1] + c[0] + c[1] * x + c[2] * x**2 + c[3] * x**3 + c[4] * x**4
