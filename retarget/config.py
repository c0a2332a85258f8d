"""Retargeting config (TOML), per robot (``load_retarget_config``) or for one hand without an
arm (``load_hand_config``). Hand keys follow dex-retargeting's YAML so a lab ports one of its
configs by copying the values (docs/retargeting.md has the mapping, key by key). ``{side}`` in
any string is replaced by ``left`` or ``right``; ``[hand.left]``/``[hand.right]`` (and the same
for ``[arm]``) override single keys per side; ``${VAR}`` in ``urdf_path`` is an environment
variable.

    [hand]   type, urdf_path, wrist_link_name, target_joint_names, target_origin_link_names,
             target_task_link_names, target_link_human_indices, finger_tip_link_names,
             scaling_factor, normal_delta, huber_delta, low_pass_alpha, project_dist, escape_dist, eta1,
             pinch_weight, weights, max_iters, cold_iters, frame_iters, max_step_rad, max_jump_rad,
             low_pass_lead_rad, initial_guess, initial_qpos,
             keypoints_to_wrist_link, side (hand-only configs)  (+ has_joint_limits, add_dummy_free_joint,
             ignore_mimic_joint: their dex-retargeting defaults only; target_link_names: refused)
    [arm]    ee_frame, base_frame, posture, rot_weight_m, damping, posture_gain, max_step_rad, max_iters,
             cold_iters
    [workspace]  scale, rotation_rpy_deg, offset_m
    [filter.keypoints], [filter.wrist_position], [filter.wrist_orientation]  One-Euro parameters; the
             keypoints are filtered only when [filter.keypoints] is present (``enabled = false`` turns
             it off again)
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from retarget.filters import FilterConfig
from retarget.kinematics import KinematicTree, urdf_outline
from retarget.vectors import VectorSpec
from robots.description import RobotDescription
from teleop.errors import ConfigError
from teleop.tomlcfg import check_keys, check_number, get, get_float, get_int, get_names, load_toml
from teleop.types import SIDES, Side

__all__ = ["HandConfig", "ArmConfig", "WorkspaceConfig", "RetargetConfig", "HandOnlyConfig", "load_retarget_config",
           "load_hand_config", "TIP_KEYPOINTS"]


#: MediaPipe fingertip keypoints, thumb to pinky.
TIP_KEYPOINTS = (4, 8, 12, 16, 20)

_HAND_KEYS = {
    "type", "urdf_path", "wrist_link_name", "target_joint_names", "target_origin_link_names",
    "target_task_link_names", "target_link_human_indices", "finger_tip_link_names", "scaling_factor",
    "normal_delta", "low_pass_alpha", "project_dist", "escape_dist", "eta1", "pinch_weight", "weights",
    "max_iters", "cold_iters", "frame_iters", "max_step_rad", "max_jump_rad", "low_pass_lead_rad", "huber_delta",
    "has_joint_limits", "add_dummy_free_joint", "left", "right",
    "ignore_mimic_joint", "target_link_names", "initial_guess", "initial_qpos", "keypoints_to_wrist_link", "side",
}
_ARM_KEYS = {"ee_frame", "base_frame", "posture", "rot_weight_m", "damping", "posture_gain", "max_step_rad",
             "max_iters", "cold_iters", "left", "right"}
_WS_KEYS = {"scale", "rotation_rpy_deg", "offset_m"}
_FILTER_KEYS = {"keypoints", "wrist_position", "wrist_orientation"}
#: Upper bound of every per-solve angle key [rad] (steps, trust radii, the low-pass lead): past a
#: full turn a cap caps nothing. Lengths [m] are bounded by a hand's size (pinch distances) or by
#: a robot hand ten times a human's (scaling_factor); weights by 1e3..1e6.
_MAX_RAD = 2 * 3.141592653589793
_TOP_KEYS = {"hand", "arm", "workspace", "filter"}
_INITIAL_GUESSES = ("zeros", "middle")
# dex-retargeting's DexPilot vectors (optimizer.py): link 0 is the wrist, 1.. the tips, thumb first
_DEXPILOT_LINKS = {
    4: ([2, 3, 4, 3, 4, 4, 0, 0, 0, 0], [1, 1, 1, 2, 2, 3, 1, 2, 3, 4]),
    5: ([2, 3, 4, 5, 3, 4, 5, 4, 5, 5, 0, 0, 0, 0, 0], [1, 1, 1, 1, 2, 2, 2, 3, 3, 4, 1, 2, 3, 4, 5]),
}


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
    frame_iters: int = 20  # cap per frame offline (iterations stop once converged)
    max_step_rad: float = 0.1  # trust radius per solve for a small error ...
    max_jump_rad: float = 0.6  # ... growing with the error up to this
    low_pass_lead_rad: float = 1.2  # the output low-pass takes in at most this lead per frame
    huber_delta: float | None = None  # [m]; None: least squares
    keypoint_rotation: tuple[tuple[float, float, float], ...] | None = None  # keypoints' wrist frame -> wrist link
    initial_guess: Literal["zeros", "middle"] = "zeros"
    initial_qpos: tuple[float, ...] | None = None  # rad, one per joint; overrides initial_guess
    source: Path | None = None

    @property
    def frames(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.vectors.origin_frames + self.vectors.task_frames))

    def initial_pose(self, tree: KinematicTree) -> npt.NDArray[np.float64]:
        """Where a reset starts the solver: ``initial_qpos`` (checked against ``tree``'s limits),
        else zeros clipped into the limits or the middle of the limits."""
        lower, upper = np.asarray(tree.lower), np.asarray(tree.upper)
        if self.initial_qpos is not None:
            q = np.array(self.initial_qpos, dtype=np.float64)
            for i, (v, lo, hi) in enumerate(zip(q, lower, upper, strict=True)):
                if not lo - 1e-9 <= v <= hi + 1e-9:
                    raise ConfigError(f"{self.source}: key 'hand.initial_qpos[{i}]' = {v:g} is outside the limits "
                                      f"[{lo:g}, {hi:g}] of joint {tree.joint_names[i]!r}")
            return np.clip(q, lower, upper)
        if self.initial_guess == "middle":
            return 0.5 * (lower + upper)
        return np.clip(np.zeros(len(lower)), lower, upper)


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
    keypoint_filter: FilterConfig | None = None  # None: no [filter.keypoints] (or enabled = false)
    wrist_position_filter: FilterConfig = field(default_factory=FilterConfig)
    wrist_orientation_filter: FilterConfig = field(default_factory=FilterConfig)
    source: Path | None = None


@dataclass(frozen=True, kw_only=True)
class HandOnlyConfig:
    """One hand without an arm (``teleop retarget --hand``): its ``[hand]`` and keypoint filter."""

    hand: HandConfig
    keypoint_filter: FilterConfig | None = None
    source: Path | None = None

    @property
    def side(self) -> Side:
        return self.hand.side


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


@dataclass(frozen=True)
class _HandDefaults:
    """What a robot description gives a ``[hand]`` table; None: take it from the hand URDF."""

    model: Path | None = None
    wrist: str | None = None
    joints: tuple[str, ...] | None = None
    urdf_override: Path | None = None  # --hand / urdf=: wins over urdf_path
    hand_only: bool = False


_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _model_path(t: dict[str, Any], p: str, where: str, base: Path, d: _HandDefaults) -> Path:
    if d.urdf_override is not None:
        model = d.urdf_override
    elif "urdf_path" in t:
        value = get(t, "urdf_path", str, where, p)
        for name in _ENV.findall(value):
            if name not in os.environ:
                raise ConfigError(f"{where}: key '{p}urdf_path' uses ${{{name}}}, which is not set; set it (e.g. to a "
                                  f"checkout of dexsuite/dex-urdf) or pass the hand URDF (teleop retarget --hand)")
        model = Path(_ENV.sub(lambda mt: os.environ[mt.group(1)], value)).expanduser()
        model = model if model.is_absolute() else base / model
    elif d.model is not None:
        model = d.model
    else:
        raise ConfigError(f"{where}: missing key '{p}urdf_path' (the hand URDF), and no --hand URDF was given")
    model = model.resolve()
    if not model.is_file():
        key = "the hand URDF" if d.urdf_override is not None else f"key '{p}urdf_path'"
        raise ConfigError(f"{where}: {key} points to {model}, which does not exist")
    return model


def _refuse_dex_only(t: dict[str, Any], kind: str, where: str, p: str, d: _HandDefaults) -> None:
    """dex-retargeting keys whose other values we do not implement: say what differs."""
    if kind == "position" or "target_link_names" in t:
        key = f"'{p}type' = 'position'" if kind == "position" else f"'{p}target_link_names'"
        raise ConfigError(f"{where}: key {key}: dex-retargeting's position retargeting (link positions, for a floating "
                          f"hand) is not supported; supported: 'vector', 'dexpilot' (target_origin_link_names + "
                          f"target_task_link_names, or finger_tip_link_names)")
    if kind not in ("vector", "dexpilot"):
        raise ConfigError(f"{where}: key '{p}type' = {kind!r}; supported: 'vector', 'dexpilot' (position retargeting is not)")
    if get(t, "has_joint_limits", bool, where, p, required=False) is False:
        raise ConfigError(f"{where}: key '{p}has_joint_limits' = false is not supported: joint limits are always respected")
    if get(t, "add_dummy_free_joint", bool, where, p, required=False):
        why = "the hand's base is the keypoints' wrist frame" if d.hand_only else "the wrist is driven by arm IK here"
        raise ConfigError(f"{where}: key '{p}add_dummy_free_joint' = true (a floating hand, for position "
                          f"retargeting) is not supported: {why}; remove it")
    if get(t, "ignore_mimic_joint", bool, where, p, required=False):
        raise ConfigError(f"{where}: key '{p}ignore_mimic_joint' = true is not supported: URDF <mimic> joints always "
                          f"follow their source joint here (dex-retargeting's default, false)")
    other = ("finger_tip_link_names",) if kind == "vector" else ("target_origin_link_names", "target_task_link_names")
    for key in other:
        if key in t:
            raise ConfigError(f"{where}: key '{p}{key}' does not apply to type = {kind!r}; remove it")
    if "side" in t and not d.hand_only:
        raise ConfigError(f"{where}: key '{p}side' is for hand-only configs; a robot's config covers the sides "
                          f"its description has")


def _dexpilot_keypoints(t: dict[str, Any], n_tips: int, where: str, p: str) -> tuple[int, tuple[int, ...]]:
    """The human keypoint of the wrist and of each tip. dex-retargeting's ``target_link_human_indices``
    for DexPilot (2 rows over its own vector order) is honoured when it gives each link one keypoint."""
    if "target_link_human_indices" not in t:
        return 0, TIP_KEYPOINTS[:n_tips]
    if n_tips not in _DEXPILOT_LINKS:
        raise ConfigError(f"{where}: key '{p}target_link_human_indices' with {n_tips} tips: dex-retargeting's DexPilot "
                          f"layout exists for 4 or 5 tips only; leave it out (wrist 0, tips 4, 8, 12, 16, 20)")
    origin, task = _DEXPILOT_LINKS[n_tips]
    rows = _index_rows(t, len(origin), where, p)
    per_link: dict[int, int] = {}
    for j in range(len(origin)):
        for link, kp in ((origin[j], rows[0][j]), (task[j], rows[1][j])):
            if per_link.setdefault(link, kp) != kp:
                what = "the wrist" if link == 0 else f"tip {link}"
                raise ConfigError(f"{where}: key '{p}target_link_human_indices' maps {what} to keypoints "
                                  f"{per_link[link]} and {kp}; here DexPilot vectors are built from one keypoint per link")
    return per_link[0], tuple(per_link[i] for i in range(1, n_tips + 1))


def _index_rows(t: dict[str, Any], m: int, where: str, p: str) -> list[tuple[int, ...]]:
    idx = get(t, "target_link_human_indices", list, where, p)
    if len(idx) != 2 or not all(isinstance(row, list) and len(row) == m for row in idx):
        raise ConfigError(f"{where}: key '{p}target_link_human_indices' must be 2 rows of {m} ints "
                          f"(origin row, task row)")
    return [tuple(check_number(v, f"{p}target_link_human_indices[{r}][{i}]", where, 0, 20, integer=True)
                  for i, v in enumerate(row)) for r, row in enumerate(idx)]  # MediaPipe keypoints 0..20


def _vectors(t: dict[str, Any], kind: str, wrist: str, weights: tuple[float, ...], where: str, p: str) -> VectorSpec:
    if kind == "vector":
        origins = get_names(t, "target_origin_link_names", where, p)
        tasks = get_names(t, "target_task_link_names", where, p)
        if len(tasks) != len(origins):
            raise ConfigError(f"{where}: keys '{p}target_origin_link_names' ({len(origins)}) and "
                              f"'{p}target_task_link_names' ({len(tasks)}) must list as many links")
        rows = _index_rows(t, len(origins), where, p)
        return VectorSpec(origin_frames=origins, task_frames=tasks, human_origin=rows[0], human_task=rows[1],
                          weights=weights)
    # DexPilot: wrist -> every tip, thumb -> every finger (pinch), finger -> finger
    tips = get_names(t, "finger_tip_link_names", where, p)
    if not 2 <= len(tips) <= 5:
        raise ConfigError(f"{where}: key '{p}finger_tip_link_names' needs 2..5 tips, thumb first")
    h0, hk = _dexpilot_keypoints(t, len(tips), where, p)
    o, tk, ho, ht, pinch, w = [], [], [], [], [], []
    for i in range(len(tips)):
        o.append(wrist), tk.append(tips[i]), ho.append(h0), ht.append(hk[i]), pinch.append(False), w.append(1.0)
    for i in range(len(tips)):
        for j in range(i + 1, len(tips)):
            o.append(tips[i]), tk.append(tips[j]), ho.append(hk[i]), ht.append(hk[j])
            pinch.append(i == 0), w.append(1.0 if i == 0 else 0.2)
    return VectorSpec(origin_frames=tuple(o), task_frames=tuple(tk), human_origin=tuple(ho), human_task=tuple(ht),
                      weights=weights or tuple(w), pinch=tuple(pinch))


def _low_pass_alpha(t: dict[str, Any], where: str, p: str) -> float:
    value = get(t, "low_pass_alpha", (int, float), where, p, required=False)
    if value is None:
        return 1.0
    alpha = check_number(value, f"{p}low_pass_alpha", where)
    if not 0.0 < alpha <= 1.0:
        raise ConfigError(f"{where}: key '{p}low_pass_alpha' = {value!r} must be in (0, 1] (1 = no output filter). "
                          f"dex-retargeting differs: any value outside [0, 1] turns its filter off (write 1.0 here) "
                          f"and 0 freezes its output at the first frame")
    return alpha


def _rotation(t: dict[str, Any], where: str, p: str) -> tuple[tuple[float, float, float], ...] | None:
    key = "keypoints_to_wrist_link"
    value = get(t, key, list, where, p, required=False)
    if value is None:
        return None
    if len(value) != 3 or not all(isinstance(row, list) and len(row) == 3 for row in value):
        raise ConfigError(f"{where}: key '{p}{key}' must be a 3x3 rotation matrix (3 rows of 3 numbers)")
    rows = tuple(tuple(check_number(v, f"{p}{key}[{r}][{c}]", where, -1.0, 1.0) for c, v in enumerate(row))
                 for r, row in enumerate(value))
    m = np.array(rows)
    if not np.allclose(m @ m.T, np.eye(3), atol=1e-6) or np.linalg.det(m) < 0:
        raise ConfigError(f"{where}: key '{p}{key}' is not a rotation (orthonormal rows, determinant +1): {value}")
    return rows  # type: ignore[return-value]


def _initial(t: dict[str, Any], joints: tuple[str, ...], where: str, p: str) -> tuple[str, tuple[float, ...] | None]:
    guess = get(t, "initial_guess", str, where, p, required=False)
    qpos = _numbers(t, "initial_qpos", where, p, len(joints), low=-1e3, high=1e3)
    if guess is not None and qpos is not None:
        raise ConfigError(f"{where}: keys '{p}initial_guess' and '{p}initial_qpos' both given; keep one")
    if guess is not None and guess not in _INITIAL_GUESSES:
        raise ConfigError(f"{where}: key '{p}initial_guess' = {guess!r}; allowed: {list(_INITIAL_GUESSES)}")
    if qpos is None and "initial_qpos" in t:
        raise ConfigError(f"{where}: key '{p}initial_qpos' must list {len(joints)} numbers, one per joint "
                          f"{list(joints)}")
    return guess or "zeros", qpos


def _max_jump(t: dict[str, Any], step: float, where: str, p: str) -> float:
    """The trust radius's ceiling: >= its floor ``max_step_rad``; default the larger of 0.6 and it."""
    jump = get_float(t, "max_jump_rad", max(0.6, step), where, p, low=0.0, high=_MAX_RAD, low_open=True)
    if jump < step:
        raise ConfigError(f"{where}: key '{p}max_jump_rad' = {jump:g} is below '{p}max_step_rad' = {step:g}: the "
                          f"trust radius grows from max_step_rad (a small error) up to max_jump_rad")
    return jump


def _hand(raw: dict[str, Any], side: Side, base: Path, where: str, d: _HandDefaults) -> HandConfig:
    t = _per_side(raw, side, where, "hand.")
    p = f"hand.{side}." if side in raw else "hand."
    check_keys(t, _HAND_KEYS - {"left", "right"}, where, p)
    kind = str(get(t, "type", str, where, p, required=False) or "vector").lower()
    _refuse_dex_only(t, kind, where, p, d)
    model = _model_path(t, p, where, base, d)
    root, urdf_joints = urdf_outline(model) if d.wrist is None or d.joints is None else ("", ())
    wrist = get(t, "wrist_link_name", str, where, p, required=False) or d.wrist or root
    joints = get_names(t, "target_joint_names", where, p, required=False) or d.joints or urdf_joints
    if not joints:
        raise ConfigError(f"{where}: no hand joints: list them in '{p}target_joint_names'")
    weights = _numbers(t, "weights", where, p, low=0.0, high=1e6) or ()
    vectors = _vectors(t, kind, wrist, weights, where, p)
    guess, qpos = _initial(t, joints, where, p)
    huber = get(t, "huber_delta", (int, float), where, p, required=False)
    on = get_float(t, "project_dist", 0.03, where, p, low=0.0, high=0.5, low_open=True)
    step = get_float(t, "max_step_rad", 0.1, where, p, low=0.0, high=_MAX_RAD, low_open=True)
    return HandConfig(
        side=side, model_path=model, wrist_frame=wrist, joints=joints, vectors=vectors,
        scale=get_float(t, "scaling_factor", 1.0, where, p, low=0.0, high=10.0, low_open=True),
        smooth=get_float(t, "normal_delta", 4e-3, where, p, low=0.0, high=1e3),
        low_pass_alpha=_low_pass_alpha(t, where, p),
        pinch_on_m=on,
        pinch_off_m=get_float(t, "escape_dist", max(on, 0.05), where, p, low=on, high=1.0),
        pinch_target_m=get_float(t, "eta1", 1e-4, where, p, low=0.0, high=0.1),
        pinch_weight=get_float(t, "pinch_weight", 200.0, where, p, low=0.0, high=1e6),
        max_iters=get_int(t, "max_iters", 3, where, p, low=1, high=1000),
        cold_iters=get_int(t, "cold_iters", 50, where, p, low=1, high=10000),
        frame_iters=get_int(t, "frame_iters", 20, where, p, low=1, high=10000),
        max_step_rad=step,
        max_jump_rad=_max_jump(t, step, where, p),
        low_pass_lead_rad=get_float(t, "low_pass_lead_rad", 1.2, where, p, low=0.0, high=_MAX_RAD, low_open=True),
        huber_delta=None if huber is None else check_number(huber, f"{p}huber_delta", where, 0.0, 1.0, low_open=True),
        keypoint_rotation=_rotation(t, where, p),
        initial_guess=guess,  # type: ignore[arg-type]
        initial_qpos=qpos,
        source=Path(where),
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
        rot_weight_m=get_float(t, "rot_weight_m", 0.2, where, p, low=0.0, high=10.0),
        damping=get_float(t, "damping", 1e-2, where, p, low=0.0, high=1e3, low_open=True),
        posture_gain=get_float(t, "posture_gain", 0.05, where, p, low=0.0, high=1.0),
        max_step_rad=get_float(t, "max_step_rad", 0.3, where, p, low=0.0, high=_MAX_RAD, low_open=True),
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

    def defaults(side: Side) -> _HandDefaults:
        s = desc.sides[side]
        return _HandDefaults(model=desc.model_path, wrist=s.wrist_frame, joints=s.hand_joints)

    return RetargetConfig(
        hands={s: _hand(hand_raw, s, path.parent, where, defaults(s)) for s in SIDES if desc.sides[s].hand_joints},
        arms={s: _arm(arm_raw, s, desc, where) for s in SIDES},
        workspace=WorkspaceConfig(
            scale=get_float(ws, "scale", 1.0, where, "workspace.", low=0.0, low_open=True),
            rotation_rpy_deg=_vec3(ws, "rotation_rpy_deg", where, (0.0, 0.0, 0.0), 360.0),
            offset_m=_vec3(ws, "offset_m", where, (0.0, 0.0, 0.0), 10.0),
        ),
        keypoint_filter=_keypoint_filter(filt, where),
        wrist_position_filter=fcfg("wrist_position"),
        wrist_orientation_filter=fcfg("wrist_orientation"),
        source=path,
    )


def _keypoint_filter(filt: dict[str, Any], where: str) -> FilterConfig | None:
    """[filter.keypoints]: present -> One-Euro on the keypoints (``enabled = false`` keeps the
    table but turns it off); absent -> no keypoint filter."""
    table = get(filt, "keypoints", dict, where, "filter.", required=False)
    if table is None:
        return None
    table = dict(table)
    enabled = get(table, "enabled", bool, where, "filter.keypoints.", required=False)
    table.pop("enabled", None)
    try:
        config = FilterConfig.from_dict(table)
    except ConfigError as exc:
        raise ConfigError(f"{where}: [filter.keypoints]: {exc} (or 'enabled')") from None
    return None if enabled is False else config


def load_hand_config(path: str | Path, *, urdf: str | Path | None = None, side: Side | None = None) -> HandOnlyConfig:
    """A hand-only retargeting config (one hand, no arm): its ``[hand]`` table, with ``urdf`` (if
    given) instead of ``urdf_path``, for ``side`` (default: the table's ``side`` key, else right).
    Defaults the robot description gives otherwise come from the URDF: ``wrist_link_name`` is its
    root link, ``target_joint_names`` its moving joints without ``<mimic>``. ``[arm]``,
    ``[workspace]`` and the wrist filters are allowed (a robot's file reused) and not used."""
    path = Path(path)
    raw = load_toml(path, "retargeting config")
    where = str(path)
    check_keys(raw, _TOP_KEYS, where)
    hand_raw = get(raw, "hand", dict, where)
    filt = get(raw, "filter", dict, where, required=False) or {}
    check_keys(filt, _FILTER_KEYS, where, "filter.")
    named = get(hand_raw, "side", str, where, "hand.", required=False)
    if named is not None and named not in SIDES:
        raise ConfigError(f"{where}: key 'hand.side' = {named!r}; allowed: {list(SIDES)}")
    resolved: Side = side or named or "right"  # type: ignore[assignment]
    if resolved not in SIDES:
        raise ConfigError(f"side must be one of {list(SIDES)}, got {resolved!r}")
    d = _HandDefaults(urdf_override=Path(urdf).expanduser() if urdf else None, hand_only=True)
    hand = _hand(hand_raw, resolved, path.parent, where, d)
    return HandOnlyConfig(hand=hand, keypoint_filter=_keypoint_filter(filt, where), source=path)
