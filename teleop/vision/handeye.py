"""Hand-eye calibration (``cv2.calibrateHandEye``) from pictures of a board and the robot's wrist
pose at each picture.

- ``eye-in-hand``: the camera is on the wrist and the board lies still somewhere; the result is
  the camera's pose on the wrist, ``T_wrist_camera``.
- ``eye-to-hand``: the camera is fixed and the gripper holds the board (any grip, as long as it
  does not slip); the result is the camera's pose in the base frame, ``T_base_camera``.

The wrist poses come from a JSON file, one entry per picture::

    [{"image": "shot_00.png", "pos": [0.41, -0.12, 0.33], "quat": [0.92, 0.0, 0.38, 0.0]}, ...]

``pos`` [m] and ``quat`` (w, x, y, z) are ``T_base_wrist``, the wrist link in the base frame, as
the robot reports it when the picture is taken. The camera axes are OpenCV's (x right, y down,
z forward)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
import numpy.typing as npt

from teleop.errors import ConfigError
from teleop.vision.calibration import Detections, Rejected, board_poses, require_views
from teleop.vision.devices import load_cv2
from teleop.vision.errors import CalibrationError
from teleop.vision.extrinsics import MAX_POS_M, QUAT_NORM_TOL, CameraPose
from teleop.vision.intrinsics import Intrinsics
from teleop.vision.transforms import (
    F64,
    PoseSpread,
    invert_transform,
    make_transform,
    mean_transform,
    quat_to_matrix,
    rotation_angle_deg,
)

__all__ = ["HandEyeMode", "HAND_EYE_MODES", "HandEyeResult", "load_wrist_poses", "calibrate_hand_eye",
           "MIN_HAND_EYE_IMAGES"]

HandEyeMode = Literal["eye-in-hand", "eye-to-hand"]
HAND_EYE_MODES: tuple[HandEyeMode, ...] = ("eye-in-hand", "eye-to-hand")
#: Fewest picture + wrist pose pairs accepted (OpenCV needs 3; 10-20 give a good result).
MIN_HAND_EYE_IMAGES = 5
#: Between some two pictures the wrist must turn this much, about two axes this far apart.
MIN_TURN_DEG = 10.0
MIN_AXES_APART_DEG = 20.0
_METHODS = ("TSAI", "PARK", "HORAUD", "ANDREFF", "DANIILIDIS")


def load_wrist_poses(path: str | Path) -> dict[str, F64]:
    """``T_base_wrist`` (4, 4) per image file name, from the JSON file (module docstring). Strict:
    unknown keys, wrong types, NaN, a position beyond 10 m, a quaternion whose norm is far from 1,
    or an image named twice are ConfigErrors naming the file, the entry and the key."""
    p = Path(path).expanduser()
    where = f"wrist poses {p}"

    def no_constant(name: str) -> Any:
        raise ConfigError(f"{where}: {name} is not a number; every value must be finite")

    try:
        raw = json.loads(p.read_text(encoding="utf-8"), parse_constant=no_constant)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{where}: cannot read it ({exc})") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{where}: not valid JSON ({exc})") from None
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{where}: must be a JSON list of {{\"image\": NAME, \"pos\": [x, y, z], "
                          "\"quat\": [w, x, y, z]}, one per picture")
    poses: dict[str, F64] = {}
    for i, entry in enumerate(raw):
        at = f"{where}: entry {i}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{at} must be an object with image, pos and quat, got {entry!r}")
        unknown = sorted(set(entry) - {"image", "pos", "quat"})
        missing = [k for k in ("image", "pos", "quat") if k not in entry]
        if unknown or missing:
            raise ConfigError(f"{at}: " + (f"unknown key '{unknown[0]}'" if unknown else f"missing key '{missing[0]}'")
                              + "; each entry has exactly image, pos and quat")
        name = entry["image"]
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"{at}: key 'image' must be an image file name, got {name!r}")
        name = Path(name).name
        at = f"{where}: entry {i} ({name})"
        pos = _vector(entry["pos"], 3, "pos", at)
        if math.hypot(*pos) > MAX_POS_M:
            raise ConfigError(f"{at}: key 'pos' is {math.hypot(*pos):.3g} m from the base; at most {MAX_POS_M:g} m "
                              "(millimetres instead of metres?)")
        quat = np.array(_vector(entry["quat"], 4, "quat", at))
        if abs(np.linalg.norm(quat) - 1.0) > QUAT_NORM_TOL:
            raise ConfigError(f"{at}: key 'quat' has norm {np.linalg.norm(quat):.4g}; a rotation (w, x, y, z) has "
                              "norm 1 (x, y, z, w order, or degrees?)")
        if name in poses:
            raise ConfigError(f"{at}: image {name} has a pose already; one entry per picture")
        poses[name] = make_transform(quat_to_matrix(quat), pos)
    return poses


def _vector(value: Any, n: int, key: str, at: str) -> tuple[float, ...]:
    if not (isinstance(value, list) and len(value) == n and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)):
        raise ConfigError(f"{at}: key '{key}' must be a list of {n} finite numbers, got {value!r}")
    return tuple(float(v) for v in value)


class _Solution(NamedTuple):
    method: str
    X: F64
    constant: F64
    spread: PoseSpread


@dataclass(frozen=True)
class HandEyeResult:
    """``T`` (4, 4): ``T_wrist_camera`` (eye-in-hand) or ``T_base_camera`` (eye-to-hand). The
    ``constant`` the pictures share is the board's pose, ``T_base_board`` (eye-in-hand) or
    ``T_wrist_board`` (eye-to-hand); ``spread`` is how far each picture's estimate of it lies from
    their mean (the residual: small when the wrist poses and the pictures agree)."""

    mode: HandEyeMode
    T: F64
    constant: F64
    spread: PoseSpread
    method: str
    used: tuple[str, ...]
    rejected: tuple[Rejected, ...]
    unmatched: tuple[str, ...]
    warnings: tuple[str, ...]

    @property
    def parent(self) -> str:
        """The frame ``T`` is given in: ``wrist`` (eye-in-hand) or ``base`` (eye-to-hand)."""
        return "wrist" if self.mode == "eye-in-hand" else "base"

    def camera_pose(self, source: str = "teleop calibrate hand-eye") -> CameraPose:
        return CameraPose.from_matrix(self.T, source=source, parent=self.parent)

    def report_lines(self) -> list[str]:
        x, y, z = self.T[:3, 3]
        r, p, yaw = self.camera_pose().rpy_deg
        board = "T_base_board" if self.mode == "eye-in-hand" else "T_wrist_board"
        s = self.spread
        lines = [
            f"{self.mode}: T_{self.parent}_camera pos [{x:.4f}, {y:.4f}, {z:.4f}] m, rpy [{r:.2f}, {p:.2f}, "
            f"{yaw:.2f}] deg ({self.method}, {len(self.used)} pictures)",
            f"residual: the pictures' {board} agree within {s.pos_rms_m * 1000:.2f} mm RMS (worst "
            f"{s.pos_max_m * 1000:.2f}), {s.rot_rms_deg:.3f} deg RMS (worst {s.rot_max_deg:.3f})",
        ]
        if self.unmatched:
            lines.append(f"poses without a picture (ignored): {', '.join(self.unmatched)}")
        return lines + [f"warning: {w}" for w in self.warnings]


def calibrate_hand_eye(found: Detections, intrinsics: Intrinsics, wrist_poses: Mapping[str, npt.ArrayLike],
                       mode: HandEyeMode) -> HandEyeResult:
    """Hand-eye from the board views and ``T_base_wrist`` per picture name. Each of OpenCV's
    methods (Tsai, Park, Horaud, Andreff, Daniilidis) is tried and the one whose pictures agree
    best on the board's pose is kept."""
    if mode not in HAND_EYE_MODES:
        raise ConfigError(f"hand-eye mode {mode!r}: give {' or '.join(HAND_EYE_MODES)}")
    have = [v.name for v in found.views]
    if found.views and not set(have) & set(wrist_poses):
        raise CalibrationError(f"none of the {len(have)} pictures with the board has a wrist pose: the poses file "
                               f"names {_some(wrist_poses)}, the pictures are {_some(have)}; the names must match")
    found = found.only((n for n in have if n in wrist_poses), "no wrist pose for it in the poses file")
    unmatched = tuple(sorted(set(wrist_poses) - {v.name for v in found.views} - {r.name for r in found.rejected}))
    require_views(found, MIN_HAND_EYE_IMAGES, "take 10-20 pictures, turning the wrist about different axes "
                  "between them, each with its wrist pose in the poses file")
    poses = board_poses(found, intrinsics)
    t_base_wrist = [np.asarray(wrist_poses[name], dtype=np.float64) for name, _ in poses]
    _check_turns(t_base_wrist)
    a = t_base_wrist if mode == "eye-in-hand" else [invert_transform(t) for t in t_base_wrist]
    b = [bp.T_camera_board for _, bp in poses]
    cv2 = load_cv2()
    solutions = []
    for method in _METHODS:
        try:
            r, t = cv2.calibrateHandEye([m[:3, :3] for m in a], [m[:3, 3] for m in a], [m[:3, :3] for m in b],
                                        [m[:3, 3] for m in b], method=getattr(cv2, f"CALIB_HAND_EYE_{method}"))
        except cv2.error:
            continue
        if r is None or not (np.all(np.isfinite(r)) and np.all(np.isfinite(t))):
            continue
        u, _, vt = np.linalg.svd(r)
        x = make_transform(u @ vt, t.reshape(3))
        constant, spread = mean_transform([ai @ x @ bi for ai, bi in zip(a, b, strict=True)])
        solutions.append(_Solution(method.title(), x, constant, spread))
    if not solutions:
        raise CalibrationError("cv2.calibrateHandEye found no solution with any method; check that the wrist poses "
                               "belong to the pictures (same order, same moment)")
    best = min(solutions, key=lambda s: s.spread.pos_rms_m + 0.1 * math.radians(s.spread.rot_rms_deg))
    warnings = []
    if best.spread.pos_rms_m > 0.005 or best.spread.rot_rms_deg > 1.0:
        s = best.spread
        warnings.append(f"the pictures disagree by {s.pos_rms_m * 1000:.1f} mm, {s.rot_rms_deg:.2f} deg RMS"
                        ": wrist: wrist poses taken while moving, a board that moved or slipped, the wrong mode, "
                        "or poses of another frame than the one the camera is fixed to?")
    return HandEyeResult(mode, best.X, best.constant, best.spread, best.method, tuple(n for n, _ in poses),
                         found.rejected, unmatched, tuple(warnings))


