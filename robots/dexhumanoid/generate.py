"""Generate the bundled "dexhumanoid": MJCF ``dexhumanoid.xml`` (the robot) and ``scene.xml``,
and the same robot as URDF: ``dexhumanoid.urdf`` (whole robot, root link ``torso``) and
``hands/{left,right}_hand.urdf`` (one hand each, root link ``{side}_wrist`` = the wrist site
frame below, for dex-retargeting, pinocchio and ROS tools).

Stdlib only. Run ``python -m robots.dexhumanoid.generate`` after editing this file and commit
all outputs; ``tests/robots/test_dexhumanoid.py`` checks the committed files equal
``render_files()`` and ``tests/robots/test_dexhumanoid_urdf.py`` that the URDFs agree with the
MJCF (they are read off its element tree; see "URDF" below for the mapping).

Left and right (and the four long fingers) are written once below and instantiated per side,
never copied.

Conventions
-----------
World: x forward (towards the table), y to the robot's left, z up, metres and radians.

Zero pose: arms hang straight down, palms face the body's midline, thumbs point forward,
fingers straight. Every body frame is aligned with the world axes in the zero pose (no body
rotations), so the right side is the left side mirrored in the xz plane. Hinge axes are
mirrored as pseudovectors (every axis below is built as ``cross(moving_from, moving_to)`` of
mirrored directions), which makes equal joint values give mirror-image poses, so both sides
have the same joint ranges. Positive joint values are anatomical on both sides:

- ``shoulder_pitch`` + raises the arm forward, ``shoulder_roll`` + abducts (arm out sideways),
  ``shoulder_yaw`` + rotates internally, ``elbow`` + flexes (0 = straight);
- ``wrist_yaw`` + pronates (rotation about the forearm), ``wrist_pitch`` + flexes towards the
  palm, ``wrist_roll`` + deviates towards the thumb; the three wrist axes meet at the wrist
  centre (spherical wrist), as do the three shoulder axes;
- fingers: ``*_mcp_flex``, ``*_pip``, ``*_dip`` + curl into the palm, ``*_mcp_abd`` + spreads
  away from the middle finger (the middle finger's + is towards the thumb);
- thumb: ``thumb_cmc_abd`` + lifts the thumb out of the palm plane to the palmar side,
  ``thumb_cmc_flex`` + swings it across the palm towards the little finger, ``thumb_mcp`` and
  ``thumb_ip`` + flex. Each DIP follows its PIP through a joint equality, ``dip = k * pip``.

Wrist frame (site ``{side}_wrist``, same rule on both sides): origin at the wrist joint centre;
x points from the wrist towards the middle-finger MCP; z is the palm normal pointing out of the
palm on the palmar side; y = z cross x (so y points towards the thumb on the left hand and away
from it on the right). ``{side}_palm`` has the same orientation, on the palmar surface at the
palm centre. Fingertip sites sit on the pad of each distal segment, oriented like the wrist
frame in the zero pose.

Contacts (contype / conaffinity bits; MuJoCo collides two geoms when
``(contype1 & conaffinity2) | (contype2 & conaffinity1)`` is non-zero):

====== ===== ===================== ================================================
bit    value geoms                 collides with
====== ===== ===================== ================================================
ENV    1     floor, table          (passive: others ask for it)
OBJ    2     free objects          ENV, OBJ, both hands, arms
HAND_L 4     left palm and fingers ENV, OBJ, HAND_R (hand-over); not itself
HAND_R 8     right palm and fingers ENV, OBJ, HAND_L; not itself
ARM    16    upper arms, forearms  ENV, OBJ; not each other, hands or torso
BASE   32    bottle body cylinder  ENV only (stands on the table)
====== ===== ===================== ================================================

The bottle collides with hands and objects through an invisible capsule ``bottle_grip``
(group 3) of the same radius, whose ends lie inside the visible cylinder ``bottle``; the
cylinder only touches the table and floor. Capsule-capsule and capsule-box contacts are
analytic while cylinder contacts go through the general convex solver, so a hand wrapped
around the bottle steps about a third faster.

Torso, head, stand, shoulder and wrist housings are visual only (contype = conaffinity = 0).
Fingers of one hand do not collide with each other or with their palm (few contacts, no
jamming).

The arms and hands use gravity compensation (``gravcomp="1"``, routed through the actuators
with ``actuatorgravcomp``), as a real arm controller would feed it forward; the position gains
then only have to fight contacts and carried objects.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["render_files", "main", "ARM_JOINTS", "HAND_JOINTS", "FINGERS", "HOME_ARM_RAD"]

Vec = tuple[float, float, float]
OUT_DIR = Path(__file__).resolve().parent

SIDES = ("left", "right")

# Contact bits (see the module docstring).
ENV, OBJ, HAND_L, HAND_R, ARM, BASE = 1, 2, 4, 8, 16, 32
HAND_BIT = {"left": HAND_L, "right": HAND_R}

# ---------------------------------------------------------------------------------------------
# Small vector helpers (stdlib only).


def _add(*vs: Vec) -> Vec:
    return (sum(v[0] for v in vs), sum(v[1] for v in vs), sum(v[2] for v in vs))


def _mul(k: float, v: Vec) -> Vec:
    return (k * v[0], k * v[1], k * v[2])


def _cross(a: Vec, b: Vec) -> Vec:
    return (a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0])


def _dot(a: Vec, b: Vec) -> float:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def _unit(v: Vec) -> Vec:
    n = math.sqrt(_dot(v, v))
    return _mul(1.0 / n, v)


def _num(x: float) -> str:
    """``x`` exactly: the short 6-digit form when it reads back as ``x`` (to a few ulp, i.e. float
    noise in an input like 0.62 * 0.026), else ``repr``. The URDF is read off the MJCF strings,
    so nothing may be rounded here."""
    s = f"{x:.6g}"
    if abs(float(s) - x) > 1e-15 * abs(x):
        s = repr(float(x))
    return "0" if s in ("-0", "0", "-0.0") else s


def _num6(x: float) -> str:
    """6 significant digits, for MJCF-only values MuJoCo normalises anyway (camera axes)."""
    s = f"{x:.6g}"
    return "0" if s in ("-0", "0", "-0.0") else s


def _fmt(*xs: float) -> str:
    return " ".join(_num(x) for x in xs)


def _v(v: Vec) -> str:
    return _fmt(*v)


# ---------------------------------------------------------------------------------------------
# Dimensions and names.

SHOULDER_Y_M = 0.20  # shoulder centre, lateral offset from the torso centre line
SHOULDER_Z_M = 0.15  # shoulder centre above the torso frame
TORSO_Z_M = 1.00  # torso frame height above the floor
UPPER_ARM_M = 0.30
FOREARM_M = 0.27

ARM_JOINTS = (
    "shoulder_pitch",
    "shoulder_roll",
    "shoulder_yaw",
    "elbow",
    "wrist_yaw",
    "wrist_pitch",
    "wrist_roll",
)
ARM_RANGE_RAD = {
    "shoulder_pitch": (-1.0, 3.0),
    "shoulder_roll": (-0.8, 2.6),
    "shoulder_yaw": (-1.6, 1.6),
    "elbow": (0.0, 2.6),
    "wrist_yaw": (-1.6, 1.6),
    "wrist_pitch": (-1.2, 1.2),
    "wrist_roll": (-0.5, 0.5),
}
ARM_CLASS = {
    "shoulder_pitch": "shoulder",
    "shoulder_roll": "shoulder",
    "shoulder_yaw": "shoulder",
    "elbow": "elbow",
    "wrist_yaw": "wrist",
    "wrist_pitch": "wrist",
    "wrist_roll": "wrist",
}

#: Home pose of one arm (both sides use the same values thanks to the mirror convention):
#: forearms forward and level, hands above the near half of the table, palms facing each other,
#: thumbs up.
HOME_ARM_RAD = {
    "shoulder_pitch": 0.5,
    "shoulder_roll": 0.12,
    "shoulder_yaw": 0.0,
    "elbow": 1.35,
    "wrist_yaw": 0.0,
    "wrist_pitch": 0.0,
    "wrist_roll": -0.25,
}

#: DIP = DIP_COUPLING * PIP for index..pinky.
DIP_COUPLING = 0.8


@dataclass(frozen=True)
class JointClass:
    """Gains and limits of one joint class. The MJCF takes damping, armature and the actuator
    (kp, force range); the URDF takes damping, effort = ``force_nm`` and ``velocity_rad_s``."""

    kp: float | None  # [N m/rad]; None: not actuated (coupled DIP)
    damping: float  # [N m s/rad]
    armature: float  # [kg m^2]
    force_nm: float
    velocity_rad_s: float  # same as [limits] in dexhumanoid.toml


JOINT_CLASSES = {
    "shoulder": JointClass(400.0, 20.0, 0.1, 80.0, 2.0),
    "elbow": JointClass(300.0, 12.0, 0.05, 50.0, 2.5),
    "wrist": JointClass(60.0, 2.0, 0.01, 15.0, 3.5),
    "finger": JointClass(3.0, 0.1, 0.002, 2.5, 6.0),
    "thumb": JointClass(4.0, 0.12, 0.002, 3.0, 5.0),
    # The DIP moves at DIP_COUPLING times its PIP.
    "finger_coupled": JointClass(None, 0.1, 0.002, 2.5, DIP_COUPLING * 6.0),
}

#: Density of the robot's colliding geoms [kg/m^3] (visual geoms are massless).
GEOM_DENSITY = 1000.0


@dataclass(frozen=True)
class Finger:
    """One long finger, in hand coordinates (radial, palmar, distal) of the MCP centre."""

    name: str
    mcp_rnu: tuple[float, float, float]
    lengths_m: tuple[float, float, float]  # proximal, middle, distal phalanx
    radius_m: float
    abd_sign: float  # +1: positive abduction moves towards the thumb


FINGERS = (
    Finger("index", (0.023, 0.0, 0.106), (0.050, 0.030, 0.026), 0.0095, +1.0),
    Finger("middle", (0.0, 0.0, 0.110), (0.055, 0.034, 0.027), 0.0095, +1.0),
    Finger("ring", (-0.022, 0.0, 0.106), (0.052, 0.032, 0.026), 0.0092, -1.0),
    Finger("pinky", (-0.043, 0.0, 0.098), (0.041, 0.025, 0.023), 0.0085, -1.0),
)
FINGER_JOINTS = ("mcp_abd", "mcp_flex", "pip", "dip")
FINGER_RANGE_RAD = {
    "mcp_abd": (-0.3, 0.3),
    "mcp_flex": (-0.2, 1.6),
    "pip": (0.0, 1.8),
    "dip": (0.0, 1.5),
}

THUMB_CMC_RNU = (0.030, 0.010, 0.025)
THUMB_DIR_RU = (0.6, 0.8)  # thumb metacarpal direction in the palm plane (radial, distal)
THUMB_LENGTHS_M = (0.046, 0.036, 0.030)  # metacarpal, proximal, distal
THUMB_RADII_M = (0.0120, 0.0105, 0.0095)
THUMB_JOINTS = ("cmc_abd", "cmc_flex", "mcp", "ip")
THUMB_RANGE_RAD = {
    "cmc_abd": (-0.2, 1.6),
    "cmc_flex": (-0.3, 1.2),
    "mcp": (-0.2, 1.2),
    "ip": (-0.2, 1.5),
}

PALM_CENTER_RNU = (-0.010, 0.0, 0.057)
PALM_HALF_RNU = (0.045, 0.015, 0.052)


def hand_joint_names(side: str) -> tuple[str, ...]:
    """The 16 actuated hand joints of ``side``: thumb first, then index, middle, ring, pinky."""
    names = [f"{side}_thumb_{j}" for j in THUMB_JOINTS]
    for f in FINGERS:
        names += [f"{side}_{f.name}_{j}" for j in FINGER_JOINTS if j != "dip"]
    return tuple(names)


HAND_JOINTS = {side: hand_joint_names(side) for side in SIDES}


@dataclass(frozen=True)
class SideFrame:
    """Mirrored directions of one side (polar vectors, world frame, zero pose)."""

    side: str
    s: float  # +1 left, -1 right
    lateral: Vec
    medial: Vec
    radial: Vec  # towards the thumb
    palmar: Vec  # out of the palm
    distal: Vec  # along the fingers

    def rnu(self, r: float, n: float, u: float) -> Vec:
        """Hand coordinates (radial, palmar, distal) to a world-aligned offset."""
        return _add(_mul(r, self.radial), _mul(n, self.palmar), _mul(u, self.distal))


def side_frame(side: str) -> SideFrame:
    s = 1.0 if side == "left" else -1.0
    return SideFrame(
        side=side,
        s=s,
        lateral=(0.0, s, 0.0),
        medial=(0.0, -s, 0.0),
        radial=(1.0, 0.0, 0.0),
        palmar=(0.0, -s, 0.0),
        distal=(0.0, 0.0, -1.0),
    )


FORWARD: Vec = (1.0, 0.0, 0.0)
DOWN: Vec = (0.0, 0.0, -1.0)
BACKWARD: Vec = (-1.0, 0.0, 0.0)


# ---------------------------------------------------------------------------------------------
# XML building.


def _sub(parent: ET.Element, tag: str, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, tag)
    for k, v in attrs.items():
        el.set(k.rstrip("_"), v)
    return el


@dataclass
class _Collect:
    """What the body tree produces for the later sections (equality, actuator, keyframe)."""

    actuators: list[tuple[str, str, tuple[float, float]]]  # (joint, class, range)
    couplings: list[tuple[str, str]]  # (dip, pip)
    joints: list[str]  # every robot joint, in qpos order
    qpos_home: list[float]


def _joint(
    body: ET.Element,
    col: _Collect,
    name: str,
    axis: Vec,
    rng: tuple[float, float],
    cls: str,
    home: float = 0.0,
    actuated: bool = True,
) -> None:
    _sub(body, "joint", name=name, class_=cls, axis=_v(_unit(axis)), range=_fmt(*rng))
    col.joints.append(name)
    col.qpos_home.append(home)
    if actuated:
        col.actuators.append((name, cls, rng))


def _body(parent: ET.Element, name: str, pos: Vec) -> ET.Element:
    return _sub(parent, "body", name=name, pos=_v(pos), gravcomp="1")


def _frame_xyaxes(x: Vec, z: Vec) -> str:
    """xyaxes of a right-handed frame with the given x and (approximate) z axis."""
    x = _unit(x)
    z = _unit(_add(z, _mul(-_dot(z, x), x)))
    y = _cross(z, x)
    return _fmt(*x, *y)


def _camera_xyaxes(view: Vec, up: Vec) -> str:
    """xyaxes of a MuJoCo camera looking along ``view`` with image-up ``up``."""
    back = _mul(-1.0, _unit(view))
    up = _unit(_add(up, _mul(-_dot(up, back), back)))
    right = _cross(up, back)
    return " ".join(_num6(x) for x in (*right, *up))


def _arm(parent: ET.Element, col: _Collect, side: str) -> None:
    f = side_frame(side)
    p = f"{side}_"
    flex_forward = _cross(DOWN, FORWARD)  # raise forward
    axes = {
        "shoulder_pitch": flex_forward,
        "shoulder_roll": _cross(DOWN, f.lateral),  # abduct
        "shoulder_yaw": _cross(FORWARD, f.medial),  # forearm (elbow bent) towards the belly
        "elbow": flex_forward,  # flex
        "wrist_yaw": _cross(f.palmar, BACKWARD),  # pronate: palm turns backwards in zero pose
        "wrist_pitch": _cross(f.distal, f.palmar),  # flex
        "wrist_roll": _cross(f.distal, f.radial),  # radial deviation
    }

    def joint(body: ET.Element, j: str) -> None:
        _joint(body, col, p + j, axes[j], ARM_RANGE_RAD[j], ARM_CLASS[j], HOME_ARM_RAD[j])

    shoulder = _body(parent, p + "shoulder_pitch_link", (0.0, f.s * SHOULDER_Y_M, SHOULDER_Z_M))
    joint(shoulder, "shoulder_pitch")
    _sub(shoulder, "geom", class_="visual", type="sphere", size="0.05", material="joint")
    _sub(shoulder, "inertial", pos="0 0 0", mass="0.4", diaginertia="4e-4 4e-4 4e-4")
    roll = _body(shoulder, p + "shoulder_roll_link", (0.0, 0.0, 0.0))
    joint(roll, "shoulder_roll")
    _sub(roll, "inertial", pos="0 0 0", mass="0.3", diaginertia="3e-4 3e-4 3e-4")
    upper = _body(roll, p + "upper_arm", (0.0, 0.0, 0.0))
    joint(upper, "shoulder_yaw")
    _sub(
        upper,
        "geom",
        class_="arm",
        type="capsule",
        size="0.04",
        fromto=_fmt(0, 0, -0.06, 0, 0, -UPPER_ARM_M + 0.03),
        material="shell",
    )
    elbow = _body(upper, p + "forearm", (0.0, 0.0, -UPPER_ARM_M))
    joint(elbow, "elbow")
    _sub(
        elbow,
        "geom",
        class_="visual",
        type="cylinder",
        size="0.042 0.035",
        zaxis=_v(f.lateral),
        material="joint",
    )
    _sub(
        elbow,
        "geom",
        class_="arm",
        type="capsule",
        size="0.033",
        fromto=_fmt(0, 0, -0.05, 0, 0, -FOREARM_M + 0.04),
        material="shell",
    )
    wy = _body(elbow, p + "wrist_yaw_link", (0.0, 0.0, -FOREARM_M))
    joint(wy, "wrist_yaw")
    _sub(wy, "inertial", pos="0 0 0", mass="0.1", diaginertia="5e-5 5e-5 5e-5")
    wp = _body(wy, p + "wrist_pitch_link", (0.0, 0.0, 0.0))
    joint(wp, "wrist_pitch")
    _sub(wp, "geom", class_="visual", type="sphere", size="0.03", material="joint")
    _sub(wp, "inertial", pos="0 0 0", mass="0.1", diaginertia="5e-5 5e-5 5e-5")
    hand = _body(wp, p + "hand", (0.0, 0.0, 0.0))
    joint(hand, "wrist_roll")
    _hand(hand, col, f)


def _hand(hand: ET.Element, col: _Collect, f: SideFrame) -> None:
    p = f"{f.side}_"
    hand_cls = f"{f.side}_hand"
    _sub(
        hand,
        "geom",
        name=p + "palm",
        class_=hand_cls,
        type="box",
        pos=_v(f.rnu(*PALM_CENTER_RNU)),
        size=_fmt(*PALM_HALF_RNU),  # body axes: x, y, z = r, n, u
        material="hand",
    )

    middle_mcp = f.rnu(*FINGERS[1].mcp_rnu)
    _sub(
        hand,
        "site",
        name=p + "wrist",
        class_="frame",
        pos="0 0 0",
        xyaxes=_frame_xyaxes(middle_mcp, f.palmar),
    )
    _sub(
        hand,
        "site",
        name=p + "palm",
        class_="frame",
        pos=_v(f.rnu(0.0, PALM_HALF_RNU[1], 0.055)),
        xyaxes=_frame_xyaxes(middle_mcp, f.palmar),
    )
    cam_pos = f.rnu(0.0, 0.05, -0.005)
    _sub(
        hand,
        "geom",
        class_="visual",
        type="box",
        size="0.012 0.012 0.012",
        pos=_v(f.rnu(0.0, 0.05, -0.02)),
        material="dark",
    )
    _sub(
        hand,
        "camera",
        name=p + "wrist_cam",
        pos=_v(cam_pos),
        fovy="90",
        xyaxes=_camera_xyaxes(_add(f.distal, _mul(0.5, f.palmar)), f.radial),
    )

    _thumb(hand, col, f)
    for finger in FINGERS:
        _finger(hand, col, f, finger)


def _segment(body: ET.Element, cls: str, direction: Vec, length: float, radius: float) -> None:
    _sub(
        body,
        "geom",
        name=body.get("name", ""),
        class_=cls,
        type="capsule",
        size=_num(radius),
        fromto=_fmt(0, 0, 0, *_mul(length, direction)),
        material="finger",
    )


def _tip_site(
    body: ET.Element,
    f: SideFrame,
    name: str,
    direction: Vec,
    pad: Vec,
    length: float,
    radius: float,
) -> None:
    pos = _add(_mul(0.62 * length, direction), _mul(radius, pad))
    _sub(body, "site", name=name, class_="tip", pos=_v(pos), xyaxes=_frame_xyaxes(direction, pad))


def _finger(hand: ET.Element, col: _Collect, f: SideFrame, finger: Finger) -> None:
    p = f"{f.side}_{finger.name}_"
    hand_cls = f"{f.side}_hand"
    flex_axis = _cross(f.distal, f.palmar)
    toward = f.radial if finger.abd_sign > 0 else _mul(-1.0, f.radial)
    abd_axis = _cross(f.distal, toward)
    rng = FINGER_RANGE_RAD
    lp, lm, ld = finger.lengths_m
    r = finger.radius_m

    knuckle = _body(hand, p + "knuckle", f.rnu(*finger.mcp_rnu))
    _joint(knuckle, col, p + "mcp_abd", abd_axis, rng["mcp_abd"], "finger")
    _sub(knuckle, "inertial", pos="0 0 0", mass="0.005", diaginertia="2e-7 2e-7 2e-7")
    prox = _body(knuckle, p + "proximal", (0.0, 0.0, 0.0))
    _joint(prox, col, p + "mcp_flex", flex_axis, rng["mcp_flex"], "finger")
    _segment(prox, hand_cls, f.distal, lp, r)
    mid = _body(prox, p + "middle", _mul(lp, f.distal))
    _joint(mid, col, p + "pip", flex_axis, rng["pip"], "finger")
    _segment(mid, hand_cls, f.distal, lm, 0.93 * r)
    dist = _body(mid, p + "distal", _mul(lm, f.distal))
    _joint(dist, col, p + "dip", flex_axis, rng["dip"], "finger_coupled", actuated=False)
    _segment(dist, hand_cls, f.distal, ld - 0.86 * r, 0.86 * r)
    _tip_site(dist, f, f"{f.side}_{finger.name}_tip", f.distal, f.palmar, ld, 0.86 * r)
    col.couplings.append((p + "dip", p + "pip"))


def _thumb(hand: ET.Element, col: _Collect, f: SideFrame) -> None:
    p = f"{f.side}_thumb_"
    hand_cls = f"{f.side}_hand"
    d0 = _unit(_add(_mul(THUMB_DIR_RU[0], f.radial), _mul(THUMB_DIR_RU[1], f.distal)))
    # Flexion direction: across the palm (towards the little finger), in the palm plane.
    ulnar = _mul(-1.0, f.radial)
    flex_dir = _unit(_add(ulnar, _mul(-_dot(ulnar, d0), d0)))
    abd_axis = _cross(d0, f.palmar)
    flex_axis = _cross(d0, flex_dir)
    lm, lp, ld = THUMB_LENGTHS_M
    rm, rp, rd = THUMB_RADII_M
    rng = THUMB_RANGE_RAD

    base = _body(hand, p + "base", f.rnu(*THUMB_CMC_RNU))
    _joint(base, col, p + "cmc_abd", abd_axis, rng["cmc_abd"], "thumb")
    _sub(base, "inertial", pos="0 0 0", mass="0.01", diaginertia="1e-6 1e-6 1e-6")
    meta = _body(base, p + "metacarpal", (0.0, 0.0, 0.0))
    _joint(meta, col, p + "cmc_flex", flex_axis, rng["cmc_flex"], "thumb")
    _segment(meta, hand_cls, d0, lm, rm)
    prox = _body(meta, p + "proximal", _mul(lm, d0))
    _joint(prox, col, p + "mcp", flex_axis, rng["mcp"], "thumb")
    _segment(prox, hand_cls, d0, lp, rp)
    dist = _body(prox, p + "distal", _mul(lp, d0))
    _joint(dist, col, p + "ip", flex_axis, rng["ip"], "thumb")
    _segment(dist, hand_cls, d0, ld - rd, rd)
    _tip_site(dist, f, f"{f.side}_thumb_tip", d0, flex_dir, ld, rd)


def _defaults(root: ET.Element) -> None:
    d = _sub(root, "default")
    robot = _sub(d, "default", class_="dexhumanoid")
    _sub(robot, "joint", type="hinge", limited="true", actuatorgravcomp="true")
    _sub(robot, "geom", contype="0", conaffinity="0", condim="3", density=_num(GEOM_DENSITY))
    _sub(robot, "site", group="4", rgba="1 0.3 0.3 1", size="0.005")
    _sub(robot, "position", forcelimited="true", ctrllimited="true")

    vis = _sub(robot, "default", class_="visual")
    _sub(vis, "geom", contype="0", conaffinity="0", mass="0")
    arm = _sub(robot, "default", class_="arm")
    _sub(
        arm,
        "geom",
        contype=str(ARM),
        conaffinity=str(ENV | OBJ),
        condim="3",
        friction="0.8 0.005 0.0001",
    )
    for side in SIDES:
        other = HAND_R if side == "left" else HAND_L
        hc = _sub(robot, "default", class_=f"{side}_hand")
        _sub(
            hc,
            "geom",
            contype=str(HAND_BIT[side]),
            conaffinity=str(ENV | OBJ | other),
            condim="4",
            friction="1.2 0.02 0.0002",
            solimp="0.95 0.99 0.001 0.5 2",
            solref="0.01 1",
        )
    frame = _sub(robot, "default", class_="frame")
    _sub(frame, "site", type="sphere", size="0.006", rgba="0.2 0.6 1 0.6")
    tip = _sub(robot, "default", class_="tip")
    _sub(tip, "site", type="sphere", size="0.004", rgba="1 0.3 0.3 0.8")

    for cls, jc in JOINT_CLASSES.items():
        c = _sub(robot, "default", class_=cls)
        _sub(c, "joint", damping=_num(jc.damping), armature=_num(jc.armature))
        if jc.kp is not None:
            _sub(c, "position", kp=_num(jc.kp), forcerange=_fmt(-jc.force_nm, jc.force_nm))


def _robot() -> tuple[ET.Element, _Collect]:
    """The robot's MJCF element tree (serialised as ``dexhumanoid.xml``; the URDFs are read off
    it) and what the scene needs from it."""
    root = ET.Element("mujoco", model="dexhumanoid")
    _sub(root, "compiler", angle="radian", autolimits="true")
    _defaults(root)
    asset = _sub(root, "asset")
    for name, rgba in (
        ("shell", "0.85 0.86 0.88 1"),
        ("joint", "0.25 0.27 0.3 1"),
        ("dark", "0.1 0.1 0.12 1"),
        ("hand", "0.3 0.32 0.36 1"),
        ("finger", "0.72 0.74 0.78 1"),
        ("accent", "0.15 0.45 0.8 1"),
    ):
        _sub(asset, "material", name=name, rgba=rgba, specular="0.3", shininess="0.3")

    col = _Collect(actuators=[], couplings=[], joints=[], qpos_home=[])
    world = _sub(root, "worldbody")
    # Stand: visual only, the torso is welded to the world.
    _sub(
        world,
        "geom",
        name="stand_base",
        class_="visual",
        type="cylinder",
        size="0.22 0.02",
        pos="-0.05 0 0.02",
        material="dark",
    )
    _sub(
        world,
        "geom",
        name="stand_post",
        class_="visual",
        type="cylinder",
        size="0.045",
        fromto=_fmt(-0.05, 0, 0.04, -0.05, 0, TORSO_Z_M - 0.15),
        material="joint",
    )
    torso = _sub(world, "body", name="torso", pos=_fmt(0, 0, TORSO_Z_M), childclass="dexhumanoid")
    _sub(
        torso,
        "geom",
        name="pelvis",
        class_="visual",
        type="box",
        size="0.09 0.14 0.06",
        pos="-0.02 0 -0.12",
        material="shell",
    )
    _sub(
        torso,
        "geom",
        name="chest",
        class_="visual",
        type="box",
        size="0.1 0.16 0.13",
        pos="-0.02 0 0.08",
        material="shell",
    )
    _sub(
        torso,
        "geom",
        class_="visual",
        type="box",
        size="0.101 0.06 0.05",
        pos="-0.02 0 0.1",
        material="accent",
    )
    _sub(torso, "inertial", pos="0 0 0", mass="10", diaginertia="0.2 0.2 0.1")
    head = _sub(torso, "body", name="head", pos="0 0 0.3")
    _sub(
        head,
        "geom",
        class_="visual",
        type="capsule",
        size="0.035",
        fromto="0 0 -0.1 0 0 -0.03",
        material="joint",
    )
    _sub(
        head,
        "geom",
        name="head",
        class_="visual",
        type="sphere",
        size="0.09",
        pos="0 0 0.04",
        material="shell",
    )
    _sub(
        head,
        "geom",
        class_="visual",
        type="box",
        size="0.02 0.065 0.025",
        pos="0.075 0 0.05",
        material="dark",
    )
    head_cam = (0.08, 0.0, 0.06)
    look_at = (0.55, 0.0, 0.75 - TORSO_Z_M - 0.3)  # table centre, in head coordinates
    _sub(
        head,
        "camera",
        name="head_cam",
        pos=_v(head_cam),
        fovy="70",
        xyaxes=_camera_xyaxes(_add(look_at, _mul(-1.0, head_cam)), (0.0, 0.0, 1.0)),
    )
    _sub(torso, "site", name="torso", class_="frame", pos="0 0 0")
    for side in SIDES:
        _arm(torso, col, side)

    eq = _sub(root, "equality")
    for dip, pip in col.couplings:
        _sub(
            eq,
            "joint",
            name=f"{dip}_coupling",
            joint1=dip,
            joint2=pip,
            polycoef=_fmt(0, DIP_COUPLING, 0, 0, 0),
            solref="0.005 1",
        )
    act = _sub(root, "actuator")
    for joint, cls, rng in col.actuators:
        _sub(act, "position", name=joint, joint=joint, class_=cls, ctrlrange=_fmt(*rng))
    return root, col


# ---------------------------------------------------------------------------------------------
# Scene.

TABLE_TOP_Z_M = 0.75
TABLE_CENTER_XY = (0.62, 0.0)
TABLE_HALF_XY = (0.32, 0.55)


@dataclass(frozen=True)
class SceneObject:
    name: str
    pos: Vec
    mass_kg: float


CUBE = SceneObject("cube", (0.46, 0.15, TABLE_TOP_Z_M + 0.025), 0.1)
BOTTLE = SceneObject("bottle", (0.49, -0.13, TABLE_TOP_Z_M + 0.10), 0.2)
MUG = SceneObject("mug", (0.54, 0.0, TABLE_TOP_Z_M + 0.05), 0.15)
OBJECTS = (CUBE, BOTTLE, MUG)


def _scene(col: _Collect) -> str:
    root = ET.Element("mujoco", model="dexhumanoid_scene")
    _sub(root, "include", file="dexhumanoid.xml")
    _sub(
        root, "option", timestep="0.002", integrator="implicitfast", cone="elliptic", impratio="50"
    )
    _sub(root, "statistic", center="0.35 0 0.9", extent="1.2")
    vis = _sub(root, "visual")
    _sub(vis, "headlight", diffuse="0.6 0.6 0.6", ambient="0.3 0.3 0.3", specular="0 0 0")
    _sub(vis, "global", azimuth="150", elevation="-25", offwidth="1280", offheight="960")
    _sub(vis, "quality", shadowsize="4096")
    asset = _sub(root, "asset")
    _sub(
        asset,
        "texture",
        type="skybox",
        builtin="gradient",
        rgb1="0.55 0.65 0.8",
        rgb2="0.1 0.12 0.15",
        width="256",
        height="256",
    )
    _sub(
        asset,
        "texture",
        name="grid",
        type="2d",
        builtin="checker",
        rgb1="0.32 0.34 0.36",
        rgb2="0.26 0.28 0.3",
        width="256",
        height="256",
        mark="edge",
        markrgb="0.4 0.42 0.44",
    )
    _sub(asset, "material", name="floor", texture="grid", texrepeat="8 8", reflectance="0.1")
    _sub(asset, "material", name="table", rgba="0.55 0.4 0.28 1")
    _sub(asset, "material", name="table_leg", rgba="0.3 0.22 0.15 1")
    _sub(asset, "material", name="cube", rgba="0.85 0.25 0.2 1")
    _sub(asset, "material", name="bottle", rgba="0.2 0.6 0.35 1")
    _sub(asset, "material", name="mug", rgba="0.95 0.85 0.3 1")
    _sub(asset, "material", name="dark_cap", rgba="0.1 0.1 0.12 1")

    world = _sub(root, "worldbody")
    _sub(
        world,
        "light",
        name="key",
        pos="0.5 -0.6 2.5",
        dir="-0.1 0.3 -1",
        directional="false",
        diffuse="0.7 0.7 0.7",
        castshadow="true",
    )
    _sub(
        world,
        "light",
        name="fill",
        pos="-0.5 0.8 2.0",
        dir="0.4 -0.4 -1",
        diffuse="0.3 0.3 0.3",
        castshadow="false",
    )
    _sub(
        world,
        "geom",
        name="floor",
        type="plane",
        size="0 0 0.05",
        material="floor",
        contype=str(ENV),
        conaffinity="0",
        condim="3",
    )
    tx, ty = TABLE_CENTER_XY
    hx, hy = TABLE_HALF_XY
    table = _sub(world, "body", name="table", pos=_fmt(tx, ty, TABLE_TOP_Z_M))
    _sub(
        table,
        "geom",
        name="table_top",
        type="box",
        size=_fmt(hx, hy, 0.02),
        pos="0 0 -0.02",
        material="table",
        contype=str(ENV),
        conaffinity="0",
        condim="3",
        friction="0.8 0.005 0.0001",
    )
    for sx in (-1, 1):
        for sy in (-1, 1):
            _sub(
                table,
                "geom",
                type="cylinder",
                size="0.025",
                fromto=_fmt(
                    sx * (hx - 0.05),
                    sy * (hy - 0.05),
                    -0.04,
                    sx * (hx - 0.05),
                    sy * (hy - 0.05),
                    -TABLE_TOP_Z_M,
                ),
                material="table_leg",
                contype="0",
                conaffinity="0",
            )

    obj_geom = {
        "contype": str(OBJ),
        "conaffinity": str(ENV | OBJ | HAND_L | HAND_R | ARM),
        "condim": "3",
        "friction": "1.0 0.01 0.0002",
    }
    cube = _sub(world, "body", name="cube", pos=_v(CUBE.pos))
    _sub(cube, "freejoint", name="cube")
    _sub(
        cube,
        "geom",
        name="cube",
        type="box",
        size="0.025 0.025 0.025",
        mass=_num(CUBE.mass_kg),
        material="cube",
        **obj_geom,
    )
    bottle = _sub(world, "body", name="bottle", pos=_v(BOTTLE.pos))
    _sub(bottle, "freejoint", name="bottle")
    _sub(
        bottle,
        "geom",
        name="bottle",
        type="cylinder",
        size="0.033 0.1",
        mass=_num(BOTTLE.mass_kg * 0.95),
        material="bottle",
        **{**obj_geom, "contype": str(BASE), "conaffinity": str(ENV)},
    )
    _sub(
        bottle,
        "geom",
        name="bottle_grip",
        type="capsule",
        size="0.033 0.067",
        mass="0",
        group="3",
        **{**obj_geom, "conaffinity": str(OBJ | HAND_L | HAND_R | ARM)},
    )
    _sub(
        bottle,
        "geom",
        name="bottle_cap",
        type="cylinder",
        size="0.014 0.015",
        pos="0 0 0.115",
        mass=_num(BOTTLE.mass_kg * 0.05),
        material="dark_cap",
        contype="0",
        conaffinity="0",
    )
    mug = _sub(world, "body", name="mug", pos=_v(MUG.pos))
    _sub(mug, "freejoint", name="mug")
    _sub(
        mug,
        "geom",
        name="mug",
        type="cylinder",
        size="0.04 0.05",
        mass=_num(MUG.mass_kg * 0.8),
        material="mug",
        **obj_geom,
    )
    handle_mass = _num(MUG.mass_kg * 0.2 / 3)
    for i, (a, b) in enumerate(
        (
            ((0, 0.038, 0.03), (0, 0.07, 0.03)),
            ((0, 0.07, 0.03), (0, 0.07, -0.03)),
            ((0, 0.07, -0.03), (0, 0.038, -0.03)),
        )
    ):
        _sub(
            mug,
            "geom",
            name=f"mug_handle{i}",
            type="capsule",
            size="0.008",
            fromto=_fmt(*a, *b),
            mass=handle_mass,
            material="mug",
            **obj_geom,
        )

    keyframe = _sub(root, "keyframe")
    qpos = list(col.qpos_home)
    for o in OBJECTS:
        qpos += [*o.pos, 1.0, 0.0, 0.0, 0.0]
    ctrl = [col.qpos_home[col.joints.index(joint)] for joint, _, _ in col.actuators]
    _sub(keyframe, "key", name="home", qpos=_fmt(*qpos), ctrl=_fmt(*ctrl))
    return _serialize(root, "scene.xml: generated by robots/dexhumanoid/generate.py; do not edit.")


# ---------------------------------------------------------------------------------------------
# URDF: read off the MJCF element tree built by _robot(), so both formats share every number
# (_num writes them exactly). ``dexhumanoid.urdf`` is the whole robot (root link ``torso``);
# ``hands/{side}_hand.urdf`` is one hand rooted at the ``{side}_wrist`` site frame, for
# dex-retargeting, pinocchio and ROS tools.
#
# Mapping: body -> link of the same name; hinge -> revolute joint (same name, axis and range;
# effort and velocity from JOINT_CLASSES); body without a joint -> fixed joint
# ``{parent}_to_{child}``; site -> massless link of the same name on a fixed joint (a site named
# like its body is that body's link); DIP equality -> <mimic>. An explicit <inertial> is
# copied; otherwise the link's inertia is that of its colliding geoms at GEOM_DENSITY (as MuJoCo
# computes it; visual geoms are massless). Every geom is a <visual>, colliding ones also a
# <collision>; capsules (not in URDF) become a cylinder and two spheres. Cameras are left out.

Mat = tuple[Vec, Vec, Vec]  # rows
_IDENTITY: Mat = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))
_VISUAL_CLASS = "visual"
_URDF_HEADER = (
    "{name}: generated by robots/dexhumanoid/generate.py from dexhumanoid.xml; do not edit."
)


def _vec(s: str | None) -> Vec:
    if s is None:
        return (0.0, 0.0, 0.0)
    x = tuple(float(t) for t in s.split())
    if len(x) != 3:
        raise ValueError(f"expected 3 numbers, got {s!r}")
    return (x[0], x[1], x[2])


def _transpose(m: Mat) -> Mat:
    return (
        (m[0][0], m[1][0], m[2][0]),
        (m[0][1], m[1][1], m[2][1]),
        (m[0][2], m[1][2], m[2][2]),
    )


def _mat_vec(m: Mat, v: Vec) -> Vec:
    return (_dot(m[0], v), _dot(m[1], v), _dot(m[2], v))


def _rot_xyaxes(s: str) -> Mat:
    """Rotation of an MJCF ``xyaxes`` frame, built as MuJoCo builds it."""
    v = tuple(float(t) for t in s.split())
    x = _unit((v[0], v[1], v[2]))
    y = (v[3], v[4], v[5])
    y = _unit(_add(y, _mul(-_dot(x, y), x)))
    return _transpose((x, y, _cross(x, y)))


def _rot_z_to(d: Vec) -> Mat:
    """The shortest rotation taking the z axis to ``d`` (the axis of a cylinder or capsule)."""
    z = _unit(d)
    a = (-z[1], z[0], 0.0)  # z_axis x z, |a| = sin(angle)
    s2 = _dot(a, a)
    c = z[2]
    if s2 < 1e-30:
        return _IDENTITY if c > 0 else ((1.0, 0.0, 0.0), (0.0, -1.0, 0.0), (0.0, 0.0, -1.0))
    k = (1.0 - c) / s2
    return (
        (c + k * a[0] * a[0], k * a[0] * a[1] - a[2], k * a[0] * a[2] + a[1]),
        (k * a[1] * a[0] + a[2], c + k * a[1] * a[1], k * a[1] * a[2] - a[0]),
        (k * a[2] * a[0] - a[1], k * a[2] * a[1] + a[0], c + k * a[2] * a[2]),
    )


def _rot_rpy(r: float, p: float, y: float) -> Mat:
    """URDF convention: R = Rz(y) Ry(p) Rx(r)."""
    cr, sr = math.cos(r), math.sin(r)
    cp, sp = math.cos(p), math.sin(p)
    cy, sy = math.cos(y), math.sin(y)
    return (
        (cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr),
        (sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr),
        (-sp, cp * sr, cp * cr),
    )


def _rpy(m: Mat) -> Vec:
    cp = math.hypot(m[0][0], m[1][0])
    pitch = math.atan2(-m[2][0], cp)
    if cp > 1e-9:
        rpy = (math.atan2(m[2][1], m[2][2]), pitch, math.atan2(m[1][0], m[0][0]))
    else:  # pitch = +-pi/2: only roll - yaw (or roll + yaw) is defined; take yaw = 0
        rpy = (math.atan2(-m[1][2], m[1][1]), pitch, 0.0)
    back = _rot_rpy(*rpy)
    err = max(abs(back[i][j] - m[i][j]) for i in range(3) for j in range(3))
    if err > 1e-14:
        raise ValueError(f"rpy {rpy} reproduces the rotation only to {err:.1e}")
    return rpy


def _origin(el: ET.Element, pos: Vec, rot: Mat = _IDENTITY) -> None:
    attrs = {"xyz": _v(pos)}
    if rot != _IDENTITY:
        attrs["rpy"] = _v(_rpy(rot))
    _sub(el, "origin", **attrs)


_GEOM_ATTRS = {"name", "class", "type", "size", "pos", "fromto", "zaxis", "material"}


def _geom_placement(geom: ET.Element) -> tuple[Vec, Mat, tuple[float, ...]]:
    """Position, rotation and MuJoCo ``size`` of a geom (``fromto`` resolved)."""
    extra = set(geom.attrib) - _GEOM_ATTRS
    if extra:
        raise ValueError(f"geom {geom.get('name', '')}: no URDF mapping for {sorted(extra)}")
    size = tuple(float(t) for t in geom.get("size", "").split())
    fromto = geom.get("fromto")
    if fromto is not None:
        v = tuple(float(t) for t in fromto.split())
        a, b = (v[0], v[1], v[2]), (v[3], v[4], v[5])
        d = _add(b, _mul(-1.0, a))
        return _mul(0.5, _add(a, b)), _rot_z_to(d), (size[0], 0.5 * math.sqrt(_dot(d, d)))
    zaxis = geom.get("zaxis")
    return _vec(geom.get("pos")), _IDENTITY if zaxis is None else _rot_z_to(_vec(zaxis)), size


def _primitive_inertia(kind: str, size: tuple[float, ...]) -> tuple[float, Vec]:
    """Mass and principal inertia (geom axes) of a solid primitive at GEOM_DENSITY."""
    rho = GEOM_DENSITY
    if kind == "sphere":
        r = size[0]
        m = rho * 4.0 / 3.0 * math.pi * r**3
        return m, (0.4 * m * r * r,) * 3
    if kind == "box":
        a, b, c = size
        m = rho * 8.0 * a * b * c
        return m, (m / 3.0 * (b * b + c * c), m / 3.0 * (a * a + c * c), m / 3.0 * (a * a + b * b))
    if kind == "cylinder":
        r, h = size[0], 2.0 * size[1]
        m = rho * math.pi * r * r * h
        return m, (m * (3.0 * r * r + h * h) / 12.0,) * 2 + (0.5 * m * r * r,)
    if kind == "capsule":  # cylinder plus two hemispheres
        r, h = size[0], 2.0 * size[1]
        mc = rho * math.pi * r * r * h
        ms = rho * 4.0 / 3.0 * math.pi * r**3
        ixx = mc * (h * h / 12.0 + r * r / 4.0) + ms * (
            0.4 * r * r + h * h / 4.0 + 3.0 * h * r / 8.0
        )
        return mc + ms, (ixx, ixx, 0.5 * mc * r * r + 0.4 * ms * r * r)
    raise ValueError(f"no inertia for geom type {kind!r}")


def _link_inertial(link: ET.Element, body: ET.Element) -> None:
    """The body's <inertial>, or the combined inertia of its colliding geoms, as MuJoCo sees it."""
    inertial = body.find("inertial")
    if inertial is not None:
        if set(inertial.attrib) != {"pos", "mass", "diaginertia"}:
            raise ValueError(f"unsupported inertial of {body.get('name')}: {inertial.attrib}")
        com = _vec(inertial.get("pos"))
        mass = float(inertial.get("mass", ""))
        d = _vec(inertial.get("diaginertia"))
        tensor = ((d[0], 0.0, 0.0), (0.0, d[1], 0.0), (0.0, 0.0, d[2]))
    else:
        parts = []
        for geom in body.findall("geom"):
            if geom.get("class") == _VISUAL_CLASS:
                continue
            pos, rot, size = _geom_placement(geom)
            m, diag = _primitive_inertia(geom.get("type", "sphere"), size)
            parts.append((m, pos, rot, diag))
        if not parts:
            return  # massless (visual only, or a site link)
        mass = sum(m for m, _, _, _ in parts)
        com = _mul(1.0 / mass, _add(*(_mul(m, pos) for m, pos, _, _ in parts)))
        rows = [[0.0] * 3 for _ in range(3)]
        for m, pos, rot, diag in parts:
            r = _add(pos, _mul(-1.0, com))
            rr = _dot(r, r)
            for i in range(3):
                for j in range(3):
                    rotated = sum(rot[i][k] * diag[k] * rot[j][k] for k in range(3))
                    rows[i][j] += rotated + m * ((rr if i == j else 0.0) - r[i] * r[j])
        tensor = (
            (rows[0][0], rows[0][1], rows[0][2]),
            (rows[1][0], rows[1][1], rows[1][2]),
            (rows[2][0], rows[2][1], rows[2][2]),
        )
    el = _sub(link, "inertial")
    _origin(el, com)
    _sub(el, "mass", value=_num(mass))
    _sub(
        el,
        "inertia",
        ixx=_num(tensor[0][0]),
        ixy=_num(tensor[0][1]),
        ixz=_num(tensor[0][2]),
        iyy=_num(tensor[1][1]),
        iyz=_num(tensor[1][2]),
        izz=_num(tensor[2][2]),
    )


