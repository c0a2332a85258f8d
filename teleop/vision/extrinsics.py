"""Where a camera is: its pose in the robot's base frame, a small TOML file.

The camera frame is OpenCV's: x to the right of the image, y down the image, z forward out of the
lens (the frame ``cv2.solvePnP`` gives board and marker poses in). The file::

    parent = "base"            # the frame the pose is given in (only "base" today)
    pos = [0.45, -0.02, 0.80]  # camera origin in the base frame [m]
    quat = [0.0, 0.7071068, -0.7071068, 0.0]   # (w, x, y, z), or instead:
    # rpy_deg = [180.0, 0.0, -90.0]            # roll, pitch, yaw [deg], fixed axes x, y, z (URDF rpy)

Exactly one of ``quat`` (normalised on load; a norm far from 1 is refused as a typo) and
``rpy_deg``. ``teleop calibrate camera-pose`` and ``teleop calibrate hand-eye`` write it
(docs/calibration.md)."""

from __future__ import annotations

import math
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from teleop.errors import ConfigError
from teleop.vision.tomlfile import toml_text, write_atomic
from teleop.vision.transforms import (
    F64,
    is_rotation,
    make_transform,
    matrix_to_quat,
    matrix_to_rpy_deg,
    quat_to_matrix,
    rpy_deg_to_matrix,
)

__all__ = ["CameraPose", "MAX_POS_M", "QUAT_NORM_TOL"]

#: A camera more than this far from its parent frame's origin is a typo (millimetres written as metres).
MAX_POS_M = 10.0
#: How far from 1 a written quaternion's norm may be (4-digit hand-typed values pass, a typo does not).
QUAT_NORM_TOL = 0.01
_KEYS = {"parent", "pos", "quat", "rpy_deg"}


