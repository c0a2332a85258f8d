"""From a tracked hand to the runtime's hand contract: the 21 keypoints in the wrist frame
(docs/hand-keypoints.md) and the wrist pose in the camera's frame.

The landmark model gives metric keypoints in a hand-centred frame with the camera's axes
("world" landmarks) and the same keypoints as pixels. ``cv2.solvePnP`` with the camera's
intrinsics finds where that metric hand sits in front of the camera; the wrist frame comes from
the keypoints themselves (x toward the middle-finger MCP, z out of the palm).

The pose is given in the runtime's convention (right-handed, Z up, metres): the camera frame
``camera`` has x forward out of the lens, y to the camera's left, z up (the optical frame x right,
y down, z forward turned as ROS's REP 103 does)."""

from __future__ import annotations

import numpy as np

from retarget.kernels.poses import mat_to_quat
from teleop.types import Side

__all__ = ["wrist_frame", "hand_in_camera", "OPTICAL_TO_CAMERA"]

#: optical (x right, y down, z forward) -> camera (x forward, y left, z up)
OPTICAL_TO_CAMERA = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


def wrist_frame(kp: np.ndarray, side: Side) -> np.ndarray:
    """The wrist frame's axes (columns x, y, z) in the keypoints' frame, from one hand (21, 3)."""
    x = kp[9] - kp[0]
    x = x / (np.linalg.norm(x) + 1e-12)
    across = kp[5] - kp[17]  # index MCP - pinky MCP: toward the thumb (+y on a left hand)
    y = across if side == "left" else -across
    y = y - np.dot(y, x) * x
    y = y / (np.linalg.norm(y) + 1e-12)
    return np.stack([x, y, np.cross(x, y)], axis=1)


def hand_in_camera(world_m: np.ndarray, image_px: np.ndarray, side: Side, camera_matrix: np.ndarray,
                   dist: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(keypoints in the wrist frame (21, 3), wrist position (3,) [m], wrist quaternion (w, x, y, z))
    in the ``camera`` frame, or None when the pose cannot be solved (degenerate landmarks)."""
    import cv2

    ok, rvec, tvec = cv2.solvePnP(world_m.astype(np.float64), image_px.astype(np.float64), camera_matrix, dist,
                                  flags=cv2.SOLVEPNP_SQPNP)
    if not ok or not np.all(np.isfinite(tvec)) or tvec[2, 0] <= 0:  # behind the camera: a bad solve
        return None
    rot, _ = cv2.Rodrigues(rvec)
    axes = wrist_frame(world_m, side)
    keypoints = (world_m - world_m[0]) @ axes  # each row: its coordinates on the wrist axes
    position = OPTICAL_TO_CAMERA @ (rot @ world_m[0] + tvec[:, 0])
    quat = np.zeros(4)
    mat_to_quat(np.ascontiguousarray(OPTICAL_TO_CAMERA @ rot @ axes), quat)
    return keypoints, position, quat