def _some(names) -> str:
    names = sorted(names)
    return ", ".join(names[:3]) + (f" ... ({len(names)})" if len(names) > 3 else "")


def _check_turns(t_base_wrist: list[F64]) -> None:
    """CalibrationError unless the wrist turns enough, about at least two different axes."""
    axes = []
    largest = 0.0
    for i in range(len(t_base_wrist)):
        for j in range(i + 1, len(t_base_wrist)):
            r = t_base_wrist[i][:3, :3].T @ t_base_wrist[j][:3, :3]
            angle = rotation_angle_deg(r)
            largest = max(largest, angle)
            if MIN_TURN_DEG <= angle <= 170.0:
                axis = np.array([r[2, 1] - r[1, 2], r[0, 2] - r[2, 0], r[1, 0] - r[0, 1]])
                axes.append(axis / np.linalg.norm(axis))
    if not axes:
        raise CalibrationError(f"the wrist turns at most {largest:.1f} deg between pictures; hand-eye needs turns "
                               f"of {MIN_TURN_DEG:g}-45 deg about different axes between the pictures")
    cos_apart = math.cos(math.radians(MIN_AXES_APART_DEG))
    stack = np.array(axes)
    if np.all(np.abs(stack @ stack.T) >= cos_apart):
        raise CalibrationError("the wrist turns about one axis only between the pictures; hand-eye needs turns about "
                               "at least two different axes (tilt the wrist as well as rotating it)")
