"""Compile a robot description into a MuJoCo model plus the index arrays the server needs.

Works for any MJCF or URDF named by a description TOML: commanded joints without a position
actuator get one (gains from ``[actuators]``), so a bare URDF arm is drivable with no code.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np
import numpy.typing as npt

from robots.compose import compile_quietly
from robots.description import GROUPS, RobotDescription, load_description
from teleop.errors import ConfigError

__all__ = ["SimModel", "load_sim_model"]

_SLIDE_HINGE = (int(mujoco.mjtJoint.mjJNT_HINGE), int(mujoco.mjtJoint.mjJNT_SLIDE))


@dataclass(frozen=True, eq=False)
class SimModel:
    """A compiled model and where each commanded joint, body, fingertip and camera lives in it.
    Index arrays are read-only. Shapes: ``n`` commanded joints, ``b`` free bodies, ``f``
    fingertips."""

    description: RobotDescription
    model: mujoco.MjModel
    joint_ids: npt.NDArray[np.int64]  # (n,)
    qpos_adr: npt.NDArray[np.int64]  # (n,)
    dof_adr: npt.NDArray[np.int64]  # (n,)
    actuator_ids: npt.NDArray[np.int64]  # (n,)
    lower: npt.NDArray[np.float64]  # (n,) [rad]
    upper: npt.NDArray[np.float64]  # (n,) [rad]
    velocity: npt.NDArray[np.float64]  # (n,) [rad/s]
    body_names: tuple[str, ...]
    body_ids: npt.NDArray[np.int64]  # (b,)
    fingertip_names: tuple[str, ...]
    geom_fingertip: npt.NDArray[np.int64]  # (ngeom,) fingertip index or -1
    camera_names: tuple[str, ...]
    home_key: int  # keyframe id of "home" or -1

    @property
    def joint_names(self) -> tuple[str, ...]:
        return self.description.joint_names

    @property
    def n_joints(self) -> int:
        return len(self.joint_ids)

    @property
    def group_sizes(self) -> npt.NDArray[np.int64]:
        return np.array([len(self.description.groups[g]) for g in GROUPS], dtype=np.int64)

    def joint_q(self, data: mujoco.MjData) -> npt.NDArray[np.float64]:
        return data.qpos[self.qpos_adr]


def _closest(name: str, choices: list[str]) -> str:
    near = difflib.get_close_matches(name, choices, n=3)
    return f"did you mean {near}?" if near else f"the model has {len(choices)} of them, e.g. {choices[:6]}"


def _names(model: mujoco.MjModel, obj: mujoco.mjtObj, count: int) -> list[str]:
    return [mujoco.mj_id2name(model, obj, i) or "" for i in range(count)]


def _position_actuator_for(model: mujoco.MjModel, joint_id: int) -> int:
    for a in range(model.nu):
        if (
            model.actuator_trntype[a] == mujoco.mjtTrn.mjTRN_JOINT
            and model.actuator_trnid[a, 0] == joint_id
            and model.actuator_biastype[a] == mujoco.mjtBias.mjBIAS_AFFINE
            and model.actuator_biasprm[a, 1] < 0  # -kp: a position servo
        ):
            return a
    return -1


def load_sim_model(description: RobotDescription | str | Path) -> SimModel:
    """Load and check ``description`` (a parsed config or a TOML path)."""
    desc = description if isinstance(description, RobotDescription) else load_description(description)
    where = str(desc.source or desc.name)
    try:
        spec = mujoco.MjSpec.from_file(str(desc.model_path))
    except Exception as exc:
        raise ConfigError(f"{where}: MuJoCo cannot load {desc.model_path}: {exc}") from None
    if desc.objects_path is not None:  # the markers the object tracker looks for, drawn on the objects
        from robots.objects.config import load_objects
        from robots.objects.sim_markers import add_marker_plates

        add_marker_plates(spec, load_objects(desc.objects_path), f"{where}: key 'objects'")
    try:
        model = compile_quietly(spec)
    except Exception as exc:
        raise ConfigError(f"{where}: MuJoCo cannot load {desc.model_path}: {exc}") from None

    joint_names = _names(model, mujoco.mjtObj.mjOBJ_JOINT, model.njnt)
    joint_ids = []
    for name in desc.joint_names:
        jid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, name)
        if jid < 0:
            raise ConfigError(f"{where}: joint {name!r} is not in {desc.model_path.name}; {_closest(name, joint_names)}")
        if int(model.jnt_type[jid]) not in _SLIDE_HINGE:
            raise ConfigError(f"{where}: joint {name!r} must be hinge or slide to be commanded")
        joint_ids.append(jid)

    missing = [name for name, jid in zip(desc.joint_names, joint_ids) if _position_actuator_for(model, jid) < 0]
    if missing:  # give bare models (URDF) position servos so they can be driven
        for name in missing:
            act = spec.add_actuator(name=f"{name}_servo", target=name, trntype=mujoco.mjtTrn.mjTRN_JOINT)
            act.set_to_position(kp=desc.actuator_kp, kv=desc.actuator_kv)
        model = compile_quietly(spec)

    bad = [name for name, jid in zip(desc.joint_names, joint_ids) if _position_actuator_for(model, jid) < 0]
    if bad:  # e.g. a motor or velocity actuator on a commanded joint
        raise ConfigError(f"{where}: joints {bad} have actuators that are not position servos; the sim drives joint positions")
    n = len(joint_ids)
    lower, upper, velocity = np.empty(n), np.empty(n), np.empty(n)
    actuator_ids = np.empty(n, dtype=np.int64)
    for i, (name, jid) in enumerate(zip(desc.joint_names, joint_ids)):
        actuator_ids[i] = _position_actuator_for(model, jid)
        if name in desc.position_overrides:
            lower[i], upper[i] = desc.position_overrides[name]
        elif model.jnt_limited[jid]:
            lower[i], upper[i] = model.jnt_range[jid]
        else:
            raise ConfigError(
                f"{where}: joint {name!r} has no range in the model; add it under "
                f"[limits] position_overrides = {{ {name} = [low, high] }}"
            )
        velocity[i] = desc.velocity_limit(name)

    frames = [desc.base_frame] + [desc.sides[s].wrist_frame for s in desc.sides]
    for frame in frames + list(desc.fingertip_frames):
        _frame_body(model, frame, where)

    body_ids = [model.jnt_bodyid[j] for j in range(model.njnt) if model.jnt_type[j] == mujoco.mjtJoint.mjJNT_FREE]
    body_names = tuple(mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_BODY, b) or f"body{b}" for b in body_ids)

    geom_fingertip = np.full(model.ngeom, -1, dtype=np.int64)
    for k, frame in enumerate(desc.fingertip_frames):
        body = _frame_body(model, frame, where)
        while body > 0 and not np.any(model.geom_bodyid == body):  # a URDF tip link is often empty:
            body = int(model.body_parentid[body])  # its contacts are the distal link's
        geom_fingertip[model.geom_bodyid == body] = k

    cam_names = _names(model, mujoco.mjtObj.mjOBJ_CAMERA, model.ncam)
    side_cams = [desc.sides[s].camera for s in desc.sides if desc.sides[s].camera]
    for cam in list(desc.cameras) + side_cams:
        if cam not in cam_names:
            raise ConfigError(f"{where}: camera {cam!r} is not in the model; {_closest(cam, cam_names)}")

    def frozen(a: npt.ArrayLike, dtype: type = np.int64) -> np.ndarray:
        arr = np.array(a, dtype=dtype)
        arr.setflags(write=False)
        return arr

    jids = frozen(joint_ids)
    return SimModel(
        description=desc,
        model=model,
        joint_ids=jids,
        qpos_adr=frozen(model.jnt_qposadr[jids]),
        dof_adr=frozen(model.jnt_dofadr[jids]),
        actuator_ids=frozen(actuator_ids),
        lower=frozen(lower, np.float64),
        upper=frozen(upper, np.float64),
        velocity=frozen(velocity, np.float64),
        body_names=body_names,
        body_ids=frozen(body_ids),
        fingertip_names=desc.fingertip_frames,
        geom_fingertip=frozen(geom_fingertip),
        camera_names=desc.cameras,
        home_key=mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_KEY, "home"),
    )


def _frame_body(model: mujoco.MjModel, frame: str, where: str) -> int:
    """Body id of a frame given as a site or a body name."""
    sid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, frame)
    if sid >= 0:
        return int(model.site_bodyid[sid])
    bid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, frame)
    if bid >= 0:
        return bid
    choices = _names(model, mujoco.mjtObj.mjOBJ_SITE, model.nsite) + _names(model, mujoco.mjtObj.mjOBJ_BODY, model.nbody)
    raise ConfigError(f"{where}: frame {frame!r} is neither a site nor a body; {_closest(frame, choices)}")