def _link_geoms(link: ET.Element, body: ET.Element, materials: set[str]) -> None:
    for geom in body.findall("geom"):
        kind = geom.get("type", "sphere")
        pos, rot, size = _geom_placement(geom)
        shapes: list[tuple[Vec, str, dict[str, str]]]  # (position, URDF shape, attributes)
        if kind == "box":
            shapes = [(pos, "box", {"size": _fmt(*_mul(2.0, (size[0], size[1], size[2])))})]
        elif kind == "sphere":
            shapes = [(pos, "sphere", {"radius": _num(size[0])})]
        elif kind in ("cylinder", "capsule"):
            shapes = [(pos, "cylinder", {"radius": _num(size[0]), "length": _num(2.0 * size[1])})]
            if kind == "capsule":
                axis = _mul(size[1], (rot[0][2], rot[1][2], rot[2][2]))
                for end in (_add(pos, _mul(-1.0, axis)), _add(pos, axis)):
                    shapes.append((end, "sphere", {"radius": _num(size[0])}))
        else:
            raise ValueError(f"geom type {kind!r} has no URDF shape")
        tags = ["visual"] if geom.get("class") == _VISUAL_CLASS else ["visual", "collision"]
        for tag in tags:
            for where, shape, attrs in shapes:
                el = _sub(link, tag)
                _origin(el, where, rot if shape != "sphere" else _IDENTITY)
                _sub(_sub(el, "geometry"), shape, **attrs)
                if tag == "visual" and geom.get("material"):
                    _sub(el, "material", name=geom.get("material", ""))
                    materials.add(geom.get("material", ""))


