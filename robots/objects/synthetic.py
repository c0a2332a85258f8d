"""Markers drawn into an image at a known pose (a planar homography, drawn 4x finer and area-
averaged so edges are blurred as a lens blurs them rather than aliased): test and benchmark
frames with exact ground truth, at any resolution and marker count."""

from __future__ import annotations

import numpy as np

from robots.objects.config import ObjectsConfig
from robots.objects.sim_markers import MARGIN_CELLS, marker_image

__all__ = ["draw_marker", "tilted"]

_UP = 4


def tilted(tilt_deg: float, distance_m: float, x_m: float = 0.0, y_m: float = 0.0, spin_deg: float = 0.0) -> np.ndarray:
    """``T_camera_marker`` of a marker facing the camera, turned ``spin_deg`` about its normal and
    tilted ``tilt_deg`` about its x axis, centred at (x, y, distance) in the camera frame."""
    a, s = np.radians(tilt_deg), np.radians(spin_deg)
    Rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    Rz = np.array([[np.cos(s), -np.sin(s), 0], [np.sin(s), np.cos(s), 0], [0, 0, 1]])
    T = np.eye(4)
    T[:3, :3] = Rx @ np.diag([1.0, -1.0, -1.0]) @ Rz  # face-on: marker z towards the camera, y up in the image
    T[:3, 3] = (x_m, y_m, distance_m)
    return T


def draw_marker(canvas: np.ndarray, config: ObjectsConfig, marker_id: int, size_m: float, T_camera_marker: np.ndarray,
                K: np.ndarray) -> None:
    """Draw the marker (with its white margin) into ``canvas`` (h, w) uint8, in place."""
    import cv2

    img = marker_image(config, marker_id)
    s = img.shape[0]
    cells = int(config.cv2_dictionary().markerSize) + 2
    half = size_m / 2 * (cells + 2 * MARGIN_CELLS) / cells
    local = np.array([[-half, half, 0, 1], [half, half, 0, 1], [half, -half, 0, 1], [-half, -half, 0, 1]])
    cam = (T_camera_marker @ local.T).T[:, :3]
    uv = (K @ cam.T).T
    uv = ((uv[:, :2] / uv[:, 2:] + 0.5) * _UP - 0.5).astype(np.float32)
    src = np.float32([[-0.5, -0.5], [s - 0.5, -0.5], [s - 0.5, s - 0.5], [-0.5, s - 0.5]])
    h, w = canvas.shape[:2]
    x0, y0 = np.floor(uv.min(axis=0) / _UP).astype(int) - 2
    x1, y1 = np.ceil(uv.max(axis=0) / _UP).astype(int) + 2
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 <= x0 or y1 <= y0:
        return
    shift = np.float32([[1, 0, -x0 * _UP], [0, 1, -y0 * _UP], [0, 0, 1]])
    Hm = shift @ cv2.getPerspectiveTransform(src, uv)
    size = ((x1 - x0) * _UP, (y1 - y0) * _UP)
    big = cv2.warpPerspective(img, Hm, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_TRANSPARENT,
                              dst=cv2.resize(canvas[y0:y1, x0:x1], size, interpolation=cv2.INTER_NEAREST))
    canvas[y0:y1, x0:x1] = cv2.resize(big, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA)
