"""Compile a robot, an arm or a hand from MJCF or URDF into flat arrays that the numba kernels in
``retarget/kernels/kinematics.py`` walk.

``compile_tree(model_path, base_frame, frames, joints)`` keeps only what lies between
``base_frame`` and the requested ``frames``. Every pose and Jacobian is expressed in
``base_frame`` (e.g. the torso for an arm, the wrist site for a hand). ``joints`` are the
independent coordinates in order; joints coupled to them (MJCF ``<equality><joint>``, URDF
``<mimic>``) follow as ``value = offset + multiplier * q[source]``.

MJCF is read through MuJoCo's model arrays; URDF through pinocchio's parser (which keeps links
attached by fixed joints as frames, as dex-retargeting configs expect).
"""

from __future__ import annotations

import difflib
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from retarget.kernels.kinematics import FIXED, PRISMATIC, REVOLUTE, fk_frames, fk_nodes, frame_jacobians
from teleop.errors import ConfigError

__all__ = ["KinematicTree", "FramePoses", "compile_tree", "Coupling", "urdf_outline"]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


class Coupling(NamedTuple):
    """``joint = offset + multiplier * source``."""

    source: str
    multiplier: float
    offset: float


class FramePoses(NamedTuple):
    pos: F64  # (nf, 3) [m], base frame
    rot: F64  # (nf, 3, 3)


@dataclass(frozen=True, eq=False)
class KinematicTree:
    """Flat kinematic tree. ``n`` nodes (one per joint on the kept paths, fixed nodes for bodies
    without joints), ``nq`` independent coordinates, ``nf`` frames. Arrays are read-only."""

    joint_names: tuple[str, ...]  # (nq,) independent coordinates
    frame_names: tuple[str, ...]  # (nf,)
    base_frame: str
    lower: F64  # (nq,) [rad] or [m]
    upper: F64  # (nq,)
    parent: I64  # (n,)
    jtype: I64  # (n,) FIXED / REVOLUTE / PRISMATIC
    qidx: I64  # (n,) independent coordinate driving the node (0 for fixed nodes)
    mult: F64  # (n,)
    offset: F64  # (n,)
    axis: F64  # (n, 3) in the node frame
    t_pos: F64  # (n, 3) parent node -> node, before the joint motion
    t_rot: F64  # (n, 3, 3)
    f_node: I64  # (nf,)
    f_pos: F64  # (nf, 3) node -> frame
    f_rot: F64  # (nf, 3, 3)
    node_names: tuple[str, ...] = ()
    source: str = ""
    _scratch: dict = field(default_factory=dict, repr=False)

    @property
    def nq(self) -> int:
        return len(self.joint_names)

    @property
    def n_nodes(self) -> int:
        return len(self.parent)

    def frame_index(self, name: str) -> int:
        try:
            return self.frame_names.index(name)
        except ValueError:
            raise ConfigError(f"no frame {name!r} in this tree; frames: {list(self.frame_names)}") from None

    def work_arrays(self) -> tuple[F64, F64]:
        """Fresh (node_pos, node_rot) buffers for the kernels."""
        return np.zeros((self.n_nodes, 3)), np.zeros((self.n_nodes, 3, 3))

    @property
    def kernel_args(self) -> tuple:
        """The tree arrays in the order ``fk_nodes`` takes them (after q)."""
        return (self.parent, self.jtype, self.qidx, self.mult, self.offset, self.axis, self.t_pos, self.t_rot)

    def _buffers(self):
        if not self._scratch:
            self._scratch["node"] = self.work_arrays()
        return self._scratch["node"]

    def _check_q(self, q: npt.ArrayLike) -> F64:
        q = np.ascontiguousarray(q, dtype=np.float64)
        if q.shape != (self.nq,):
            raise ValueError(f"q has shape {q.shape}; this tree takes ({self.nq},): {list(self.joint_names)}")
        return q

    def fk(self, q: npt.ArrayLike) -> FramePoses:
        """Every frame's pose in the base frame (convenience; allocates)."""
        q = self._check_q(q)
        node_pos, node_rot = self._buffers()
        fk_nodes(q, *self.kernel_args, node_pos, node_rot)
        pos, rot = np.zeros((len(self.f_node), 3)), np.zeros((len(self.f_node), 3, 3))
        fk_frames(node_pos, node_rot, self.f_node, self.f_pos, self.f_rot, pos, rot)
        return FramePoses(pos, rot)

    def jacobians(self, q: npt.ArrayLike) -> tuple[F64, F64]:
        """(position, rotation) Jacobians of every frame, shapes (nf, 3, nq) each."""
        q = self._check_q(q)
        node_pos, node_rot = self._buffers()
        poses = self.fk(q)
        jp = np.zeros((len(self.f_node), 3, self.nq))
        jr = np.zeros_like(jp)
        frame_jacobians(node_pos, node_rot, self.parent, self.jtype, self.qidx, self.mult, self.axis, self.f_node, poses.pos, jp, jr)
        return jp, jr