_BODY_CHILDREN = {"joint", "geom", "inertial", "site", "body", "camera"}


@dataclass(frozen=True)
class _UrdfContext:
    mimic: dict[str, tuple[str, float, float]]  # joint -> (source joint, multiplier, offset)


def _urdf_fixed(robot: ET.Element, parent: str, child: str, pos: Vec, rot: Mat) -> None:
    joint = _sub(robot, "joint", name=f"{parent}_to_{child}", type="fixed")
    _origin(joint, pos, rot)
    _sub(joint, "parent", link=parent)
    _sub(joint, "child", link=child)


def _urdf_link(
    robot: ET.Element,
    body: ET.Element,
    ctx: _UrdfContext,
    materials: set[str],
    skip_site: str = "",
) -> None:
    """``body`` as a link, then its sites and child bodies (each after its joint)."""
    name = body.get("name", "")
    unknown = {child.tag for child in body} - _BODY_CHILDREN
    if unknown or body.get("quat") or body.get("euler"):
        raise ValueError(f"body {name}: no URDF mapping for {sorted(unknown)} or a rotated body")
    link = _sub(robot, "link", name=name)
    _link_inertial(link, body)
    _link_geoms(link, body, materials)
    for site in body.findall("site"):
        site_name = site.get("name", "")
        pos = _vec(site.get("pos"))
        rot = _rot_xyaxes(site.get("xyaxes", "")) if site.get("xyaxes") else _IDENTITY
        if site_name == name:  # the link itself is the frame
            if pos != (0.0, 0.0, 0.0) or rot != _IDENTITY:
                raise ValueError(f"site {site_name} is named like its body but offset from it")
            continue
        if site_name == skip_site:
            continue
        _urdf_fixed(robot, name, site_name, pos, rot)
        _sub(robot, "link", name=site_name)
    for child in body.findall("body"):
        child_name = child.get("name", "")
        hinges = child.findall("joint")
        if not hinges:
            _urdf_fixed(robot, name, child_name, _vec(child.get("pos")), _IDENTITY)
        else:
            (hinge,) = hinges
            if set(hinge.attrib) != {"name", "class", "axis", "range"}:
                raise ValueError(f"joint {hinge.get('name')}: unsupported {hinge.attrib}")
            jname, cls = hinge.get("name", ""), hinge.get("class", "")
            jc = JOINT_CLASSES[cls]
            lower, upper = (float(t) for t in hinge.get("range", "").split())
            joint = _sub(robot, "joint", name=jname, type="revolute")
            _origin(joint, _vec(child.get("pos")))
            _sub(joint, "parent", link=name)
            _sub(joint, "child", link=child_name)
            _sub(joint, "axis", xyz=_v(_vec(hinge.get("axis"))))
            _sub(
                joint,
                "limit",
                lower=_num(lower),
                upper=_num(upper),
                effort=_num(jc.force_nm),
                velocity=_num(jc.velocity_rad_s),
            )
            _sub(joint, "dynamics", damping=_num(jc.damping))
            if jname in ctx.mimic:
                source, multiplier, offset = ctx.mimic[jname]
                _sub(joint, "mimic", joint=source, multiplier=_num(multiplier), offset=_num(offset))
        _urdf_link(robot, child, ctx, materials)


