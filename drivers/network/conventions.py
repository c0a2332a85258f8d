"""Per-source conventions, converted explicitly into the runtime's: right-handed, Z up, metres,
quaternions (w, x, y, z), MediaPipe 21 keypoints."""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

__all__ = ["AXES", "axes_matrix", "convert_pose", "KEYPOINT_LAYOUTS", "to_mediapipe", "UNITS", "matrix_from_flat"]

F64 = npt.NDArray[np.float64]

#: M with p_ours = M @ p_theirs.
AXES: Final[dict[str, F64]] = {
    "zup": np.eye(3),
    # y up, -z forward, x right (OpenXR/WebXR/visionOS): ours x = -z, y = -x, z = y
    "yup": np.array([[0.0, 0.0, -1.0], [-1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]),
    # Unity: left-handed, x right, y up, z forward: ours x = z, y = -x, z = y
    "unity": np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]),
}
UNITS: Final[dict[str, float]] = {"m": 1.0, "cm": 0.01, "mm": 0.001}

#: Index into the source array for each MediaPipe keypoint 0..20.
KEYPOINT_LAYOUTS: Final[dict[str, tuple[int, ...]]] = {
    "mediapipe21": tuple(range(21)),
    # OpenXR XrHandJointEXT: palm 0, wrist 1, thumb metacarpal..tip 2-5, index metacarpal..tip 6-10, ...
    "openxr26": (1, 2, 3, 4, 5, 7, 8, 9, 10, 12, 13, 14, 15, 17, 18, 19, 20, 22, 23, 24, 25),
    # WebXR: OpenXR without the palm
    "webxr25": (0, 1, 2, 3, 4, 6, 7, 8, 9, 11, 12, 13, 14, 16, 17, 18, 19, 21, 22, 23, 24),
    # visionOS (avp_stream): wrist, thumb knuckle..tip, then metacarpal, knuckle, intermediate base/tip, tip
    "avp25": (0, 1, 2, 3, 4, 6, 7, 8, 9, 11, 12, 13, 14, 16, 17, 18, 19, 21, 22, 23, 24),
}
_SIZES: Final[dict[str, int]] = {"mediapipe21": 21, "openxr26": 26, "webxr25": 25, "avp25": 25}


def axes_matrix(axes: str) -> F64:
    return AXES[axes]


def matrix_from_flat(flat: F64, layout: str) -> F64:
    """A 4x4 matrix from 16 floats, row-major (m00 m01 m02 m03 m10 ...) or column-major."""
    m = np.asarray(flat, dtype=np.float64).reshape(4, 4)
    return m if layout == "row_major" else m.T


def _rpy(rpy_deg: tuple[float, ...]) -> F64:
    r, p, y = np.deg2rad(rpy_deg)
    rx = np.array([[1, 0, 0], [0, np.cos(r), -np.sin(r)], [0, np.sin(r), np.cos(r)]])
    ry = np.array([[np.cos(p), 0, np.sin(p)], [0, 1, 0], [-np.sin(p), 0, np.cos(p)]])
    rz = np.array([[np.cos(y), -np.sin(y), 0], [np.sin(y), np.cos(y), 0], [0, 0, 1]])
    return rz @ ry @ rx


def convert_pose(position: F64, rotation: F64, axes: str, units: str, wrist_rpy_deg: tuple[float, ...] = (0, 0, 0)) -> tuple[F64, F64]:
    """(position [m], rotation matrix) in our frame from a source pose (position in ``units``,
    rotation (3, 3) with the body axes as columns in the source world). The world axes change by
    M (p' = M p, R' = M R M^T keeps it a proper rotation for a left-handed source too), then the
    body axes by the fixed ``wrist_rpy_deg`` correction."""
    m = AXES[axes]
    p = m @ (np.asarray(position, dtype=np.float64) * UNITS[units])
    r = m @ np.asarray(rotation, dtype=np.float64) @ m.T
    if any(wrist_rpy_deg):
        r = r @ _rpy(wrist_rpy_deg)
    return p, r


def to_mediapipe(keypoints: F64, layout: str, axes: str, units: str) -> F64:
    """Source keypoints (k, 3) -> MediaPipe 21 (21, 3) in our axes and metres."""
    kp = np.asarray(keypoints, dtype=np.float64)
    if kp.shape != (_SIZES[layout], 3):
        raise ValueError(f"{layout} keypoints must have shape ({_SIZES[layout]}, 3), got {kp.shape}")
    return (kp[list(KEYPOINT_LAYOUTS[layout])] * UNITS[units]) @ AXES[axes].T