@dataclass(frozen=True)
class CameraPose:
    """``T_parent_camera``: the camera's position [m] and orientation (unit quaternion w, x, y, z)
    in ``parent`` (the robot's base frame), camera axes as OpenCV's (x right, y down, z forward)."""

    pos: tuple[float, float, float]
    quat: tuple[float, float, float, float]
    parent: str = "base"
    source: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        pos = tuple(float(v) for v in self.pos)
        quat = np.asarray(self.quat, dtype=np.float64).reshape(-1)
        if len(pos) != 3 or not all(math.isfinite(v) for v in pos) or math.hypot(*pos) > MAX_POS_M:
            raise ConfigError(f"camera pose: pos must be 3 finite numbers within {MAX_POS_M:g} m, got {self.pos!r}")
        norm = float(np.linalg.norm(quat)) if quat.shape == (4,) and np.all(np.isfinite(quat)) else math.nan
        if not abs(norm - 1.0) <= QUAT_NORM_TOL:
            raise ConfigError(f"camera pose: quat must be 4 finite numbers (w, x, y, z) of norm 1, got {self.quat!r}")
        q = quat / norm
        object.__setattr__(self, "pos", pos)
        object.__setattr__(self, "quat", tuple(float(v) for v in (-q if q[0] < 0 else q)))

    # -- conversions --------------------------------------------------------------------------------
    def matrix(self) -> F64:
        """``T_parent_camera`` (``T_base_camera``): maps camera-frame points to the base frame. Shape (4, 4)."""
        return make_transform(quat_to_matrix(self.quat), self.pos)

    @property
    def rpy_deg(self) -> tuple[float, float, float]:
        r, p, y = matrix_to_rpy_deg(quat_to_matrix(self.quat))
        return (float(r), float(p), float(y))

    @classmethod
    def from_matrix(cls, T: npt.ArrayLike, source: str = "", parent: str = "base") -> CameraPose:  # noqa: N803
        """From ``T_parent_camera`` (4, 4); its rotation must be orthonormal (a ConfigError otherwise)."""
        t = np.asarray(T, dtype=np.float64)
        if t.shape != (4, 4) or not is_rotation(t[:3, :3], tol=1e-5):
            raise ConfigError(f"camera pose: not a rigid transform (a 4x4 with an orthonormal rotation): {t!r}")
        return cls(tuple(t[:3, 3]), tuple(matrix_to_quat(t[:3, :3])), parent=parent, source=source)

    # -- the file -----------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path, parents: Sequence[str] = ("base",)) -> CameraPose:
        """Read and check a camera pose file: unknown keys, wrong types, NaN or inf, a position
        beyond ``MAX_POS_M`` or a parent other than ``parents`` are ConfigErrors naming the file
        and the key."""
        p = Path(path).expanduser()
        where = f"camera pose {p}"
        try:
            raw = tomllib.loads(p.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{where}: cannot read it ({exc})") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{where}: not valid TOML ({exc})") from None
        unknown = sorted(set(raw) - _KEYS)
        if unknown:
            raise ConfigError(f"{where}: unknown key '{unknown[0]}'; allowed keys: parent, pos, and quat or rpy_deg")
        parent = raw.get("parent")
        if parent is None:
            raise ConfigError(f"{where}: missing key 'parent'; write parent = \"base\" (the robot's base frame)")
        if not isinstance(parent, str) or parent not in parents:
            raise ConfigError(f"{where}: key 'parent' is {parent!r}; only {' or '.join(map(repr, parents))} is "
                              "supported now (the camera's pose in the robot's base frame)")
        if "pos" not in raw:
            raise ConfigError(f"{where}: missing key 'pos' (the camera's position [x, y, z] in metres)")
        pos = _numbers(raw["pos"], 3, "pos", where, MAX_POS_M)
        if math.hypot(*pos) > MAX_POS_M:
            raise ConfigError(f"{where}: key 'pos' = {raw['pos']!r} is {math.hypot(*pos):.3g} m from the origin; "
                              f"at most {MAX_POS_M:g} m (millimetres written as metres?)")
        has_quat, has_rpy = "quat" in raw, "rpy_deg" in raw
        if has_quat == has_rpy:
            raise ConfigError(f"{where}: give exactly one of 'quat' = [w, x, y, z] and 'rpy_deg' = [roll, pitch, yaw]"
                              + (", not both" if has_quat else ""))
        if has_quat:
            quat = np.array(_numbers(raw["quat"], 4, "quat", where, 1.0 + QUAT_NORM_TOL))
            norm = float(np.linalg.norm(quat))
            if abs(norm - 1.0) > QUAT_NORM_TOL:
                raise ConfigError(f"{where}: key 'quat' = {raw['quat']!r} has norm {norm:.4g}; a rotation (w, x, y, z) "
                                  f"has norm 1 (within {QUAT_NORM_TOL:g}): a typo?")
        else:
            rpy = _numbers(raw["rpy_deg"], 3, "rpy_deg", where, 360.0)
            quat = matrix_to_quat(rpy_deg_to_matrix(rpy))
        return cls(pos, tuple(quat), parent=parent, source=str(p))  # type: ignore[arg-type]

    def save(self, path: str | Path, comment_lines: Iterable[str] = ()) -> Path:
        """Write the file ``load`` reads (atomically), ``comment_lines`` as ``#`` comments on top
        (how it was made, the spread over the images); the pose as ``quat``, with its roll, pitch,
        yaw in a comment. Returns the path."""
        r, p, y = self.rpy_deg
        lines = [*comment_lines, "camera axes: x right, y down, z forward (OpenCV)",
                 f"the same rotation as rpy_deg = [{r:.4f}, {p:.4f}, {y:.4f}]"]
        items: list[tuple[str, Any]] = [("parent", self.parent), ("pos", list(self.pos)), ("quat", list(self.quat))]
        return write_atomic(path, toml_text(items, lines))


def _numbers(value: Any, n: int, key: str, where: str, limit: float) -> tuple[float, ...]:
    ok = isinstance(value, list) and len(value) == n and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)
    if not ok:
        raise ConfigError(f"{where}: key '{key}' must be a list of {n} finite numbers, got {value!r}")
    bad = [v for v in value if abs(v) > limit]
    if bad:
        raise ConfigError(f"{where}: key '{key}' = {value!r}: {bad[0]!r} is out of range (at most {limit:g} in size)")
    return tuple(float(v) for v in value)