def _urdf_context(mjcf: ET.Element) -> _UrdfContext:
    mimic = {}
    for eq in mjcf.iterfind("equality/joint"):
        c = tuple(float(t) for t in eq.get("polycoef", "").split())
        if any(c[2:]):
            raise ValueError(f"{eq.get('name')}: only linear couplings map to <mimic>")
        mimic[eq.get("joint1", "")] = (eq.get("joint2", ""), c[1], c[0])
    return _UrdfContext(mimic=mimic)


def _urdf_document(
    mjcf: ET.Element,
    name: str,
    filename: str,
    build: Callable[[ET.Element, set[str]], None],
) -> str:
    """A URDF ``<robot>`` filled by ``build(robot, materials used)``, materials first."""
    robot = ET.Element("robot", name=name)
    materials: set[str] = set()
    build(robot, materials)
    rgba = {m.get("name"): m.get("rgba", "") for m in mjcf.iterfind("asset/material")}
    for i, mat in enumerate(sorted(materials)):
        el = ET.Element("material", name=mat)
        _sub(el, "color", rgba=rgba[mat])
        robot.insert(i, el)
    ET.indent(robot, space="  ")
    body = ET.tostring(robot, encoding="unicode")
    header = _URDF_HEADER.format(name=filename)
    return f'<?xml version="1.0"?>\n<!-- {header} -->\n{body}\n'


