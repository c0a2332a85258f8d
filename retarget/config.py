"""Retargeting config (TOML), per robot. Hand keys follow dex-retargeting's YAML so a lab ports
one of its configs by copying the values (docs/retargeting.md has the mapping). ``{side}`` in any
string is replaced by ``left`` or ``right``; ``[hand.left]``/``[hand.right]`` (and the same for
``[arm]``) override single keys per side.

    [hand]   type, urdf_path, wrist_link_name, target_joint_names, target_origin_link_names,
             target_task_link_names, target_link_human_indices, finger_tip_link_names,
             scaling_factor, normal_delta, low_pass_alpha, project_dist, escape_dist, eta1,
             pinch_weight, weights, max_iters, cold_iters, max_step_rad  (+ huber_delta, has_joint_limits, add_dummy_free_joint
             accepted for compatibility, see below)
    [arm]    ee_frame, base_frame, posture, rot_weight_m, damping, posture_gain, max_step_rad, max_iters,
             cold_iters
    [workspace]  scale, rotation_rpy_deg, offset_m
    [filter.keypoints], [filter.wrist_position], [filter.wrist_orientation]  One-Euro parameters
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from retarget.filters import FilterConfig
from retarget.hand import VectorSpec
from robots.description import RobotDescription
from teleop.errors import ConfigError
from teleop.tomlcfg import check_keys, check_number, get, get_float, get_int, get_names, load_toml
from teleop.types import SIDES, Side

__all__ = ["HandConfig", "ArmConfig", "WorkspaceConfig", "RetargetConfig", "load_retarget_config", "TIP_KEYPOINTS"]

logger = logging.getLogger(__name__)

#: MediaPipe fingertip keypoints, thumb to pinky.
TIP_KEYPOINTS = (4, 8, 12, 16, 20)

_HAND_KEYS = {
    "type", "urdf_path", "wrist_link_name", "target_joint_names", "target_origin_link_names",
    "target_task_link_names", "target_link_human_indices", "finger_tip_link_names", "scaling_factor",
    "normal_delta", "low_pass_alpha", "project_dist", "escape_dist", "eta1", "pinch_weight", "weights",
    "max_iters", "cold_iters", "max_step_rad", "huber_delta", "has_joint_limits", "add_dummy_free_joint", "left", "right",
}
_ARM_KEYS = {"ee_frame", "base_frame", "posture", "rot_weight_m", "damping", "posture_gain", "max_step_rad",
             "max_iters", "cold_iters", "left", "right"}
_WS_KEYS = {"scale", "rotation_rpy_deg", "offset_m"}
_FILTER_KEYS = {"keypoints", "wrist_position", "wrist_orientation"}
_TOP_KEYS = {"hand", "arm", "workspace", "filter"}


@dataclass(frozen=True, kw_only=True)
class HandConfig:
    side: Side
    model_path: Path
    wrist_frame: str
    joints: tuple[str, ...]
    vectors: VectorSpec
    scale: float = 1.0
    smooth: float = 4e-3
    low_pass_alpha: float = 1.0
    pinch_on_m: float = 0.03
    pinch_off_m: float = 0.05
    pinch_target_m: float = 1e-4
    pinch_weight: float = 200.0
    max_iters: int = 3  # per tick: the warm start carries the optimisation across ticks
    cold_iters: int = 50  # first solve after a reset
    max_step_rad: float = 0.1  # per solve (trust region)

    @property
    def frames(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.vectors.origin_frames + self.vectors.task_frames))


@dataclass(frozen=True, kw_only=True)
class ArmConfig:
    side: Side
    model_path: Path
    base_frame: str
    ee_frame: str
    joints: tuple[str, ...]
    posture: tuple[float, ...] | None = None
    rot_weight_m: float = 0.2
    damping: float = 1e-2
    posture_gain: float = 0.05
    max_step_rad: float = 0.3
    max_iters: int = 8  # per tick (warm-started)
    cold_iters: int = 100  # after a reset


@dataclass(frozen=True, kw_only=True)
class WorkspaceConfig:
    scale: float = 1.0
    rotation_rpy_deg: tuple[float, float, float] = (0.0, 0.0, 0.0)
    offset_m: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @property
    def rotation(self) -> np.ndarray:
        """R_robot_tracker from roll-pitch-yaw (extrinsic x, y, z) in degrees."""
        r, p, y = np.deg2rad(self.rotation_rpy_deg)
        rx = np.array([[1, 0, 0], [0, np.cos(r), -np.sin(r)], [0, np.sin(r), np.cos(r)]])
        ry = np.array([[np.cos(p), 0, np.sin(p)], [0, 1, 0], [-np.sin(p), 0, np.cos(p)]])
        rz = np.array([[np.cos(y), -np.sin(y), 0], [np.sin(y), np.cos(y), 0], [0, 0, 1]])
        return rz @ ry @ rx


@dataclass(frozen=True, kw_only=True)
class RetargetConfig:
    hands: dict[Side, HandConfig]
    arms: dict[Side, ArmConfig]
    workspace: WorkspaceConfig = field(default_factory=WorkspaceConfig)
    keypoint_filter: FilterConfig = field(default_factory=FilterConfig)
    wrist_position_filter: FilterConfig = field(default_factory=FilterConfig)
    wrist_orientation_filter: FilterConfig = field(default_factory=FilterConfig)
    source: Path | None = None


def _sub(value: Any, side: Side) -> Any:
    if isinstance(value, str):
        return value.replace("{side}", side)
    if isinstance(value, list):
        return [_sub(v, side) for v in value]
    return value


def _numbers(t: dict[str, Any], key: str, where: str, prefix: str, n: int | None = None,
             low: float | None = None, high: float | None = None, integer: bool = False) -> tuple[Any, ...] | None:
    """A list of ``n`` (any number when None) finite numbers in [low, high]; None when the key is absent.
    Errors name the entry (``hand.weights[3]``)."""
    value = get(t, key, list, where, prefix, required=False)
    if value is None:
        return None
    if n is not None and len(value) != n:
        raise ConfigError(f"{where}: key '{prefix}{key}' must list {n} numbers, got {len(value)}: {value!r}")
    return tuple(check_number(v, f"{prefix}{key}[{i}]", where, low, high, integer=integer) for i, v in enumerate(value))


def _per_side(table: dict[str, Any], side: Side, where: str, prefix: str) -> dict[str, Any]:
    """Common keys with ``{side}`` substituted, then the ``[<prefix>.<side>]`` overrides."""
    merged = {k: _sub(v, side) for k, v in table.items() if k not in SIDES}
    override = get(table, side, dict, where, prefix, required=False) or {}
    merged.update({k: _sub(v, side) for k, v in override.items()})
    return merged


def _hand(raw: dict[str, Any], side: Side, desc: RobotDescription, base: Path, where: str) -> HandConfig:
    t = _per_side(raw, side, where, "hand.")
    p = f"hand.{side}." if side in raw else "hand."
    check_keys(t, _HAND_KEYS - {"left", "right"}, where, p)
    kind = str(t.get("type", "vector")).lower()
    if kind not in ("vector", "dexpilot"):
        raise ConfigError(f"{where}: key '{p}type' = {kind!r}; supported: 'vector', 'dexpilot' (position retargeting is not)")
    if t.get("has_joint_limits", True) is not True:
        raise ConfigError(f"{where}: key '{p}has_joint_limits' = false is not supported: joint limits are always respected")
    if t.get("add_dummy_free_joint", False) is not False:
        raise ConfigError(f"{where}: key '{p}add_dummy_free_joint': the wrist is driven by arm IK here; remove it")
    if "huber_delta" in t:
        logger.info("%s: huber_delta is accepted for dex-retargeting compatibility and ignored (least squares)", where)
    model = (base / t["urdf_path"]).resolve() if "urdf_path" in t else desc.model_path
    if not model.is_file():
        raise ConfigError(f"{where}: key '{p}urdf_path' points to {model}, which does not exist")
    wrist = get(t, "wrist_link_name", str, where, p, required=False) or desc.sides[side].wrist_frame
    joints = get_names(t, "target_joint_names", where, p, required=False) or desc.sides[side].hand_joints
    weights = _numbers(t, "weights", where, p, low=0.0, high=1e6) or ()
    if kind == "vector":
        origins = get_names(t, "target_origin_link_names", where, p)
        tasks = get_names(t, "target_task_link_names", where, p)
        idx = get(t, "target_link_human_indices", list, where, p)
        if len(idx) != 2 or not all(isinstance(row, list) and len(row) == len(origins) for row in idx):
            raise ConfigError(f"{where}: key '{p}target_link_human_indices' must be 2 rows of {len(origins)} ints (origin row, task row)")
        rows = [tuple(check_number(v, f"{p}target_link_human_indices[{r}][{i}]", where, 0, 20, integer=True)
                      for i, v in enumerate(row)) for r, row in enumerate(idx)]  # MediaPipe keypoints 0..20
        vectors = VectorSpec(origin_frames=origins, task_frames=tasks, human_origin=rows[0],
                             human_task=rows[1], weights=weights)
    else:  # DexPilot: wrist -> every tip, thumb -> every finger (pinch), finger -> finger
        tips = get_names(t, "finger_tip_link_names", where, p)
        if not 2 <= len(tips) <= 5:
            raise ConfigError(f"{where}: key '{p}finger_tip_link_names' needs 2..5 tips, thumb first")
        hk = TIP_KEYPOINTS[: len(tips)]
        o, tk, ho, ht, pinch, w = [], [], [], [], [], []
        for i in range(len(tips)):
            o.append(wrist), tk.append(tips[i]), ho.append(0), ht.append(hk[i]), pinch.append(False), w.append(1.0)
        for i in range(len(tips)):
            for j in range(i + 1, len(tips)):
                o.append(tips[i]), tk.append(tips[j]), ho.append(hk[i]), ht.append(hk[j])
                pinch.append(i == 0), w.append(1.0 if i == 0 else 0.2)
        vectors = VectorSpec(origin_frames=tuple(o), task_frames=tuple(tk), human_origin=tuple(ho), human_task=tuple(ht),
                             weights=weights or tuple(w), pinch=tuple(pinch))
    on = get_float(t, "project_dist", 0.03, where, p, low=0.0, low_open=True)
    return HandConfig(
        side=side, model_path=model, wrist_frame=wrist, joints=joints, vectors=vectors,
        scale=get_float(t, "scaling_factor", 1.0, where, p, low=0.0, low_open=True),
        smooth=get_float(t, "normal_delta", 4e-3, where, p, low=0.0),
        low_pass_alpha=get_float(t, "low_pass_alpha", 1.0, where, p, low=0.0, high=1.0, low_open=True),
        pinch_on_m=on,
        pinch_off_m=get_float(t, "escape_dist", max(on, 0.05), where, p, low=on),
        pinch_target_m=get_float(t, "eta1", 1e-4, where, p, low=0.0),
        pinch_weight=get_float(t, "pinch_weight", 200.0, where, p, low=0.0),
        max_iters=get_int(t, "max_iters", 3, where, p, low=1, high=1000),
        cold_iters=get_int(t, "cold_iters", 50, where, p, low=1, high=10000),
        max_step_rad=get_float(t, "max_step_rad", 0.1, where, p, low=0.0, low_open=True),
    )


def _arm(raw: dict[str, Any], side: Side, desc: RobotDescription, where: str) -> ArmConfig:
    t = _per_side(raw, side, where, "arm.")
    p = f"arm.{side}." if side in raw else "arm."
    check_keys(t, _ARM_KEYS - {"left", "right"}, where, p)
    joints = desc.sides[side].arm_joints
    raw_posture = get(t, "posture", list, where, p, required=False)
    if raw_posture is not None and len(raw_posture) != len(joints):
        raise ConfigError(f"{where}: key '{p}posture' must list {len(joints)} numbers (rad), one per arm joint")
    posture = _numbers(t, "posture", where, p, len(joints), low=-10.0, high=10.0)  # rad, as position_overrides
    return ArmConfig(
        side=side, model_path=desc.model_path,
        base_frame=get(t, "base_frame", str, where, p, required=False) or desc.base_frame,
        ee_frame=get(t, "ee_frame", str, where, p, required=False) or desc.sides[side].wrist_frame,
        joints=joints, posture=posture,
        rot_weight_m=get_float(t, "rot_weight_m", 0.2, where, p, low=0.0),
        damping=get_float(t, "damping", 1e-2, where, p, low=0.0, low_open=True),
        posture_gain=get_float(t, "posture_gain", 0.05, where, p, low=0.0, high=1.0),
        max_step_rad=get_float(t, "max_step_rad", 0.3, where, p, low=0.0, low_open=True),
        max_iters=get_int(t, "max_iters", 8, where, p, low=1, high=10000),
        cold_iters=get_int(t, "cold_iters", 100, where, p, low=1, high=10000),
    )


def _vec3(t: dict[str, Any], key: str, where: str, default: tuple[float, float, float],
          limit: float) -> tuple[float, float, float]:
    value = _numbers(t, key, where, "workspace.", 3, low=-limit, high=limit)
    return default if value is None else (value[0], value[1], value[2])


def load_retarget_config(desc: RobotDescription, path: str | Path | None = None) -> RetargetConfig:
    """The retargeting config of ``desc`` (its ``retarget`` key) or the file at ``path``."""
    path = Path(path) if path else desc.retarget_path
    if path is None:
        raise ConfigError(f"robot {desc.name!r} names no retargeting config; add `retarget = \"retarget.toml\"` to its TOML")
    raw = load_toml(path, "retargeting config")
    where = str(path)
    check_keys(raw, _TOP_KEYS, where)
    hand_raw = get(raw, "hand", dict, where)
    arm_raw = get(raw, "arm", dict, where, required=False) or {}
    ws = get(raw, "workspace", dict, where, required=False) or {}
    check_keys(ws, _WS_KEYS, where, "workspace.")
    filt = get(raw, "filter", dict, where, required=False) or {}
    check_keys(filt, _FILTER_KEYS, where, "filter.")

    def fcfg(name: str) -> FilterConfig:
        table = get(filt, name, dict, where, "filter.", required=False) or {}
        try:
            return FilterConfig.from_dict(table)
        except ConfigError as exc:
            raise ConfigError(f"{where}: [filter.{name}]: {exc}") from None

    return RetargetConfig(
        hands={s: _hand(hand_raw, s, desc, path.parent, where) for s in SIDES if desc.sides[s].hand_joints},
        arms={s: _arm(arm_raw, s, desc, where) for s in SIDES},
        workspace=WorkspaceConfig(
            scale=get_float(ws, "scale", 1.0, where, "workspace.", low=0.0, low_open=True),
            rotation_rpy_deg=_vec3(ws, "rotation_rpy_deg", where, (0.0, 0.0, 0.0), 360.0),
            offset_m=_vec3(ws, "offset_m", where, (0.0, 0.0, 0.0), 10.0),
        ),
        keypoint_filter=fcfg("keypoints"),
        wrist_position_filter=fcfg("wrist_position"),
        wrist_orientation_filter=fcfg("wrist_orientation"),
        source=path,
    )
