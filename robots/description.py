"""Robot description configs (TOML): which model file, which joints are arms and hands, which
frames are wrists and fingertips, and limit overrides. A new robot is a new config, not new code.

Parsing is strict: an unknown key, a wrong type or a joint the model does not have is a
``ConfigError`` that names the key and lists what is allowed.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from teleop.errors import ConfigError
from teleop.tomlcfg import NumberRange, get_names, load_toml
from teleop.tomlcfg import check_keys as _check_keys
from teleop.tomlcfg import get as _get
from teleop.types import SIDES, Side

__all__ = [
    "SideDescription",
    "RobotDescription",
    "load_description",
    "parse_description",
    "bundled_description_path",
    "GROUPS",
]

#: Command vector layout: the joints of these groups, concatenated in this order.
GROUPS: tuple[str, ...] = ("left_arm", "left_hand", "right_arm", "right_hand")

_ROBOTS_DIR = Path(__file__).resolve().parent


def bundled_description_path(name: str = "dexhumanoid") -> Path:
    """Path of a robot description shipped in ``robots/<name>/<name>.toml``."""
    path = _ROBOTS_DIR / name / f"{name}.toml"
    if not path.is_file():
        shipped = sorted(p.parent.name for p in _ROBOTS_DIR.glob("*/*.toml") if p.stem == p.parent.name)
        raise ConfigError(f"no bundled robot named {name!r}; bundled robots: {shipped}")
    return path


@dataclass(frozen=True)
class SideDescription:
    """One arm and its hand."""

    arm_joints: tuple[str, ...]
    hand_joints: tuple[str, ...]
    wrist_frame: str
    fingertip_frames: tuple[str, ...] = ()
    camera: str | None = None


@dataclass(frozen=True)
class RobotDescription:
    """A parsed robot description. Joint and frame names are checked against the model later,
    when a simulator or kinematics compiler loads it (see ``robots.mujoco_sim.model``)."""

    name: str
    model_path: Path
    base_frame: str
    sides: dict[Side, SideDescription]
    cameras: tuple[str, ...] = ()
    velocity_rad_s: float = 3.0
    velocity_overrides: dict[str, float] = field(default_factory=dict)
    position_overrides: dict[str, tuple[float, float]] = field(default_factory=dict)
    actuator_kp: float = 100.0
    actuator_kv: float = 5.0
    retarget_path: Path | None = None  # retargeting config (retarget/config.py)
    objects_path: Path | None = None  # marked objects (robots/objects/config.py): markers drawn in the sim
    source: Path | None = None
    composition: Any = None  # robots.compose.Composition when the model is composed from mounts

    @property
    def groups(self) -> dict[str, tuple[str, ...]]:
        """Group name -> joint names, in command-vector order (see ``GROUPS``)."""
        out: dict[str, tuple[str, ...]] = {}
        for side in SIDES:
            out[f"{side}_arm"] = self.sides[side].arm_joints
            out[f"{side}_hand"] = self.sides[side].hand_joints
        return out

    @property
    def joint_names(self) -> tuple[str, ...]:
        """Every commanded joint, in command-vector order."""
        return tuple(j for g in GROUPS for j in self.groups[g])

    @property
    def fingertip_frames(self) -> tuple[str, ...]:
        return tuple(f for side in SIDES for f in self.sides[side].fingertip_frames)

    def velocity_limit(self, joint: str) -> float:
        """Velocity limit in [rad/s] (or [m/s] for prismatic joints); first matching glob wins."""
        for pattern, value in self.velocity_overrides.items():
            if fnmatch.fnmatchcase(joint, pattern):
                return value
        return self.velocity_rad_s


_TOP_KEYS = {"name", "model", "scene", "mount", "home", "base_frame", "left", "right", "cameras", "limits", "actuators",
             "retarget", "objects"}
_SIDE_KEYS = {"arm_joints", "hand_joints", "wrist_frame", "fingertip_frames", "camera"}
_LIMIT_KEYS = {"velocity_rad_s", "velocity_overrides", "position_overrides"}
_ACT_KEYS = {"kp", "kv"}

#: Allowed ranges (NaN and inf never pass). Velocities [rad/s] ([m/s] for slide joints): 50 rad/s is
#: 0.1 rad per tick at 500 Hz, far above any servo here. Position bounds [rad] ([m]): +-10 covers
#: a continuous joint given a range of more than a turn each way.
VELOCITY_RANGE = NumberRange(0, 50, low_open=True)
POSITION_RANGE = NumberRange(-10, 10)
KP_RANGE = NumberRange(0, 1e5, low_open=True)  # position gain of added servos
KV_RANGE = NumberRange(0, 1e4)  # their damping gain


def load_description(path: str | Path) -> RobotDescription:
    """Read and strictly parse a robot description TOML file."""
    path = Path(path)
    raw = load_toml(path, "robot config")
    return parse_description(raw, source=path)


def parse_description(raw: dict[str, Any], source: Path | None = None) -> RobotDescription:
    where = str(source) if source else "<robot config>"
    _check_keys(raw, _TOP_KEYS, where, "")
    name = _get(raw, "name", str, where)
    base = source.parent if source else Path.cwd()
    base_frame = _get(raw, "base_frame", str, where)
    composition = None
    if "mount" in raw:
        from robots.mount import parse_composition

        composition = parse_composition(raw, name, base_frame, base, where)
        model_path = None  # composed below, once the joints are checked
    else:
        if "scene" in raw or "home" in raw:
            raise ConfigError(f"{where}: keys 'scene' and 'home' go with [mount.left]/[mount.right]; "
                              "a single model file ('model') carries its own scene and keyframes")
        model = _get(raw, "model", str, where)
        model_path = (base / model).resolve()
        if model_path.suffix.lower() not in (".xml", ".urdf", ".mjcf"):
            raise ConfigError(f"{where}: key 'model' = {model!r} must be an MJCF (.xml) or URDF (.urdf) file")
        if not model_path.is_file():
            raise ConfigError(f"{where}: key 'model' points to {model_path}, which does not exist")

    sides: dict[Side, SideDescription] = {}
    for side in SIDES:
        table = _get(raw, side, dict, where)
        _check_keys(table, _SIDE_KEYS, where, f"{side}.")
        arm = get_names(table, "arm_joints", where, f"{side}.")
        if not arm:
            raise ConfigError(f"{where}: key '{side}.arm_joints' is empty; list the arm joints base to wrist")
        sides[side] = SideDescription(
            arm_joints=arm,
            hand_joints=get_names(table, "hand_joints", where, f"{side}.", required=False),
            wrist_frame=_get(table, "wrist_frame", str, where, prefix=f"{side}."),
            fingertip_frames=get_names(table, "fingertip_frames", where, f"{side}.", required=False),
            camera=_get(table, "camera", str, where, prefix=f"{side}.", required=False),
        )

    all_joints = [j for s in SIDES for j in sides[s].arm_joints + sides[s].hand_joints]
    dupes = sorted({j for j in all_joints if all_joints.count(j) > 1})
    if dupes:
        raise ConfigError(f"{where}: joints listed more than once across arms and hands: {dupes}")
    _check_mirrored(sides, where)

    cameras = raw.get("cameras", [])
    if not isinstance(cameras, list) or not all(isinstance(c, str) for c in cameras):
        raise ConfigError(f"{where}: key 'cameras' must be a list of camera names, got {cameras!r}")

    limits = _get(raw, "limits", dict, where, required=False) or {}
    _check_keys(limits, _LIMIT_KEYS, where, "limits.")
    vel = _get(limits, "velocity_rad_s", (int, float), where, prefix="limits.", required=False)
    vel = 3.0 if vel is None else VELOCITY_RANGE.check(vel, "limits.velocity_rad_s", where)
    vel_over: dict[str, float] = {}
    for pattern, value in (_get(limits, "velocity_overrides", dict, where, prefix="limits.", required=False) or {}).items():
        vel_over[pattern] = VELOCITY_RANGE.check(value, f"limits.velocity_overrides.{pattern}", where)
        if not any(fnmatch.fnmatchcase(j, pattern) for j in all_joints):
            raise ConfigError(f"{where}: key 'limits.velocity_overrides.{pattern}' matches no commanded joint")
    pos_over: dict[str, tuple[float, float]] = {}
    for joint, value in (_get(limits, "position_overrides", dict, where, prefix="limits.", required=False) or {}).items():
        key = f"limits.position_overrides.{joint}"
        if not isinstance(value, list) or len(value) != 2:
            raise ConfigError(f"{where}: key '{key}' must be [low, high] with low < high, got {value!r}")
        low = POSITION_RANGE.check(value[0], f"{key}[0]", where)
        high = POSITION_RANGE.check(value[1], f"{key}[1]", where)
        if not low < high:
            raise ConfigError(f"{where}: key '{key}' must be [low, high] with low < high, got {value!r}")
        if joint not in all_joints:
            raise ConfigError(f"{where}: key '{key}' is not a commanded joint")
        pos_over[joint] = (low, high)

    act = _get(raw, "actuators", dict, where, required=False) or {}
    _check_keys(act, _ACT_KEYS, where, "actuators.")
    kp = _get(act, "kp", (int, float), where, prefix="actuators.", required=False)
    kv = _get(act, "kv", (int, float), where, prefix="actuators.", required=False)
    kp = 100.0 if kp is None else KP_RANGE.check(kp, "actuators.kp", where)
    kv = 5.0 if kv is None else KV_RANGE.check(kv, "actuators.kv", where)

    retarget_path = None
    if (rel := _get(raw, "retarget", str, where, required=False)) is not None:
        retarget_path = (base / rel).resolve()
        if not retarget_path.is_file():
            raise ConfigError(f"{where}: key 'retarget' points to {retarget_path}, which does not exist")
    objects_path = None
    if (rel := _get(raw, "objects", str, where, required=False)) is not None:
        objects_path = (base / rel).resolve()
        if not objects_path.is_file():
            raise ConfigError(f"{where}: key 'objects' points to {objects_path}, which does not exist")

    if composition is not None:
        from robots.compose import compose

        model_path = compose(composition)
    return RobotDescription(
        name=name,
        model_path=model_path,
        base_frame=base_frame,
        sides=sides,
        cameras=tuple(cameras),
        velocity_rad_s=vel,
        velocity_overrides=vel_over,
        position_overrides=pos_over,
        actuator_kp=kp,
        actuator_kv=kv,
        retarget_path=retarget_path,
        objects_path=objects_path,
        source=source,
        composition=composition,
    )


def _check_mirrored(sides: dict[Side, SideDescription], where: str) -> None:
    """Both arms have as many joints, and both hands (when both have one): one retargeting config
    serves both sides and the operator's two hands drive mirrored chains."""
    left, right = sides["left"], sides["right"]
    if len(left.arm_joints) != len(right.arm_joints):
        raise ConfigError(f"{where}: left.arm_joints lists {len(left.arm_joints)} joints and right.arm_joints "
                          f"{len(right.arm_joints)}; a bimanual robot here is a mirrored pair")
    if left.hand_joints and right.hand_joints and len(left.hand_joints) != len(right.hand_joints):
        raise ConfigError(f"{where}: left.hand_joints lists {len(left.hand_joints)} joints and right.hand_joints "
                          f"{len(right.hand_joints)}; a bimanual robot here is a mirrored pair")