def _find_body(mjcf: ET.Element, name: str) -> ET.Element:
    for body in mjcf.iter("body"):
        if body.get("name") == name:
            return body
    raise KeyError(name)


def _urdf_robot(mjcf: ET.Element) -> str:
    """The whole robot, root link ``torso`` (the world is left out: the torso is welded)."""
    ctx = _urdf_context(mjcf)
    torso = _find_body(mjcf, "torso")
    return _urdf_document(
        mjcf,
        "dexhumanoid",
        "dexhumanoid.urdf",
        lambda robot, materials: _urdf_link(robot, torso, ctx, materials),
    )


def _urdf_hand(mjcf: ET.Element, side: str) -> str:
    """One hand, rooted at the ``{side}_wrist`` site frame: the hand body hangs from it by the
    inverse of the site's placement in that body; the wrist joints are left out."""
    ctx = _urdf_context(mjcf)
    hand = _find_body(mjcf, f"{side}_hand")
    wrist = f"{side}_wrist"
    (site,) = (s for s in hand.findall("site") if s.get("name") == wrist)
    rot = _rot_xyaxes(site.get("xyaxes", ""))
    inv = _transpose(rot)
    hand_in_wrist = _mul(-1.0, _mat_vec(inv, _vec(site.get("pos"))))

    def build(robot: ET.Element, materials: set[str]) -> None:
        _sub(robot, "link", name=wrist)
        _urdf_fixed(robot, wrist, hand.get("name", ""), hand_in_wrist, inv)
        _urdf_link(robot, hand, ctx, materials, skip_site=wrist)

    return _urdf_document(mjcf, f"dexhumanoid_{side}_hand", f"hands/{side}_hand.urdf", build)


def _serialize(root: ET.Element, header: str) -> str:
    ET.indent(root, space="  ")
    body = ET.tostring(root, encoding="unicode")
    return f"<!-- {header} -->\n{body}\n"


def render_files() -> dict[str, str]:
    """Path relative to this directory -> text of every generated file."""
    robot, col = _robot()
    files = {
        "dexhumanoid.xml": _serialize(
            robot, "dexhumanoid.xml: generated by robots/dexhumanoid/generate.py; do not edit."
        ),
        "scene.xml": _scene(col),
        "dexhumanoid.urdf": _urdf_robot(robot),
    }
    for side in SIDES:
        files[f"hands/{side}_hand.urdf"] = _urdf_hand(robot, side)
    return files


def main() -> None:
    for name, text in render_files().items():
        path = OUT_DIR / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
