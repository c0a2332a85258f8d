"""The robot and its world as lines and shapes, from the robot's own model file.

* The robot is a stick figure: the kinematic tree from the world (or the description's base
  frame when the model has no world frame) to every fingertip and wrist frame, compiled by
  ``retarget.kinematics`` (MJCF and URDF alike, coupled joints followed), one segment per link,
  posed from a joint vector in command order. The fingertip and wrist poses come with it.
* The world: the shapes of what is welded to the world (the table, the torso) and of each free
  body whose pose the robot state reports (the objects), read from an MJCF model at its rest
  pose. Meshes, planes and the collision-only groups (3 and up) are left out; a URDF has none.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from retarget.kernels.kinematics import fk_frames, fk_nodes
from retarget.kinematics import KinematicTree, compile_tree
from robots.description import RobotDescription
from teleop.errors import ConfigError
from teleop.types import SIDES

__all__ = ["RobotScene", "RobotPose", "Shape", "world_shapes"]

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class RobotPose:
    segments: F64  # (k, 2, 3) [m] link start and end, world frame
    fingertips: F64  # (f, 3) [m], in the description's fingertip order
    wrist_pos: dict[str, F64]  # side -> (3,)
    wrist_rot: dict[str, F64]  # side -> (3, 3)


class RobotScene:
    """Poses the robot's stick figure from joint vectors in command order (``joint_names``)."""

    def __init__(self, description: RobotDescription, joint_names: tuple[str, ...]) -> None:
        if tuple(joint_names) != description.joint_names:
            raise ConfigError(f"the robot reports joints {list(joint_names)[:3]}..., its description "
                              f"{description.source} lists {list(description.joint_names)[:3]}...: not the same robot")
        self.fingertip_names = description.fingertip_frames
        self.sides = tuple(s for s in SIDES if description.sides[s].wrist_frame)
        frames = list(self.fingertip_names) + [description.sides[s].wrist_frame for s in self.sides]
        self.tree = _compile(description, frames, joint_names)
        t = self.tree
        self._node_pos, self._node_rot = t.work_arrays()
        self._frame_pos = np.zeros((len(frames), 3))
        self._frame_rot = np.zeros((len(frames), 3, 3))
        # a segment per link (parent node -> node), and per frame (its node -> the frame itself)
        self._links = np.array([(int(p), i) for i, p in enumerate(t.parent) if p >= 0], np.int64).reshape(-1, 2)
        self._tips = np.array([(int(n), f) for f, n in enumerate(t.f_node) if n >= 0], np.int64).reshape(-1, 2)
        self.n_fingertips = len(self.fingertip_names)

    def pose(self, q: npt.ArrayLike) -> RobotPose:
        t = self.tree
        q = np.ascontiguousarray(q, np.float64)
        if q.shape != (t.nq,):
            raise ValueError(f"q has shape {q.shape}; the robot has {t.nq} joints")
        fk_nodes(q, *t.kernel_args, self._node_pos, self._node_rot)
        fk_frames(self._node_pos, self._node_rot, t.f_node, t.f_pos, t.f_rot, self._frame_pos, self._frame_rot)
        npos, fpos = self._node_pos, self._frame_pos
        links = np.stack([npos[self._links[:, 0]], npos[self._links[:, 1]]], axis=1)
        tips = np.stack([npos[self._tips[:, 0]], fpos[self._tips[:, 1]]], axis=1)
        nf = self.n_fingertips
        return RobotPose(
            segments=np.concatenate([links, tips]),
            fingertips=fpos[:nf].copy(),
            wrist_pos={s: fpos[nf + i].copy() for i, s in enumerate(self.sides)},
            wrist_rot={s: self._frame_rot[nf + i].copy() for i, s in enumerate(self.sides)},
        )


def _compile(description: RobotDescription, frames: list[str], joint_names: tuple[str, ...]) -> KinematicTree:
    """From the world when the model has one (MJCF), so the robot stands where the objects are;
    else from the description's base frame (a URDF robot's base sits at the origin)."""
    try:
        return compile_tree(description.model_path, "world", frames, joint_names)
    except ConfigError:
        return compile_tree(description.model_path, description.base_frame, frames, joint_names)


@dataclass(frozen=True)
class Shape:
    kind: str  # box, sphere, capsule, cylinder
    pos: F64  # (3,) centre [m], in the world (static shapes) or its body's frame (objects)
    quat_xyzw: F64  # (4,)
    size: F64  # MuJoCo geom size: half extents (box); radius (sphere); radius, half length (capsule, cylinder)
    rgba: tuple[int, int, int, int]


def world_shapes(model_path: Path, body_names: tuple[str, ...]) -> tuple[list[Shape], dict[str, list[Shape]]]:
    """(shapes welded to the world, {free body name: its shapes in its own frame})."""
    if Path(model_path).suffix.lower() == ".urdf":
        return [], {}
    import mujoco

    model = mujoco.MjModel.from_xml_path(str(model_path))
    data = mujoco.MjData(model)
    mujoco.mj_kinematics(model, data)
    kinds = {int(mujoco.mjtGeom.mjGEOM_BOX): "box", int(mujoco.mjtGeom.mjGEOM_SPHERE): "sphere",
             int(mujoco.mjtGeom.mjGEOM_CAPSULE): "capsule", int(mujoco.mjtGeom.mjGEOM_CYLINDER): "cylinder"}
    wanted = {mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, n): n for n in body_names}
    static: list[Shape] = []
    bodies: dict[str, list[Shape]] = {n: [] for n in body_names}
    for g in range(model.ngeom):
        kind = kinds.get(int(model.geom_type[g]))
        mat = int(model.geom_matid[g])
        rgba = model.mat_rgba[mat] if mat >= 0 else model.geom_rgba[g]
        if kind is None or model.geom_group[g] >= 3 or rgba[3] <= 0:
            continue
        color = tuple(int(round(float(c) * 255)) for c in rgba)
        body = int(model.geom_bodyid[g])
        if body in wanted:
            bodies[wanted[body]].append(Shape(kind, np.array(model.geom_pos[g]), _xyzw(model.geom_quat[g]),
                                              np.array(model.geom_size[g]), color))  # type: ignore[arg-type]
        elif int(model.body_weldid[body]) == 0:
            quat = np.zeros(4)
            mujoco.mju_mat2Quat(quat, data.geom_xmat[g])
            static.append(Shape(kind, np.array(data.geom_xpos[g]), _xyzw(quat), np.array(model.geom_size[g]),
                                color))  # type: ignore[arg-type]
    return static, bodies


def _xyzw(wxyz: npt.ArrayLike) -> F64:
    w, x, y, z = np.asarray(wxyz, np.float64)
    return np.array([x, y, z, w])
