"""Small pose kernels: quaternion <-> matrix and the clutch-relative workspace mapping."""

from __future__ import annotations

import math

import numba

__all__ = ["quat_to_mat", "mat_to_quat", "map_relative", "map_absolute"]


@numba.njit(cache=True, nogil=True)
def quat_to_mat(q, out):
    """Unit quaternion (w, x, y, z) -> rotation matrix (3, 3) (normalises on the fly)."""
    n = math.sqrt(q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3])
    if n < 1e-12:
        for a in range(3):
            for b in range(3):
                out[a, b] = 1.0 if a == b else 0.0
        return
    w, x, y, z = q[0] / n, q[1] / n, q[2] / n, q[3] / n
    out[0, 0] = 1 - 2 * (y * y + z * z)
    out[0, 1] = 2 * (x * y - z * w)
    out[0, 2] = 2 * (x * z + y * w)
    out[1, 0] = 2 * (x * y + z * w)
    out[1, 1] = 1 - 2 * (x * x + z * z)
    out[1, 2] = 2 * (y * z - x * w)
    out[2, 0] = 2 * (x * z - y * w)
    out[2, 1] = 2 * (y * z + x * w)
    out[2, 2] = 1 - 2 * (x * x + y * y)


@numba.njit(cache=True, nogil=True)
def mat_to_quat(r, out):
    """Rotation matrix -> unit quaternion (w, x, y, z) with w >= 0."""
    tr = r[0, 0] + r[1, 1] + r[2, 2]
    if tr > 0:
        s = math.sqrt(tr + 1.0) * 2
        w, x, y, z = 0.25 * s, (r[2, 1] - r[1, 2]) / s, (r[0, 2] - r[2, 0]) / s, (r[1, 0] - r[0, 1]) / s
    elif r[0, 0] > r[1, 1] and r[0, 0] > r[2, 2]:
        s = math.sqrt(1.0 + r[0, 0] - r[1, 1] - r[2, 2]) * 2
        w, x, y, z = (r[2, 1] - r[1, 2]) / s, 0.25 * s, (r[0, 1] + r[1, 0]) / s, (r[0, 2] + r[2, 0]) / s
    elif r[1, 1] > r[2, 2]:
        s = math.sqrt(1.0 + r[1, 1] - r[0, 0] - r[2, 2]) * 2
        w, x, y, z = (r[0, 2] - r[2, 0]) / s, (r[0, 1] + r[1, 0]) / s, 0.25 * s, (r[1, 2] + r[2, 1]) / s
    else:
        s = math.sqrt(1.0 + r[2, 2] - r[0, 0] - r[1, 1]) * 2
        w, x, y, z = (r[1, 0] - r[0, 1]) / s, (r[0, 2] + r[2, 0]) / s, (r[1, 2] + r[2, 1]) / s, 0.25 * s
    if w < 0:
        w, x, y, z = -w, -x, -y, -z
    out[0], out[1], out[2], out[3] = w, x, y, z


@numba.njit(cache=True, nogil=True)
def _mm(a, b, out):
    for i in range(3):
        for j in range(3):
            s = 0.0
            for k in range(3):
                s += a[i, k] * b[k, j]
            out[i, j] = s


@numba.njit(cache=True, nogil=True)
def _mmt(a, b, out):
    """out = a @ b.T"""
    for i in range(3):
        for j in range(3):
            s = 0.0
            for k in range(3):
                s += a[i, k] * b[j, k]
            out[i, j] = s


@numba.njit(cache=True, nogil=True)
def map_absolute(p_h, r_h, scale, r_map, offset, p_out, r_out):
    """Robot wrist = R_map (scale * p_h) + offset, R_map R_h. Shapes (3,), (3, 3)."""
    for a in range(3):
        s = offset[a]
        for b in range(3):
            s += r_map[a, b] * scale * p_h[b]
        p_out[a] = s
    _mm(r_map, r_h, r_out)


@numba.njit(cache=True, nogil=True)
def map_relative(p_h, r_h, p_h0, r_h0, p_r0, r_r0, scale, r_map, p_out, r_out, t1, t2):
    """Clutch-relative mapping. Human motion since engage (p_h0, R_h0), expressed in the robot
    frame through R_map and scaled, applied to the robot wrist pose at engage (p_r0, R_r0):
    p = p_r0 + scale R_map (p_h - p_h0);  R = (R_map R_h R_h0^T R_map^T) R_r0."""
    for a in range(3):
        s = p_r0[a]
        for b in range(3):
            s += scale * r_map[a, b] * (p_h[b] - p_h0[b])
        p_out[a] = s
    _mmt(r_h, r_h0, t1)  # R_h R_h0^T  (tracker frame)
    _mm(r_map, t1, t2)
    _mmt(t2, r_map, t1)  # in the robot frame
    _mm(t1, r_r0, r_out)
