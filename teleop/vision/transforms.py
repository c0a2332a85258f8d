"""Rigid transforms for calibration: 4x4 homogeneous matrices, unit quaternions (w, x, y, z),
roll-pitch-yaw in degrees (fixed axes x, y, z, as URDF: R = Rz(yaw) Ry(pitch) Rx(roll)), and the
mean of several poses with their spread. Pure numpy; ``T_a_b`` maps points in frame b to frame a."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

__all__ = ["F64", "quat_to_matrix", "matrix_to_quat", "rpy_deg_to_matrix", "matrix_to_rpy_deg", "make_transform",
           "invert_transform", "rotation_angle_deg", "is_rotation", "mean_transform", "PoseSpread"]

F64 = npt.NDArray[np.float64]


def quat_to_matrix(quat_wxyz: npt.ArrayLike) -> F64:
    """Rotation matrix of a quaternion (w, x, y, z) (normalised first). Shape (3, 3)."""
    w, x, y, z = np.asarray(quat_wxyz, dtype=np.float64) / np.linalg.norm(quat_wxyz)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ])


def matrix_to_quat(rot: npt.ArrayLike) -> F64:
    """Unit quaternion (w, x, y, z) with w >= 0 of a rotation matrix (Shepperd's method). Shape (4,)."""
    r = np.asarray(rot, dtype=np.float64)[:3, :3]
    trace = r[0, 0] + r[1, 1] + r[2, 2]
    if trace > 0:
        s = 2.0 * math.sqrt(1.0 + trace)
        q = [0.25 * s, (r[2, 1] - r[1, 2]) / s, (r[0, 2] - r[2, 0]) / s, (r[1, 0] - r[0, 1]) / s]
    elif r[0, 0] > r[1, 1] and r[0, 0] > r[2, 2]:
        s = 2.0 * math.sqrt(1.0 + r[0, 0] - r[1, 1] - r[2, 2])
        q = [(r[2, 1] - r[1, 2]) / s, 0.25 * s, (r[0, 1] + r[1, 0]) / s, (r[0, 2] + r[2, 0]) / s]
    elif r[1, 1] > r[2, 2]:
        s = 2.0 * math.sqrt(1.0 + r[1, 1] - r[0, 0] - r[2, 2])
        q = [(r[0, 2] - r[2, 0]) / s, (r[0, 1] + r[1, 0]) / s, 0.25 * s, (r[1, 2] + r[2, 1]) / s]
    else:
        s = 2.0 * math.sqrt(1.0 + r[2, 2] - r[0, 0] - r[1, 1])
        q = [(r[1, 0] - r[0, 1]) / s, (r[0, 2] + r[2, 0]) / s, (r[1, 2] + r[2, 1]) / s, 0.25 * s]
    out = np.array(q) / np.linalg.norm(q)
    return -out if out[0] < 0 else out


def rpy_deg_to_matrix(rpy_deg: npt.ArrayLike) -> F64:
    """Roll, pitch, yaw [deg] about the fixed x, y, z axes (URDF ``rpy``): R = Rz Ry Rx. Shape (3, 3)."""
    r, p, y = np.radians(np.asarray(rpy_deg, dtype=np.float64))
    cr, sr, cp, sp, cy, sy = math.cos(r), math.sin(r), math.cos(p), math.sin(p), math.cos(y), math.sin(y)
    return np.array([
        [cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
        [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
        [-sp, cp * sr, cp * cr],
    ])


def matrix_to_rpy_deg(rot: npt.ArrayLike) -> F64:
    """Inverse of ``rpy_deg_to_matrix`` (pitch in [-90, 90]). Shape (3,)."""
    r = np.asarray(rot, dtype=np.float64)
    pitch = math.asin(max(-1.0, min(1.0, -r[2, 0])))
    if abs(r[2, 0]) < 1.0 - 1e-9:
        roll, yaw = math.atan2(r[2, 1], r[2, 2]), math.atan2(r[1, 0], r[0, 0])
    else:  # gimbal lock: all of the turn goes into yaw
        roll, yaw = 0.0, math.atan2(-r[0, 1], r[1, 1])
    return np.degrees([roll, pitch, yaw])


def make_transform(rot: npt.ArrayLike, pos: npt.ArrayLike) -> F64:
    """4x4 from a rotation (3, 3) and a translation (3,)."""
    t = np.eye(4)
    t[:3, :3] = rot
    t[:3, 3] = np.asarray(pos, dtype=np.float64).reshape(3)
    return t


def invert_transform(t: npt.ArrayLike) -> F64:
    """``T_b_a`` from ``T_a_b`` (rigid: R^T, -R^T p). Shape (4, 4)."""
    t = np.asarray(t, dtype=np.float64)
    rot_t = t[:3, :3].T
    return make_transform(rot_t, -rot_t @ t[:3, 3])


def rotation_angle_deg(rot: npt.ArrayLike) -> float:
    """Angle [deg] of a rotation matrix (the angle between two frames: ``rotation_angle_deg(Ra.T @ Rb)``)."""
    r = np.asarray(rot, dtype=np.float64)[:3, :3]
    return math.degrees(math.acos(max(-1.0, min(1.0, (np.trace(r) - 1.0) / 2.0))))


def is_rotation(rot: npt.ArrayLike, tol: float = 1e-6) -> bool:
    """Orthonormal with determinant +1, within ``tol``."""
    r = np.asarray(rot, dtype=np.float64)
    return bool(r.shape == (3, 3) and np.all(np.isfinite(r)) and np.allclose(r.T @ r, np.eye(3), atol=tol)
                and abs(np.linalg.det(r) - 1.0) < tol)


class PoseSpread(NamedTuple):
    """How far single estimates lie from their mean: RMS and largest, position [m] and angle [deg]."""

    pos_rms_m: float
    pos_max_m: float
    rot_rms_deg: float
    rot_max_deg: float


def mean_transform(transforms: npt.ArrayLike) -> tuple[F64, PoseSpread]:
    """Mean of poses (N, 4, 4): the mean position and the rotation nearest (chordal L2) to the mean
    rotation matrix (SVD projection), and how far each pose is from it."""
    ts = np.asarray(transforms, dtype=np.float64).reshape(-1, 4, 4)
    if not len(ts):
        raise ValueError("mean_transform needs at least one pose")
    pos = ts[:, :3, 3].mean(axis=0)
    u, _, vt = np.linalg.svd(ts[:, :3, :3].sum(axis=0))
    rot = u @ np.diag([1.0, 1.0, np.linalg.det(u @ vt)]) @ vt
    d_pos = np.linalg.norm(ts[:, :3, 3] - pos, axis=1)
    d_rot = np.array([rotation_angle_deg(rot.T @ t[:3, :3]) for t in ts])
    spread = PoseSpread(float(np.sqrt(np.mean(d_pos ** 2))), float(d_pos.max()), float(np.sqrt(np.mean(d_rot ** 2))),
                        float(d_rot.max()))
    return make_transform(rot, pos), spread