# ---------------------------------------------------------------------------------------------
# A neutral intermediate: bodies with their joints and named frames, filled by either parser.


@dataclass
class _Joint:
    name: str
    jtype: int
    axis: np.ndarray
    anchor: np.ndarray  # in the body frame
    limits: tuple[float, float] | None


@dataclass
class _Body:
    name: str
    parent: int  # -1 for the root
    pos: np.ndarray  # in the parent body frame
    rot: np.ndarray
    joints: list[_Joint]
    frames: dict[str, tuple[np.ndarray, np.ndarray]]  # name -> (pos, rot) in this body's frame


def _quat_to_mat(q: np.ndarray) -> np.ndarray:
    w, x, y, z = q / np.linalg.norm(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def _bodies_from_mujoco(path: Path) -> tuple[list[_Body], dict[str, Coupling]]:
    import mujoco

    try:
        model = mujoco.MjModel.from_xml_path(str(path))
    except Exception as exc:
        raise ConfigError(f"MuJoCo cannot load {path}: {exc}") from None
    name = lambda obj, i: mujoco.mj_id2name(model, obj, i) or f"{obj.name.lower()}{i}"  # noqa: E731
    bodies = []
    for b in range(model.nbody):
        joints = []
        for j in range(model.body_jntadr[b], model.body_jntadr[b] + model.body_jntnum[b]):
            jt = int(model.jnt_type[j])
            if jt == int(mujoco.mjtJoint.mjJNT_HINGE):
                kind = REVOLUTE
            elif jt == int(mujoco.mjtJoint.mjJNT_SLIDE):
                kind = PRISMATIC
            else:
                kind = -1  # free/ball: only allowed off the kept paths
            lim = tuple(model.jnt_range[j]) if model.jnt_limited[j] else None
            joints.append(_Joint(name(mujoco.mjtObj.mjOBJ_JOINT, j), kind, np.array(model.jnt_axis[j]), np.array(model.jnt_pos[j]), lim))
        frames = {name(mujoco.mjtObj.mjOBJ_BODY, b): (np.zeros(3), np.eye(3))}
        for s in np.flatnonzero(model.site_bodyid == b):
            frames[name(mujoco.mjtObj.mjOBJ_SITE, s)] = (np.array(model.site_pos[s]), _quat_to_mat(np.array(model.site_quat[s])))
        bodies.append(
            _Body(name(mujoco.mjtObj.mjOBJ_BODY, b), int(model.body_parentid[b]) if b else -1,
                  np.array(model.body_pos[b]), _quat_to_mat(np.array(model.body_quat[b])), joints, frames)
        )
    couplings: dict[str, Coupling] = {}
    for e in range(model.neq):
        if int(model.eq_type[e]) != int(mujoco.mjtEq.mjEQ_JOINT) or not model.eq_active0[e]:
            continue
        j1, j2 = int(model.eq_obj1id[e]), int(model.eq_obj2id[e])
        c = model.eq_data[e]
        if np.any(np.abs(c[2:5]) > 0):
            raise ConfigError(f"{path}: joint coupling on {name(mujoco.mjtObj.mjOBJ_JOINT, j1)} is nonlinear; only linear couplings are supported")
        ref1 = model.qpos0[model.jnt_qposadr[j1]]
        if j2 < 0:
            couplings[name(mujoco.mjtObj.mjOBJ_JOINT, j1)] = Coupling("", 0.0, ref1 + c[0])
        else:
            ref2 = model.qpos0[model.jnt_qposadr[j2]]
            couplings[name(mujoco.mjtObj.mjOBJ_JOINT, j1)] = Coupling(
                name(mujoco.mjtObj.mjOBJ_JOINT, j2), float(c[1]), float(ref1 + c[0] - c[1] * ref2)
            )
    return bodies, couplings


def _bodies_from_urdf(path: Path) -> tuple[list[_Body], dict[str, Coupling]]:
    import pinocchio as pin

    try:
        model = pin.buildModelFromUrdf(str(path))
    except Exception as exc:
        raise ConfigError(f"pinocchio cannot load {path}: {exc}") from None
    bodies: list[_Body] = []
    for i in range(model.njoints):
        placement = model.jointPlacements[i]
        joints = []
        if i > 0:
            jm = model.joints[i]
            short = jm.shortname()
            if "Mimic" in short:
                raise ConfigError(f"{path}: pinocchio built a mimic joint model; load without mimic support")
            if short.startswith("JointModelR"):
                kind = REVOLUTE
            elif short.startswith("JointModelP") and "Planar" not in short:
                kind = PRISMATIC
            else:
                raise ConfigError(f"{path}: joint {model.names[i]!r} of type {short} is not supported (revolute, continuous, prismatic, fixed)")
            if short.endswith(("X", "UBX")) and "Unaligned" not in short:
                axis = np.array([1.0, 0, 0])
            elif short.endswith(("Y", "UBY")) and "Unaligned" not in short:
                axis = np.array([0, 1.0, 0])
            elif short.endswith(("Z", "UBZ")) and "Unaligned" not in short:
                axis = np.array([0, 0, 1.0])
            else:
                axis = np.array(jm.extract().axis, dtype=float)
            idx = model.idx_qs[i]
            bounded = jm.nq == 1
            lim = (float(model.lowerPositionLimit[idx]), float(model.upperPositionLimit[idx])) if bounded else None
            joints.append(_Joint(model.names[i], kind, axis, np.zeros(3), lim))
        bodies.append(
            _Body(model.names[i], int(model.parents[i]) if i else -1, np.array(placement.translation),
                  np.array(placement.rotation), joints, {})
        )
    for frame in model.frames:
        parent = frame.parentJoint
        bodies[parent].frames.setdefault(frame.name, (np.array(frame.placement.translation), np.array(frame.placement.rotation)))
    couplings: dict[str, Coupling] = {}
    for joint in ET.parse(path).getroot().iter("joint"):
        mimic = joint.find("mimic")
        if mimic is not None:
            couplings[joint.get("name", "")] = Coupling(
                mimic.get("joint", ""), float(mimic.get("multiplier", 1.0)), float(mimic.get("offset", 0.0))
            )
    return bodies, couplings


def urdf_outline(path: str | Path) -> tuple[str, tuple[str, ...]]:
    """(root link, independent joints) of a URDF: the link that is no joint's child, and every
    moving joint without ``<mimic>`` in file order. The defaults of a hand-only retargeting config."""
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as exc:
        raise ConfigError(f"{path}: not a readable URDF ({exc})") from None
    links = [link.get("name", "") for link in root.iter("link")]
    children = {c.get("link") for j in root.iter("joint") for c in j.iter("child")}
    roots = [name for name in links if name not in children]
    if len(roots) != 1:
        raise ConfigError(f"{path}: expected one root link, found {roots}")
    joints = tuple(j.get("name", "") for j in root.iter("joint")
                   if j.get("type") not in ("fixed", "floating", "planar") and j.find("mimic") is None)
    return roots[0], joints


# ---------------------------------------------------------------------------------------------


def _compose(p1, r1, p2, r2):
    return p1 + r1 @ p2, r1 @ r2


def _frozen(a, dtype=np.float64):
    arr = np.ascontiguousarray(a, dtype=dtype)
    arr.setflags(write=False)
    return arr


def compile_tree(
    model_path: str | Path,
    base_frame: str,
    frames: list[str] | tuple[str, ...],
    joints: list[str] | tuple[str, ...],
    limit_overrides: dict[str, tuple[float, float]] | None = None,
) -> KinematicTree:
    """Compile the part of ``model_path`` between ``base_frame`` and ``frames`` (site, body or link
    names). ``joints`` are the independent coordinates; every other moving joint on the kept paths
    must be coupled to one of them."""
    path = Path(model_path)
    if path.suffix.lower() == ".urdf":
        bodies, couplings = _bodies_from_urdf(path)
    else:
        bodies, couplings = _bodies_from_mujoco(path)
    frame_body: dict[str, int] = {}
    for b, body in enumerate(bodies):
        for fname in body.frames:
            frame_body.setdefault(fname, b)
    all_frames = list(frame_body)

    def locate(fname: str) -> int:
        if fname not in frame_body:
            near = difflib.get_close_matches(fname, all_frames, n=3)
            raise ConfigError(f"{path.name}: no frame {fname!r}" + (f"; did you mean {near}?" if near else ""))
        return frame_body[fname]

    base_body = locate(base_frame)
    bp, br = bodies[base_body].frames[base_frame]
    root_pos, root_rot = -br.T @ bp, br.T  # base body frame expressed in the base frame

    keep: set[int] = set()
    for fname in frames:
        b = locate(fname)
        chain = []
        while b != base_body:
            if b < 0:
                raise ConfigError(f"{path.name}: frame {fname!r} is not below the base frame {base_frame!r}")
            chain.append(b)
            b = bodies[b].parent
        keep.update(chain)

    qindex = {name: i for i, name in enumerate(joints)}
    if len(qindex) != len(joints):
        raise ConfigError(f"joints listed twice: {joints}")
    parent, jtype, qidx, mult, offset, axis, t_pos, t_rot, names = [], [], [], [], [], [], [], [], []
    last_node = {base_body: -1}
    exit_off = {base_body: (root_pos, root_rot)}
    seen_joints: set[str] = set()
    for b in sorted(keep):  # parents have smaller indices in both parsers
        body = bodies[b]
        pp, pr = exit_off[body.parent]
        pre_pos, pre_rot = _compose(pp, pr, body.pos, body.rot)
        par = last_node[body.parent]
        if not body.joints:
            parent.append(par), jtype.append(FIXED), qidx.append(0), mult.append(0.0), offset.append(0.0)
            axis.append(np.zeros(3)), t_pos.append(pre_pos), t_rot.append(pre_rot), names.append(body.name)
            last_node[b] = len(parent) - 1
            exit_off[b] = (np.zeros(3), np.eye(3))
            continue
        prev_anchor = None
        for jt in body.joints:
            if jt.jtype < 0:
                raise ConfigError(f"{path.name}: joint {jt.name!r} (free or ball) lies between {base_frame!r} and a frame")
            if prev_anchor is None:
                pos, rot = _compose(pre_pos, pre_rot, jt.anchor, np.eye(3))
            else:
                pos, rot = jt.anchor - prev_anchor, np.eye(3)
            if jt.name in qindex:
                src, m, off = qindex[jt.name], 1.0, 0.0
            elif jt.name in couplings:
                c = couplings[jt.name]
                if c.source and c.source not in qindex:
                    raise ConfigError(f"{path.name}: joint {jt.name!r} follows {c.source!r}, which is not in the joint list {list(joints)}")
                src, m, off = (qindex[c.source] if c.source else 0), c.multiplier, c.offset
            else:
                raise ConfigError(
                    f"{path.name}: joint {jt.name!r} lies between {base_frame!r} and the frames but is neither "
                    f"in the joint list nor coupled to one; add it to the joints"
                )
            seen_joints.add(jt.name)
            parent.append(par), jtype.append(jt.jtype), qidx.append(src), mult.append(m), offset.append(off)
            axis.append(jt.axis / np.linalg.norm(jt.axis)), t_pos.append(pos), t_rot.append(rot), names.append(jt.name)
            par = len(parent) - 1
            prev_anchor = jt.anchor
        last_node[b] = par
        exit_off[b] = (-prev_anchor, np.eye(3))

    unused = [j for j in joints if j not in seen_joints]
    if unused:
        raise ConfigError(f"{path.name}: joints {unused} do not move any of the frames {list(frames)} relative to {base_frame!r}")

    lower, upper = np.zeros(len(joints)), np.zeros(len(joints))
    limits = {jt.name: jt.limits for body in bodies for jt in body.joints}
    for i, jn in enumerate(joints):
        lim = (limit_overrides or {}).get(jn) or limits.get(jn)
        if lim is None:
            lower[i], upper[i] = -np.pi, np.pi  # continuous joint
        else:
            lower[i], upper[i] = lim

    f_node, f_pos, f_rot = [], [], []
    for fname in frames:
        b = frame_body[fname]
        ep, er = exit_off[b]
        fp, fr = bodies[b].frames[fname]
        pos, rot = _compose(ep, er, fp, fr)
        f_node.append(last_node[b]), f_pos.append(pos), f_rot.append(rot)

    return KinematicTree(
        joint_names=tuple(joints),
        frame_names=tuple(frames),
        base_frame=base_frame,
        lower=_frozen(lower),
        upper=_frozen(upper),
        parent=_frozen(parent, np.int64),
        jtype=_frozen(jtype, np.int64),
        qidx=_frozen(qidx, np.int64),
        mult=_frozen(mult),
        offset=_frozen(offset),
        axis=_frozen(np.array(axis).reshape(-1, 3)),
        t_pos=_frozen(np.array(t_pos).reshape(-1, 3)),
        t_rot=_frozen(np.array(t_rot).reshape(-1, 3, 3)),
        f_node=_frozen(f_node, np.int64),
        f_pos=_frozen(np.array(f_pos).reshape(-1, 3)),
        f_rot=_frozen(np.array(f_rot).reshape(-1, 3, 3)),
        node_names=tuple(names),
        source=str(path),
    )
