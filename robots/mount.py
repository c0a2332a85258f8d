"""The description keys of a composed robot (``scene``, ``[mount]``, ``[mount.left]``,
``[mount.right]``, ``[home]``), parsed strictly into a ``robots.compose.Composition``.

    scene = "scene.xml"                 # optional MJCF: floor, table, objects, cameras, lights
    [mount]
    base_pos = [0.0, 0.0, 0.75]         # base_frame's body in the world, when the scene has none
    armature = { "*_q?" = 0.002 }       # rotor inertia [kg m^2] per joint glob (first match wins)
    [mount.left]
    model = "${DEX_URDF}/robots/assembly/xarm7_ability/xarm7_ability_left_hand.urdf"
    prefix = "left_"                    # prepended to every name of the model
    pos = [0.0, 0.3, 0.0]               # the model's root in base_frame [m]
    rpy_deg = [0.0, 0.0, 0.0]           # ... and its orientation (extrinsic x, y, z) [deg]
    gravity_compensation = true
    sites = { wrist = { body = "base", pos = [0, 0, 0], rpy_deg = [0, -90, -90] } }  # frames it lacks
    [home]
    left_joint4 = 1.2                   # the "home" keyframe [rad] (unlisted joints: 0)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from robots.compose import Composition, Mount, Site, expand_path
from teleop.errors import ConfigError
from teleop.tomlcfg import NumberRange, check_keys, check_number, get
from teleop.types import SIDES

__all__ = ["parse_composition", "rpy_deg_to_quat", "vec3"]

_MOUNT_KEYS = {"base_pos", "armature", "left", "right"}
_SIDE_KEYS = {"model", "prefix", "pos", "rpy_deg", "gravity_compensation", "sites"}
_SITE_KEYS = {"body", "pos", "rpy_deg"}
#: Mount offsets within 10 m of the base, any orientation; home values as position_overrides.
_POS_M = 10.0
_ARMATURE = NumberRange(0, 10)
_HOME = NumberRange(-10, 10)


def rpy_deg_to_quat(rpy_deg: tuple[float, float, float]) -> tuple[float, float, float, float]:
    """(w, x, y, z) of roll-pitch-yaw in degrees, extrinsic x, y, z (R = Rz Ry Rx)."""
    r, p, y = (np.deg2rad(a) / 2 for a in rpy_deg)
    cr, sr, cp, sp, cy, sy = np.cos(r), np.sin(r), np.cos(p), np.sin(p), np.cos(y), np.sin(y)
    q = (cr * cp * cy + sr * sp * sy, sr * cp * cy - cr * sp * sy, cr * sp * cy + sr * cp * sy,
         cr * cp * sy - sr * sp * cy)
    return tuple(float(v) for v in q)  # type: ignore[return-value]


def vec3(t: dict[str, Any], key: str, where: str, prefix: str, limit: float) -> tuple[float, float, float]:
    """``t[key]``: 3 finite numbers within +-``limit`` (default 0, 0, 0 when absent)."""
    value = get(t, key, list, where, prefix, required=False)
    if value is None:
        return (0.0, 0.0, 0.0)
    if len(value) != 3:
        raise ConfigError(f"{where}: key '{prefix}{key}' must list 3 numbers, got {value!r}")
    x, y, z = (check_number(v, f"{prefix}{key}[{i}]", where, -limit, limit) for i, v in enumerate(value))
    return (x, y, z)


def _mount(t: dict[str, Any], side: str, base: Path, where: str) -> Mount:
    p = f"mount.{side}."
    check_keys(t, _SIDE_KEYS, where, p)
    model = expand_path(get(t, "model", str, where, p), base, where, f"{p}model")
    if model.suffix.lower() not in (".urdf", ".xml", ".mjcf"):
        raise ConfigError(f"{where}: key '{p}model' = {str(model)!r} must be a URDF (.urdf) or MJCF (.xml) file")
    if not model.is_file():
        raise ConfigError(f"{where}: key '{p}model' points to {model}, which does not exist")
    prefix = get(t, "prefix", str, where, p, required=False)
    gravcomp = get(t, "gravity_compensation", bool, where, p, required=False)
    sites = []
    for name, st in (get(t, "sites", dict, where, p, required=False) or {}).items():
        sp = f"{p}sites.{name}."
        if not isinstance(st, dict):
            raise ConfigError(f"{where}: key '{p}sites.{name}' must be a table "
                              "{ body = ..., pos = [...], rpy_deg = [...] }")
        check_keys(st, _SITE_KEYS, where, sp)
        sites.append(Site(name=name, body=get(st, "body", str, where, sp), pos=vec3(st, "pos", where, sp, 1.0),
                          quat=rpy_deg_to_quat(vec3(st, "rpy_deg", where, sp, 360.0))))
    return Mount(side=side, model=model, prefix=f"{side}_" if prefix is None else prefix,
                 pos=vec3(t, "pos", where, p, _POS_M),
                 quat=rpy_deg_to_quat(vec3(t, "rpy_deg", where, p, 360.0)),
                 gravity_compensation=True if gravcomp is None else gravcomp, sites=tuple(sites))


def parse_composition(raw: dict[str, Any], name: str, base_frame: str, base: Path, where: str) -> Composition:
    """The composition a description states (it has a ``[mount]`` table)."""
    if "model" in raw:
        raise ConfigError(f"{where}: give either 'model' (one model file) or [mount.left] and [mount.right], not both")
    table = get(raw, "mount", dict, where)
    check_keys(table, _MOUNT_KEYS, where, "mount.")
    mounts = []
    for side in SIDES:
        if side not in table:
            raise ConfigError(f"{where}: missing table [mount.{side}]: "
                              "a composed robot mounts a left and a right model")
        mounts.append(_mount(get(table, side, dict, where, "mount."), side, base, where))
    if mounts[0].prefix == mounts[1].prefix:
        raise ConfigError(f"{where}: mount.left.prefix and mount.right.prefix are both {mounts[0].prefix!r}; "
                          "the two models' names would collide")
    armature = get(table, "armature", dict, where, "mount.", required=False) or {}
    scene = get(raw, "scene", str, where, required=False)
    home = get(raw, "home", dict, where, required=False) or {}
    return Composition(
        name=name, base_frame=base_frame, where=where,
        scene=expand_path(scene, base, where, "scene") if scene is not None else None,
        base_pos=vec3(table, "base_pos", where, "mount.", _POS_M),
        mounts=tuple(mounts),
        home=tuple((j, _HOME.check(v, f"home.{j}", where)) for j, v in home.items()),
        armature=tuple((g, _ARMATURE.check(v, f"mount.armature.{g}", where)) for g, v in armature.items()),
    )
